package middleware

import (
	"context"
	"net"
	"net/http"
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
// a logout, or when a fence refused it. Best effort, like track.
func (g *Guard) forget(ctx context.Context, s *Session) {
	reg, ok := g.cfg.Store.(Registry)
	if !ok || s == nil {
		return
	}
	if err := reg.ForgetSession(ctx, SessionInfo{ID: s.ID, Issuer: s.Issuer, Subject: s.Subject, Tenant: s.Tenant}); err != nil {
		g.log.WarnContext(ctx, "sessionfence: session registry update failed", "session", s.ID, "cause", err.Error())
	}
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
	return err
}
