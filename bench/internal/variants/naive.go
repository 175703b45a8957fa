package variants

import (
	"context"
	"net/http"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/fencetext"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// naive is the fence check without a client-side cache, written as a
// careful user of the library's public API would: the same sealed cookie,
// opened with the same key ring (Guard.SessionFromCookie), the same five
// fence keys and epoch, fetched with one plain MGET round trip per request
// through valkey-go's Do, then the same comparison the guard makes. It
// exists to show what the cache buys; it is not a recommended design.
type naive struct {
	g      *middleware.Guard
	c      valkey.Client
	fence  string // <prefix>f:
	epoch  string // <prefix>epoch
	next   http.Handler
	maxAge time.Duration
}

type naiveKey struct{}

func newNaive(env Env) (*Variant, error) {
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{env.ValkeyAddr}})
	if err != nil {
		return nil, err
	}
	// Sessions are minted by a real guard over the real store, so the
	// naive check judges exactly the cookies (c) judges.
	st, err := valkeystore.New(c, valkeystore.Config{Prefix: env.Prefix})
	if err != nil {
		c.Close()
		return nil, err
	}
	v, err := guarded(st, env, func() { _ = st.Close(); c.Close() })
	if err != nil {
		return nil, err
	}
	n := &naive{g: v.Guard, c: c, fence: env.Prefix + "f:", epoch: env.Prefix + "epoch", next: ok}
	v.Private = n
	return v, nil
}

func (n *naive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ck, err := r.Cookie(n.g.CookieName())
	if err != nil {
		http.Error(w, errNoCookie.Error(), http.StatusUnauthorized)
		return
	}
	s, err := n.g.SessionFromCookie(ck.Value)
	if err != nil {
		http.Error(w, "invalid session", http.StatusUnauthorized)
		return
	}
	now := time.Now()
	if !now.Before(s.AccessExpiry) || !now.Before(s.AbsoluteExpiry) {
		http.Error(w, "expired", http.StatusUnauthorized)
		return
	}
	var scopes [5]middleware.Scope
	var keys [6]string
	k := 0
	add := func(sc middleware.Scope) {
		scopes[k] = sc
		keys[k] = n.fence + sc.Key()
		k++
	}
	add(middleware.GlobalScope())
	if s.Tenant != "" {
		add(middleware.TenantScope(s.Tenant))
	}
	add(middleware.SubjectScope(s.Issuer, s.Subject))
	if s.IdPSession != "" {
		add(middleware.IdPSessionScope(s.Issuer, s.IdPSession))
	}
	add(middleware.SessionScope(s.ID))
	keys[k] = n.epoch
	vals, err := n.c.Do(r.Context(), n.c.B().Mget().Key(keys[:k+1]...).Build()).ToArray()
	if err != nil || len(vals) != k+1 {
		w.Header().Set("Retry-After", "2")
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	if e, err := vals[k].ToString(); err != nil || e != s.Epoch {
		http.Error(w, "revoked", http.StatusUnauthorized)
		return
	}
	for i := range k {
		var f middleware.Fence
		if !vals[i].IsNil() {
			text, err := vals[i].ToString()
			var good bool
			if err == nil {
				f, good = fencetext.Decode(text)
			}
			if !good {
				http.Error(w, "store unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		eff := f.EffectiveGen(now)
		rec := s.Generation(scopes[i].Kind)
		pass := rec == eff || (f.Announced(now) && rec == f.Gen+1)
		if scopes[i].Kind == middleware.ScopeIdPSession && eff != 0 {
			pass = false
		}
		if !pass {
			http.Error(w, "revoked", http.StatusUnauthorized)
			return
		}
	}
	n.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), naiveKey{}, s)))
}
