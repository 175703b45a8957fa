package storetest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// The model's small world: a few tenants, users and IdP sessions of one
// issuer, so that random changes often hit the same sessions.
const (
	modelIssuer  = "https://idp.model.test"
	modelTenants = 3
	modelUsers   = 4
	modelSIDs    = 3
)

// OpKind names one step of a model sequence (see [Op]).
type OpKind uint8

// The steps of a model sequence.
const (
	// OpLogin is a login through Guard.Issue.
	OpLogin OpKind = iota + 1
	// OpRevoke, OpAnnounce, OpCancel and OpReload change a fence through
	// the guard's Writer, keeping a cookie's session when Op.Keep is set.
	OpRevoke
	OpAnnounce
	OpCancel
	OpReload
	// OpVisit is a request: Guard.Authenticate, which renews a cookie past
	// its access expiry.
	OpVisit
	// OpLogout is a user's own logout: Guard.EndSession.
	OpLogout
	// OpBackchannel is a back-channel logout of one IdP session: a revoke
	// of its fence through the Writer.
	OpBackchannel
	// OpAdvance moves the clock (with a real-time store: waits until every
	// short announcement is due).
	OpAdvance
	// OpWipe, OpSnapshot and OpRestore lose all data, remember it, and
	// restart the store from what was remembered.
	OpWipe
	OpSnapshot
	OpRestore
)

var opNames = [...]string{"", "login", "revoke", "announce", "cancel", "reload", "visit", "logout",
	"backchannel", "advance", "wipe", "snapshot", "restore"}

var opGoNames = [...]string{"", "OpLogin", "OpRevoke", "OpAnnounce", "OpCancel", "OpReload", "OpVisit", "OpLogout",
	"OpBackchannel", "OpAdvance", "OpWipe", "OpSnapshot", "OpRestore"}

// String returns the op's lower-case name.
func (k OpKind) String() string {
	if int(k) < len(opNames) && k != 0 {
		return opNames[k]
	}
	return "op(" + strconv.Itoa(int(k)) + ")"
}

// Op is one step of a model sequence. Fields an op does not use are zero.
// References are resolved against the model when the step runs, so that a
// sequence stays meaningful when steps are removed from it.
type Op struct {
	Kind OpKind
	// Scope is the kind of fence a revoke, announce, cancel or reload
	// changes.
	Scope middleware.ScopeKind
	// Ref picks what the step acts on: the user of a login; the tenant,
	// user or IdP session of a scope; or a cookie (visit, logout, the scope
	// of a session, and the kept cookie, whose own scope of kind Scope is
	// then changed), counted among the live cookies unless Any is set.
	// Every pick is taken modulo the number of choices.
	Ref int
	// Any makes a cookie reference count every cookie, ended ones too.
	Any bool
	// Keep keeps the referenced cookie's session through the change.
	Keep bool
	// Tenant and SID are the login's tenant and IdP session (-1: none);
	// SID is also the IdP session of a back-channel logout.
	Tenant, SID int
	// Policy is the login policy of a revoke or announce.
	Policy middleware.Policy
	// D is how far ahead an announcement takes effect, or how far the
	// clock moves.
	D time.Duration
}

// usesCookie reports whether the op references a cookie.
func (o Op) usesCookie() bool {
	switch o.Kind {
	case OpVisit, OpLogout:
		return true
	case OpRevoke, OpAnnounce, OpCancel, OpReload:
		return o.Keep || o.Scope == middleware.ScopeSession
	}
	return false
}

// String describes the op as written, before resolution.
func (o Op) String() string {
	var b strings.Builder
	b.WriteString(o.Kind.String())
	switch o.Kind {
	case OpLogin:
		fmt.Fprintf(&b, " u%d t%d %s", o.Ref%modelUsers, o.Tenant, sidName(o.SID))
	case OpBackchannel:
		fmt.Fprintf(&b, " %s", sidName(o.SID))
	case OpRevoke, OpAnnounce, OpCancel, OpReload:
		fmt.Fprintf(&b, " %v", o.Scope)
		if o.usesCookie() {
			fmt.Fprintf(&b, " of cookie #%d", o.Ref)
		} else if o.Scope != middleware.ScopeGlobal {
			fmt.Fprintf(&b, " #%d", o.Ref)
		}
		if o.Keep {
			b.WriteString(" keep")
		}
		if o.Kind == OpAnnounce {
			fmt.Fprintf(&b, " in %v", o.D)
		}
		if o.Kind == OpRevoke || o.Kind == OpAnnounce {
			fmt.Fprintf(&b, " policy=%v", o.Policy)
		}
	case OpVisit, OpLogout:
		fmt.Fprintf(&b, " cookie #%d", o.Ref)
	case OpAdvance:
		fmt.Fprintf(&b, " %v", o.D)
	}
	if o.Any && o.usesCookie() {
		b.WriteString(" (any)")
	}
	return b.String()
}

// GoString writes the op as a Go composite literal, for pasting a failing
// sequence into the regression cases.
func (o Op) GoString() string {
	parts := []string{"Kind: " + opGoNames[o.Kind]}
	if o.Scope != 0 {
		parts = append(parts, "Scope: middleware.Scope"+goScope(o.Scope))
	}
	for _, f := range []struct {
		name string
		v    int
		keep bool
	}{{"Ref", o.Ref, o.Ref != 0}, {"Tenant", o.Tenant, o.Tenant != 0}, {"SID", o.SID, o.Kind == OpLogin || o.Kind == OpBackchannel}} {
		if f.keep {
			parts = append(parts, f.name+": "+strconv.Itoa(f.v))
		}
	}
	if o.Any {
		parts = append(parts, "Any: true")
	}
	if o.Keep {
		parts = append(parts, "Keep: true")
	}
	if o.Policy != middleware.PolicyNone {
		parts = append(parts, "Policy: middleware.Policy"+[...]string{"None", "FreshLogin", "MFA"}[o.Policy])
	}
	if o.D != 0 {
		parts = append(parts, "D: "+goDuration(o.D))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func goScope(k middleware.ScopeKind) string {
	return [...]string{"", "Global", "Tenant", "Subject", "IdPSession", "Session", "Epoch"}[k]
}

func goDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "time.Hour"}, {time.Minute, "time.Minute"}, {time.Second, "time.Second"}, {time.Millisecond, "time.Millisecond"}} {
		if d%u.d == 0 {
			if d == u.d {
				return u.name
			}
			return strconv.FormatInt(int64(d/u.d), 10) + " * " + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10)
}

func sidName(sid int) string {
	if sid < 0 {
		return "no-sid"
	}
	return "sid" + strconv.Itoa(sid)
}

func (sc mscope) String() string {
	switch sc.kind {
	case middleware.ScopeGlobal:
		return "global"
	case middleware.ScopeTenant:
		return "tenant t" + strconv.Itoa(sc.id)
	case middleware.ScopeSubject:
		return "subject u" + strconv.Itoa(sc.id)
	case middleware.ScopeIdPSession:
		return "idp_session " + sidName(sc.id)
	}
	return "session of c" + strconv.Itoa(sc.id)
}

// shortAnnouncement bounds the announcements that a real-time store sees
// come due during a sequence; longer ones never do there.
const shortAnnouncement = time.Second

// generate returns the sequence of the given seed: steps between min and
// max, drawn with PCG seeded from the sequence number alone, so a seed
// always names the same sequence.
func generate(seed uint64, minSteps, maxSteps int) []Op {
	r := rand.New(rand.NewPCG(seed, 0x5e55_10f3_2c3d_a1b7))
	n := minSteps + r.IntN(maxSteps-minSteps+1)
	ops := make([]Op, 0, n)
	var announced []middleware.ScopeKind
	snapped := false
	for i := range n {
		o := randomOp(r, i, announced)
		switch {
		case o.Kind == OpAnnounce:
			announced = append(announced, o.Scope)
		case o.Kind == OpRestore && !snapped:
			o.Kind = OpSnapshot // nothing to restore yet
		}
		snapped = snapped || o.Kind == OpSnapshot
		ops = append(ops, o)
	}
	return ops
}

// opWeights says how often each kind is drawn.
var opWeights = []struct {
	kind OpKind
	w    int
}{
	{OpLogin, 18}, {OpRevoke, 12}, {OpAnnounce, 13}, {OpCancel, 7}, {OpReload, 4}, {OpVisit, 10},
	{OpLogout, 4}, {OpBackchannel, 4}, {OpAdvance, 16}, {OpWipe, 2}, {OpSnapshot, 5}, {OpRestore, 5},
}

var fenceScopes = []middleware.ScopeKind{
	middleware.ScopeGlobal, middleware.ScopeTenant, middleware.ScopeSubject,
	middleware.ScopeIdPSession, middleware.ScopeSession,
}

func randomOp(r *rand.Rand, step int, announced []middleware.ScopeKind) Op {
	kind := OpLogin
	if step >= 3 { // a few logins first, so there is something to end
		total := 0
		for _, w := range opWeights {
			total += w.w
		}
		x := r.IntN(total)
		for _, w := range opWeights {
			if x < w.w {
				kind = w.kind
				break
			}
			x -= w.w
		}
	}
	o := Op{Kind: kind, Ref: r.IntN(64), Any: r.IntN(5) == 0}
	switch kind {
	case OpLogin:
		o.Any = false
		o.Tenant = r.IntN(modelTenants)
		o.SID = r.IntN(modelSIDs+1) - 1
	case OpBackchannel:
		o.Any = false
		o.SID = r.IntN(modelSIDs)
	case OpRevoke, OpAnnounce, OpCancel, OpReload:
		o.Scope = fenceScopes[r.IntN(len(fenceScopes))]
		if kind == OpCancel && len(announced) > 0 && r.IntN(4) != 0 {
			o.Scope = announced[r.IntN(len(announced))]
		}
		o.Keep = kind != OpReload && r.IntN(2) == 0
		if kind == OpRevoke || kind == OpAnnounce {
			o.Policy = middleware.Policy(r.IntN(3))
		}
		if kind == OpAnnounce {
			o.D = []time.Duration{
				30 * time.Millisecond, 50 * time.Millisecond, 80 * time.Millisecond,
				10 * time.Minute, time.Hour, 3 * time.Hour,
			}[r.IntN(6)]
		}
	case OpAdvance:
		o.D = []time.Duration{
			100 * time.Millisecond, 30 * time.Second, 4 * time.Minute, 6 * time.Minute,
			45 * time.Minute, 2 * time.Hour,
		}[r.IntN(6)]
	}
	if !o.usesCookie() {
		o.Any = false
	}
	return o
}
