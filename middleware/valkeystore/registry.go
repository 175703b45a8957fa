package valkeystore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
)

var _ middleware.Registry = (*Store)(nil)

// MaxListedSessions bounds the sessions [Store.Sessions] returns for one
// user: the ones expiring last (normally the newest) are kept. A person
// has a handful of devices; a user with more live sessions than this is
// an automated client or an attack, and listing them all would only make
// the request that asks expensive.
const MaxListedSessions = 1000

// Registry keys, under <prefix>reg: (see the package documentation):
//
//	all                 sorted set of every session id, scored by expiry (Unix ms)
//	t:<tenant>          the same, for one tenant
//	u:<issuer>|<sub>    the same, for one user
//	s:<id>              the SessionInfo as JSON, expiring at Expires
//
// The suffixes are [middleware.Scope.Key] of the tenant, subject and
// session scopes, so user values are escaped exactly as fence keys are.
func (s *Store) regAll() string { return s.regPrefix + "all" }

func (s *Store) regKey(sc middleware.Scope) string {
	return string(middleware.AppendKey([]byte(s.regPrefix), sc))
}

// regSets returns the sorted sets a session belongs to: all, its user's
// and, when it has one, its tenant's.
func (s *Store) regSets(info middleware.SessionInfo) []string {
	sets := []string{s.regAll(), s.regKey(middleware.SubjectScope(info.Issuer, info.Subject))}
	if info.Tenant != "" {
		sets = append(sets, s.regKey(middleware.TenantScope(info.Tenant)))
	}
	return sets
}

func checkInfo(op string, info middleware.SessionInfo) error {
	if info.ID == "" || info.Issuer == "" || info.Subject == "" {
		return fmt.Errorf("valkeystore: %s: session needs ID, Issuer and Subject: %w", op, middleware.ErrInvalidScope)
	}
	return nil
}

// ms returns t in Unix milliseconds, as sorted-set scores and PXAT take it.
func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// TrackSession implements [middleware.Registry] in one MULTI/EXEC (one
// round trip): it adds info.ID to the all, tenant and user sets scored by
// info.Expires, stores info as JSON under <prefix>reg:s:<id> with PXAT
// Expires, and removes from each of the three sets the members whose
// expiry has passed (ZREMRANGEBYSCORE -inf now: O(log N + removed), so
// the sets stay clean without a sweeper). Each set also gets an expiry no
// earlier than its latest member's (PEXPIREAT NX, then GT), so the set of
// a user or tenant with no live session left disappears by itself.
//
// "now" is this machine's clock; the info's expiry is kept by the
// server's. A skew between them only shifts by that much when an expired
// session stops being counted. A session whose Expires is not after now is
// forgotten instead. Tracking the same ID again replaces the record; its
// Issuer, Subject and Tenant must stay the same (session ids are random
// per session), else the old sets keep a stale member until it expires.
//
// Errors: [middleware.ErrInvalidScope] when info lacks ID, Issuer or
// Subject; everything else wraps [middleware.ErrStoreUnavailable].
func (s *Store) TrackSession(ctx context.Context, info middleware.SessionInfo) error {
	if err := checkInfo("track session", info); err != nil {
		return err
	}
	now := time.Now()
	if !now.Before(info.Expires) {
		return s.ForgetSession(ctx, info)
	}
	body, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("valkeystore: track session: %w", err)
	}
	exp := info.Expires.UnixMilli()
	b := s.client.B()
	cmds := make(valkey.Commands, 0, 16)
	cmds = append(cmds, b.Multi().Build())
	for _, set := range s.regSets(info) {
		cmds = append(cmds,
			b.Zadd().Key(set).ScoreMember().ScoreMember(float64(exp), info.ID).Build(),
			b.Zremrangebyscore().Key(set).Min("-inf").Max(ms(now)).Build(),
			b.Pexpireat().Key(set).MillisecondsTimestamp(exp).Nx().Build(),
			b.Pexpireat().Key(set).MillisecondsTimestamp(exp).Gt().Build(),
		)
	}
	cmds = append(cmds,
		b.Set().Key(s.regKey(middleware.SessionScope(info.ID))).Value(string(body)).PxatMillisecondsTimestamp(exp).Build(),
		b.Exec().Build())
	return s.exec(ctx, "track session", cmds)
}

// ForgetSession implements [middleware.Registry] in one MULTI/EXEC: it
// removes info.ID from the all, tenant and user sets and deletes its
// record. Only info.ID is required: when Issuer or Subject is missing, the
// sets are found from the stored record (a session whose record already
// expired is trimmed from the sets by its score). Forgetting a session that
// is not tracked is not an error. Errors: [middleware.ErrInvalidScope] when
// info lacks an ID; everything else wraps [middleware.ErrStoreUnavailable].
func (s *Store) ForgetSession(ctx context.Context, info middleware.SessionInfo) error {
	if info.ID == "" {
		return fmt.Errorf("valkeystore: forget session: session needs an ID: %w", middleware.ErrInvalidScope)
	}
	if info.Issuer == "" || info.Subject == "" {
		stored, found, err := s.sessionRecord(ctx, info.ID)
		if err != nil {
			return err
		}
		if !found {
			return s.exec(ctx, "forget session", valkey.Commands{
				s.client.B().Multi().Build(),
				s.client.B().Del().Key(s.regKey(middleware.SessionScope(info.ID))).Build(),
				s.client.B().Exec().Build(),
			})
		}
		info = stored
	}
	b := s.client.B()
	cmds := make(valkey.Commands, 0, 6)
	cmds = append(cmds, b.Multi().Build())
	for _, set := range s.regSets(info) {
		cmds = append(cmds, b.Zrem().Key(set).Member(info.ID).Build())
	}
	cmds = append(cmds,
		b.Del().Key(s.regKey(middleware.SessionScope(info.ID))).Build(),
		b.Exec().Build())
	return s.exec(ctx, "forget session", cmds)
}

// exec sends one MULTI ... EXEC batch (valkey-go writes a DoMulti batch
// on one connection, in order) and checks every reply, including each
// command's result inside EXEC.
func (s *Store) exec(ctx context.Context, op string, cmds valkey.Commands) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	res := s.client.DoMulti(ctx, cmds...)
	for _, r := range res[:len(res)-1] {
		if err := r.Error(); err != nil {
			return unavailable(op, err)
		}
	}
	inner, err := res[len(res)-1].ToArray()
	if err != nil {
		return unavailable(op, err) // including a nil reply: the transaction was aborted
	}
	for _, m := range inner {
		if err := m.Error(); err != nil {
			return unavailable(op, err)
		}
	}
	return nil
}

// Sessions implements [middleware.Registry] in two round trips:
// ZREVRANGEBYSCORE on the user's set from +inf down to now (exclusive),
// at most [MaxListedSessions], then one MGET of their records. Records
// that are gone (expired between the two reads) or that belong to another
// user are left out. The result is ordered most recently seen first (ties:
// newest created, then by ID). Errors, including a record that does not
// decode, wrap [middleware.ErrStoreUnavailable].
func (s *Store) Sessions(ctx context.Context, issuer, subject string) ([]middleware.SessionInfo, error) {
	if issuer == "" || subject == "" {
		return nil, nil // never tracked: TrackSession refuses them
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	now := time.Now()
	ids, err := s.client.Do(ctx, s.client.B().Zrevrangebyscore().
		Key(s.regKey(middleware.SubjectScope(issuer, subject))).Max("+inf").Min("("+ms(now)).
		Limit(0, MaxListedSessions).Build()).AsStrSlice()
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.regKey(middleware.SessionScope(id))
	}
	vals, err := s.client.Do(ctx, s.client.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return nil, unavailable("list sessions", err)
	}
	out := make([]middleware.SessionInfo, 0, len(vals))
	for i, v := range vals {
		if v.IsNil() {
			continue
		}
		text, err := v.ToString()
		if err != nil {
			return nil, unavailable("list sessions", err)
		}
		var info middleware.SessionInfo
		if err := json.Unmarshal([]byte(text), &info); err != nil {
			return nil, fmt.Errorf("valkeystore: session record %s does not decode: %w: %w", keys[i], middleware.ErrStoreUnavailable, err)
		}
		if info.Issuer != issuer || info.Subject != subject || !now.Before(info.Expires) {
			continue
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b middleware.SessionInfo) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// CountSessions implements [middleware.Registry] with one ZCOUNT of the
// scope's set from now (exclusive) to +inf: O(log N) in the size of that
// set, one round trip, whatever the number of sessions. Members whose
// expiry has passed but that no TrackSession has trimmed yet are not
// counted. ok is false for scopes other than global, tenant and subject.
// Errors: [middleware.ErrInvalidScope] for a scope that is not
// [middleware.Scope.Valid]; everything else wraps
// [middleware.ErrStoreUnavailable].
func (s *Store) CountSessions(ctx context.Context, scope middleware.Scope) (int, bool, error) {
	if !scope.Valid() {
		return 0, false, fmt.Errorf("valkeystore: count sessions %v: %w", scope, middleware.ErrInvalidScope)
	}
	var key string
	switch scope.Kind {
	case middleware.ScopeGlobal:
		key = s.regAll()
	case middleware.ScopeTenant, middleware.ScopeSubject:
		key = s.regKey(scope)
	default:
		return 0, false, nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	n, err := s.client.Do(ctx, s.client.B().Zcount().Key(key).Min("("+ms(time.Now())).Max("+inf").Build()).AsInt64()
	if err != nil {
		return 0, false, unavailable("count sessions", err)
	}
	return int(n), true, nil
}

// sessionRecord reads the stored record of one session.
func (s *Store) sessionRecord(ctx context.Context, id string) (middleware.SessionInfo, bool, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	text, err := s.client.Do(ctx, s.client.B().Get().Key(s.regKey(middleware.SessionScope(id))).Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return middleware.SessionInfo{}, false, nil
	}
	if err != nil {
		return middleware.SessionInfo{}, false, unavailable("read session record", err)
	}
	var info middleware.SessionInfo
	if err := json.Unmarshal([]byte(text), &info); err != nil || info.ID != id {
		return middleware.SessionInfo{}, false, fmt.Errorf("valkeystore: session record %s is malformed: %w", id, middleware.ErrStoreUnavailable)
	}
	return info, true, nil
}
