package middleware

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
)

type clientInfoKey struct{}

// ClientInfo describes the device behind a request, for the session
// registry ("your devices"). It is advisory and never used to authorize.
type ClientInfo struct {
	UserAgent string
	IP        string
}

// WithClientInfo returns ctx carrying info. Adapters call it with
// [ClientInfoFromRequest] before [Guard.Authenticate], and login handlers
// before [Guard.Issue], so that the registry records the device.
func WithClientInfo(ctx context.Context, info ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, info)
}

// ClientInfoFrom returns the ClientInfo carried by ctx, if any.
func ClientInfoFrom(ctx context.Context) (ClientInfo, bool) {
	c, ok := ctx.Value(clientInfoKey{}).(ClientInfo)
	return c, ok
}

// maxUserAgent bounds what the registry keeps of a User-Agent header.
const maxUserAgent = 256

// ClientInfoFromRequest extracts the User-Agent and the peer address of r.
// It does not trust X-Forwarded-For: behind a proxy, set r.RemoteAddr from
// the proxy's header in a middleware you trust before this runs.
func ClientInfoFromRequest(r *http.Request) ClientInfo {
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	ip := r.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	return ClientInfo{UserAgent: ua, IP: ip}
}

// track records s in the session registry when the store keeps one. It is
// best effort: the registry is advisory, and a failure must not fail a
// login or a renewal.
func (g *Guard) track(ctx context.Context, s *Session) {
	reg, ok := g.cfg.Store.(Registry)
	if !ok {
		return
	}
	g.forgotten.remove(s.ID) // listed again: a later refusal drops it again
	info := SessionInfo{
		ID: s.ID, Issuer: s.Issuer, Subject: s.Subject, Tenant: s.Tenant,
		Created: s.IssuedAt, LastSeen: g.now(), Expires: s.AbsoluteExpiry,
	}
	if c, ok := ClientInfoFrom(ctx); ok {
		info.UserAgent, info.IP = c.UserAgent, c.IP
	}
	if err := reg.TrackSession(ctx, info); err != nil {
		g.log.WarnContext(ctx, "sessionfence: session registry update failed", "session", s.ID, "cause", err.Error())
	}
}

// forget drops s from the session registry when the store keeps one: after
// a logout, or when a fence refused it. Best effort, like track, and done
// once per session by this guard (see forgetSet): a refused cookie replayed
// at an attacker's rate must not become store writes at that rate. A
// failed write is not retried by this guard either; the registry entry
// then lasts until the session's absolute expiry.
func (g *Guard) forget(ctx context.Context, s *Session) {
	reg, ok := g.cfg.Store.(Registry)
	if !ok || s == nil || !g.forgotten.add(s.ID) {
		return
	}
	if err := reg.ForgetSession(ctx, SessionInfo{ID: s.ID, Issuer: s.Issuer, Subject: s.Subject, Tenant: s.Tenant}); err != nil {
		g.log.WarnContext(ctx, "sessionfence: session registry update failed", "session", s.ID, "cause", err.Error())
	}
}

// forgetBound is how many session ids a guard remembers as already dropped
// from the registry: at most about 1 MiB of memory.
const forgetBound = 10_000

// forgetSet is a bounded set of the session ids a guard has dropped from
// the registry. It keeps two generations of at most forgetBound/2 ids
// each: when the current one is full, the older is discarded and the
// current becomes the older. So an id is dropped (written) again only
// after at least forgetBound/2 other ids were added since it was last
// seen; an id seen again (a replayed cookie) is carried into the current
// generation, so a cookie replayed continually never costs a second
// write. Past the bound nothing fails: only a session refused again after
// that much churn costs one more (idempotent) write. Safe for concurrent
// use; half (forgetBound/2, set by New) bounds each generation.
type forgetSet struct {
	mu        sync.Mutex
	half      int
	cur, prev map[string]struct{}
}

// add records id and reports whether it was absent, that is whether the
// caller should write.
func (f *forgetSet) add(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.cur[id]; ok {
		return false
	}
	_, seen := f.prev[id]
	if f.cur == nil || len(f.cur) >= f.half {
		f.prev, f.cur = f.cur, make(map[string]struct{}, f.half)
	}
	// A decoded session's strings share its whole payload: keep only
	// the id's bytes.
	f.cur[strings.Clone(id)] = struct{}{}
	return !seen
}

// remove forgets that id was dropped: the session was tracked again.
func (f *forgetSet) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cur, id)
	delete(f.prev, id)
}

// EndSession ends one session for good, as a user's own logout does:
// through the guard's [Writer] it bumps the session's own fence (kept as
// long as any copy of the cookie can live) so every instance refuses it,
// drops it from the session registry and records a "logout" audit entry
// with the user as the actor. The oidc package's logout handler calls it.
// Errors wrap [ErrStoreUnavailable]; the session is then not ended.
func (g *Guard) EndSession(ctx context.Context, s *Session, reason string) error {
	if s == nil || s.ID == "" {
		return ErrInvalidScope
	}
	actor := s.Subject
	if s.Issuer != "" {
		actor = s.Issuer + "|" + s.Subject
	}
	_, err := g.writer.Write(ctx, Change{
		Scope: SessionScope(s.ID), Kind: BumpRevoke, Reason: reason, Actor: actor, Action: "logout",
	})
	if err == nil {
		// The writer dropped it from the registry: requests still
		// carrying the cookie need not do it again.
		g.forgotten.add(s.ID)
	}
	return err
}
