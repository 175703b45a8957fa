package storetest

import (
	"maps"
	"slices"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// The reference model of the fence algebra, as [RunModel] checks it.
//
// It tracks credentials (cookies), not generations: each cookie is live
// until an event of the table below ends it, and nothing ever makes it live
// again. "Covered by S" means the cookie's session has S among its scopes
// (global; its tenant; its subject; its IdP session, when it has a sid; its
// own session). A cookie passes [middleware.Guard.Check] (Allowed, or
// AccessExpired) if and only if it is live and the clock is before its
// absolute expiry; it is AccessExpired from its access expiry on.
//
//	event                              ends                                    and also
//	---------------------------------  --------------------------------------  ---------------------------------------------
//	login (user, tenant, sid)          nobody                                  refused (*RevokedError) iff sid is tombstoned;
//	                                                                           else a new live cookie
//	revoke S now, keeping k            every live cookie covered by S, k's     k's session gets a new live cookie; S's
//	                                   own cookies included                    pending announcement is dropped
//	announce S at T, keeping k         the cookies kept through S's pending    k's session gets a new cookie, kept through
//	                                   announcement, which this one replaces   this announcement
//	the clock reaches T of S's         every live cookie covered by S except
//	  announcement                     those kept through this announcement
//	cancel S's announcement, keeping k the cookies kept through it             k, if kept through it, gets a new ordinary
//	                                                                           cookie; else no cookie. Nothing pending:
//	                                                                           ErrNothingPending
//	reload S                           nobody
//	keeping a cookie that does not     nobody: the change is refused
//	  pass (*RevokedError), or one       (nothing changes)
//	  past its absolute expiry
//	  (ErrKeepNotCovered)
//	IdP-session scope S (sid)          a revoke, or its announcement coming    the sid is tombstoned: no later login with
//	                                   due, ends every cookie with the sid,    it (a cancelled announcement tombstones
//	                                   kept ones too                           nothing)
//	user logout (cookie c)             every cookie of c's session             (a revoke of c's session scope)
//	back-channel logout (sid)          as a revoke of the IdP-session scope
//	visit (Authenticate) c             nobody                                  c refused when it does not pass; past its
//	                                                                           access expiry it is renewed: a new cookie
//	                                                                           with c's standing, access expiry
//	                                                                           min(now + access lifetime, absolute expiry);
//	                                                                           the same cookie again within 30 s: that
//	                                                                           same renewal (never another cookie's)
//	wipe                               every cookie                            no announcement, no tombstone is left
//	snapshot                           nobody                                  remembers announcements and tombstones
//	restore, fence writes made under   every cookie (the guard sees the        announcements and tombstones as in the
//	  the snapshot's epoch since it    store go back and rotates the epoch)    snapshot (a lost tombstone refuses nobody)
//	  are lost, or a snapshot of an
//	  epoch since replaced (a wipe,
//	  a rotation)
//	restore, same epoch, no write lost nobody
//
// A cookie made from another (kept, renewed, reloaded) shares its fate from
// then on: it carries the same standing for every scope the change did not
// touch.
//
// What the model leaves out, on purpose:
//
//   - Login policies: every login proves a fresh authentication with MFA
//     (auth_time = now, amr "mfa"), so PolicyFreshLogin and PolicyMFA never
//     refuse a login; a refused cookie may be Revoked or ReauthRequired.
//   - Reload generations: reload ends nobody, and a cookie re-issued by
//     Authenticate after a reload is just another cookie of the session.
//   - Expiry on a real-time store, where sessions live hours and a
//     sequence lasts a second: it is exercised where the harness moves
//     time (memstore).
//   - Bearer tokens, the session registry, the audit log, bounded
//     staleness, concurrency (one guard, one client; see [RunModel]).
type model struct {
	now     time.Time
	access  time.Duration
	abs     time.Duration
	cookies []*mcookie
	// pending holds the announcement in force per scope; tomb the
	// tombstoned IdP sessions.
	pending map[mscope]mann
	tomb    map[int]bool
	nextAnn int
	snap    *msnap
	// renewals remembers the last renewal of each cookie (the guard
	// shares a renewal with later requests carrying the same cookie).
	renewals map[int]renewal
}

// renewal is one renewal: of cookie from, into cookie into, at.
type renewal struct {
	from, into int
	at         time.Time
}

// renewShare is how long a renewal's result is handed to the next
// renewal of the same cookie instead of renewing again (the guard's
// renewResultTTL).
const renewShare = 30 * time.Second

// mscope is a scope of the model's small world: the kind, and the index of
// the tenant, user or IdP session, or for a session scope the session
// (the index of its first cookie).
type mscope struct {
	kind middleware.ScopeKind
	id   int
}

// mann is an announced termination.
type mann struct {
	id int
	at time.Time
}

// mcookie is one credential the model follows.
type mcookie struct {
	user, tenant, sid int // sid -1: none
	session           int // index of the session's first cookie
	live              bool
	ended             string // why it stopped being live, for reports
	// kept maps a scope to the announcement this cookie was kept through
	// while that announcement is pending.
	kept              map[mscope]int
	accessExp, absExp time.Time
}

// msnap is what a snapshot of the store keeps of the model's state.
type msnap struct {
	pending map[mscope]mann
	tomb    map[int]bool
	// epochGone: the snapshot is of an epoch since replaced (a wipe or a
	// rotation).
	epochGone bool
	// lost counts the fence writes made under the snapshot's epoch after
	// it: what a restore loses.
	lost int
}

func newModel(now time.Time, access, abs time.Duration) *model {
	return &model{now: now, access: access, abs: abs, pending: map[mscope]mann{}, tomb: map[int]bool{}, renewals: map[int]renewal{}}
}

// covers reports whether sc covers cookie c.
func (m *model) covers(sc mscope, c *mcookie) bool {
	switch sc.kind {
	case middleware.ScopeGlobal:
		return true
	case middleware.ScopeTenant:
		return c.tenant == sc.id
	case middleware.ScopeSubject:
		return c.user == sc.id
	case middleware.ScopeIdPSession:
		return c.sid >= 0 && c.sid == sc.id
	case middleware.ScopeSession:
		return c.session == sc.id
	}
	return false
}

// scopeOf returns cookie c's scope of the given kind; ok is false when it
// has none (no sid).
func (m *model) scopeOf(kind middleware.ScopeKind, c *mcookie) (mscope, bool) {
	switch kind {
	case middleware.ScopeTenant:
		return mscope{kind, c.tenant}, true
	case middleware.ScopeSubject:
		return mscope{kind, c.user}, true
	case middleware.ScopeIdPSession:
		return mscope{kind, c.sid}, c.sid >= 0
	case middleware.ScopeSession:
		return mscope{kind, c.session}, true
	}
	return mscope{kind: middleware.ScopeGlobal}, true
}

// passes reports whether cookie i must pass Check now, and whether it is
// then past its access expiry.
func (m *model) passes(i int) (pass, accessExpired bool) {
	c := m.cookies[i]
	if !c.live || !m.now.Before(c.absExp) {
		return false, false
	}
	return true, !m.now.Before(c.accessExp)
}

// end marks every live cookie for which fn holds as ended.
func (m *model) end(why string, fn func(c *mcookie) bool) {
	for _, c := range m.cookies {
		if c.live && fn(c) {
			c.live, c.ended = false, why
		}
	}
}

// add appends a cookie and returns its index.
func (m *model) add(c *mcookie) int {
	m.cookies = append(m.cookies, c)
	return len(m.cookies) - 1
}

// derive returns a new cookie of c's session with c's standing, except
// for the scope drop (when not nil), whose kept announcement is dropped.
func (m *model) derive(c *mcookie, drop *mscope) *mcookie {
	d := *c
	d.live, d.ended = true, "" // c may have been ended by the very change
	d.kept = maps.Clone(c.kept)
	if d.kept == nil {
		d.kept = map[mscope]int{}
	}
	if drop != nil {
		delete(d.kept, *drop)
	}
	return &d
}

// advance moves the model's clock to now and lets every announcement
// whose time has come take effect.
func (m *model) advance(now time.Time) {
	if now.After(m.now) {
		m.now = now
	}
	for _, sc := range slices.SortedFunc(maps.Keys(m.pending), func(a, b mscope) int {
		return m.pending[a].at.Compare(m.pending[b].at)
	}) {
		a := m.pending[sc]
		if m.now.Before(a.at) {
			continue
		}
		delete(m.pending, sc)
		m.takeEffect(sc, a.id, "announcement of "+sc.String()+" took effect")
	}
}

// takeEffect ends the cookies covered by sc except those kept through
// announcement keptBy (-1: none), and for an IdP session every one of
// them and the sid for good.
func (m *model) takeEffect(sc mscope, keptBy int, why string) {
	sid := sc.kind == middleware.ScopeIdPSession
	m.end(why, func(c *mcookie) bool {
		if !m.covers(sc, c) {
			return false
		}
		return sid || keptBy < 0 || c.kept[sc] != keptBy
	})
	for _, c := range m.cookies {
		if m.covers(sc, c) {
			delete(c.kept, sc)
		}
	}
	if sid {
		m.tomb[sc.id] = true
	}
}

// login models Issue: the new cookie's index, or -1 when the login must be
// refused.
func (m *model) login(user, tenant, sid int) int {
	if sid >= 0 && m.tomb[sid] {
		return -1
	}
	i := len(m.cookies)
	return m.add(&mcookie{
		user: user, tenant: tenant, sid: sid, session: i, live: true, kept: map[mscope]int{},
		accessExp: cookieTime(m.now.Add(m.access)), absExp: cookieTime(m.now.Add(m.abs)),
	})
}

// outcome is what the model expects of one fence change.
type outcome struct {
	// refused: the change must fail with *RevokedError (keep of a cookie
	// that does not pass) or ErrNothingPending (cancel).
	keepRefused, nothingPending bool
	// keepExpired: the kept cookie is past its absolute expiry; the change
	// must fail with ErrKeepNotCovered.
	keepExpired bool
	// cookie is the index of the kept cookie to expect, -1 for none.
	cookie int
}

// change models a revoke, announce, cancel or reload of sc through the
// writer, keeping cookie keep (-1: none), announced for at.
func (m *model) change(kind middleware.BumpKind, sc mscope, keep int, at time.Time) outcome {
	out := outcome{cookie: -1}
	var k *mcookie
	if keep >= 0 {
		k = m.cookies[keep]
		if !m.now.Before(k.absExp) {
			out.keepExpired = true
			return out
		}
		out.keepRefused = !k.live
	}
	a, pending := m.pending[sc]
	if kind == middleware.BumpCancel && !pending {
		out.nothingPending = true
	}
	if out.keepRefused || out.nothingPending {
		return out
	}
	if m.snap != nil && !m.snap.epochGone {
		m.snap.lost++
	}
	switch kind {
	case middleware.BumpRevoke:
		delete(m.pending, sc)
		m.takeEffect(sc, -1, "revoke of "+sc.String())
		if k != nil {
			out.cookie = m.add(m.derive(k, &sc))
			if sc.kind == middleware.ScopeIdPSession {
				m.cookies[out.cookie].live = false
				m.cookies[out.cookie].ended = "kept through a revoke of its IdP session (tombstone)"
			}
		}
	case middleware.BumpAnnounce:
		if pending {
			m.endKeptThrough(sc, a.id, "re-announcement of "+sc.String())
		}
		m.nextAnn++
		m.pending[sc] = mann{id: m.nextAnn, at: at}
		if k != nil {
			c := m.derive(k, &sc)
			c.kept[sc] = m.nextAnn
			out.cookie = m.add(c)
		}
	case middleware.BumpCancel:
		delete(m.pending, sc)
		if k != nil && k.kept[sc] == a.id {
			out.cookie = m.add(m.derive(k, &sc))
		}
		m.endKeptThrough(sc, a.id, "cancel of "+sc.String())
	}
	return out
}

// endKeptThrough ends the live cookies kept through announcement id of sc.
func (m *model) endKeptThrough(sc mscope, id int, why string) {
	m.end(why, func(c *mcookie) bool { return m.covers(sc, c) && c.kept[sc] == id })
}

// visit models Authenticate of cookie i: the index of the cookie a
// renewal must produce, -1 when i is not past its access expiry (or does
// not pass). A renewal of the same cookie within renewShare of the last
// one produces that one's cookie again, which shared reports.
func (m *model) visit(i int) (renewed int, shared bool) {
	pass, expired := m.passes(i)
	if !pass || !expired {
		return -1, false
	}
	prev, seen := m.renewals[i]
	if seen && m.now.Sub(prev.at) <= renewShare {
		return prev.into, true
	}
	c := m.derive(m.cookies[i], nil)
	c.accessExp = cookieTime(m.now.Add(m.access))
	if c.accessExp.After(c.absExp) {
		c.accessExp = c.absExp
	}
	n := m.add(c)
	m.renewals[i] = renewal{from: i, into: n, at: m.now}
	return n, false
}

// wipe models the loss of every piece of data.
func (m *model) wipe() {
	m.end("store wiped", func(*mcookie) bool { return true })
	clear(m.pending)
	clear(m.tomb)
	if m.snap != nil {
		m.snap.epochGone = true
	}
}

func (m *model) snapshot() {
	m.snap = &msnap{pending: maps.Clone(m.pending), tomb: maps.Clone(m.tomb)}
}

// restorable says whether there is a snapshot to restore.
func (m *model) restorable() bool { return m.snap != nil }

// restore models a restart from the snapshot. It reports whether the
// guard must find the store rolled back: when writes were lost, or the
// snapshot's epoch has since been replaced (an instance has seen a newer
// one), every cookie ends (the epoch rotates) and the announcements and
// tombstones are the snapshot's again; otherwise nothing changes.
func (m *model) restore() (rollback bool) {
	s := m.snap
	if s.lost == 0 && !s.epochGone {
		return false
	}
	m.end("store restored from an older snapshot", func(*mcookie) bool { return true })
	m.pending, m.tomb = maps.Clone(s.pending), maps.Clone(s.tomb)
	// The rotation makes the snapshot's epoch one of the past; the writes
	// it lost stay lost.
	s.epochGone = true
	m.advance(m.now)
	return true
}

// cookieTime is t as a session cookie keeps it: whole Unix seconds.
func cookieTime(t time.Time) time.Time { return time.Unix(t.Unix(), 0).UTC() }
