package middleware

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// renewGroup makes concurrent requests of one session share one renewal:
// the first request renews, the others wait for its result. Results are
// kept for renewResultTTL so that requests still carrying the old cookie
// shortly after reuse the new one instead of renewing again (which, with
// rotating refresh tokens, would fail at the provider).
type renewGroup struct {
	mu   sync.Mutex
	done map[string]*renewCall
}

type renewCall struct {
	wait     chan struct{}
	d        Decision
	finished time.Time
}

const (
	renewResultTTL = 30 * time.Second
	renewTimeout   = 15 * time.Second
)

func (g *Guard) renewed(ctx context.Context, value string, d Decision) Decision {
	// One renewal per cookie: requests carrying the same cookie share it.
	// The key is the cookie itself, not the session: two cookies of one
	// session (one kept through a revocation and the one before it) have
	// different standing and must never be handed each other's renewal.
	key := value
	now := g.now()
	g.renew.mu.Lock()
	if c, ok := g.renew.done[key]; ok && (c.finished.IsZero() || now.Sub(c.finished) <= renewResultTTL) {
		g.renew.mu.Unlock()
		select {
		case <-c.wait:
			out := c.d
			if out.Session != nil {
				cp := *out.Session
				out.Session = &cp
			}
			return out
		case <-ctx.Done():
			return Decision{Kind: DecisionAccessExpired, Session: d.Session, Cause: ctx.Err()}
		}
	}
	for k, c := range g.renew.done {
		if !c.finished.IsZero() && now.Sub(c.finished) > renewResultTTL {
			delete(g.renew.done, k)
		}
	}
	c := &renewCall{wait: make(chan struct{})}
	g.renew.done[key] = c
	g.renew.mu.Unlock()

	c.d = g.renewOnce(ctx, d)

	g.renew.mu.Lock()
	c.finished = g.now()
	if c.d.Kind != DecisionAllowed {
		// Only successes are shared with late requests; a failure may be
		// transient and the next request should try again.
		delete(g.renew.done, key)
	}
	g.renew.mu.Unlock()
	close(c.wait)
	return c.d
}

func (g *Guard) renewOnce(ctx context.Context, d Decision) Decision {
	// The renewal serves every waiting request, so it must not die with
	// the first request's context; it gets its own deadline instead.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
	defer cancel()
	s := *d.Session
	err := g.cfg.Renewer.Renew(rctx, &s)
	if err != nil {
		if errors.Is(err, ErrRenewalRefused) {
			// A provider may refuse because the session was ended
			// meanwhile (a back-channel logout, a terminated user, a
			// renewer's own re-check): report the fence, so the refusal
			// carries its scope and login policy and OnRevoked runs.
			if r := g.CheckSession(rctx, d.Session); r.Kind == DecisionRevoked || r.Kind == DecisionReauthRequired {
				r.Cause = err
				return r
			}
			g.log.InfoContext(ctx, "sessionfence: renewal refused; session ended", "session", s.ID, "sub", s.Subject, "cause", err.Error())
			return Decision{Kind: DecisionSessionExpired, Session: d.Session, Cause: err}
		}
		g.log.WarnContext(ctx, "sessionfence: renewal failed", "session", s.ID, "cause", err.Error())
		return Decision{Kind: DecisionAccessExpired, Session: d.Session, Cause: fmt.Errorf("sessionfence: renewal failed: %w", err)}
	}
	// Identity is immutable across renewal: a renewer that changed it is
	// a bug, and accepting it would move the session out from under its
	// fences.
	if s.ID != d.Session.ID || s.Subject != d.Session.Subject || s.Issuer != d.Session.Issuer ||
		s.IdPSession != d.Session.IdPSession || s.Epoch != d.Session.Epoch || s.gens != d.Session.gens {
		return Decision{Kind: DecisionSessionExpired, Session: d.Session, Cause: errors.New("sessionfence: renewer changed the session's identity")}
	}
	now := g.now()
	s.AccessExpiry = now.Add(g.cfg.AccessLifetime)
	if s.AccessExpiry.After(s.AbsoluteExpiry) {
		s.AccessExpiry = s.AbsoluteExpiry
	}
	// The renewer may have taken seconds (a provider's token endpoint),
	// and the fences were read before it started: a termination
	// acknowledged meanwhile must not be answered with a fresh cookie.
	// Judge the renewed session again, reading the store now; a refusal
	// goes back to Authenticate, which clears the cookie and runs
	// OnRevoked. The fresh read also brings the current reload
	// generations and any announced termination.
	out := g.CheckSession(rctx, &s)
	if out.Kind != DecisionAllowed {
		return out
	}
	out.Session.seq = max(out.Session.seq, out.seq)
	ck, err := g.sessionCookie(out.Session)
	if err != nil {
		// The renewer grew the session past what a cookie carries: end
		// it (the cookie is cleared) rather than issue one that every
		// later request would refuse.
		return Decision{Kind: DecisionSessionExpired, Session: d.Session, Cause: fmt.Errorf("sessionfence: renewed session: %w", err)}
	}
	out.Cookie = ck
	g.track(ctx, out.Session) // the registry's last-seen moves with each renewal
	g.log.DebugContext(ctx, "sessionfence: session renewed", "session", s.ID)
	return out
}

// staleCache remembers the last confirmed value of each fence, for bounded
// staleness. It is bounded in size: past maxStaleEntries it starts over,
// which only shortens how long stale answers are possible.
type staleCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	version Version
	m       map[Scope]staleEntry
}

type staleEntry struct {
	f  Fence
	at time.Time
}

const maxStaleEntries = 100_000

func newStaleCache(ttl time.Duration) *staleCache {
	return &staleCache{ttl: ttl, m: make(map[Scope]staleEntry)}
}

func (c *staleCache) record(now time.Time, v Version, scopes []Scope, fences []Fence) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.Epoch != c.version.Epoch || len(c.m) >= maxStaleEntries {
		clear(c.m)
	}
	c.version = v
	for i, s := range scopes {
		c.m[s] = staleEntry{f: fences[i], at: now}
	}
}

// lookup fills fences from entries confirmed within ttl; it fails if any
// scope has no such entry, so a stale answer is never partly invented.
func (c *staleCache) lookup(now time.Time, scopes []Scope, fences []Fence) (Version, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version.Epoch == "" {
		return Version{}, false
	}
	for i, s := range scopes {
		e, ok := c.m[s]
		if !ok || now.Sub(e.at) > c.ttl {
			return Version{}, false
		}
		fences[i] = e.f
	}
	return c.version, true
}
