package backchannel

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Limits on what a provider's documents may make us hold.
const (
	// maxDocumentBytes bounds a discovery document or a JWKS.
	maxDocumentBytes = 512 << 10
	// maxKeys bounds the keys kept from one JWKS.
	maxKeys = 64
	// maxTrials bounds the signature checks for one token (several keys
	// share a kid, or the token has no kid), so a token costs a few
	// verifications at most.
	maxTrials = 8
)

// errRateLimited: the kid is unknown and the key set was refreshed too
// recently to refresh it again.
var errRateLimited = errors.New("backchannel: key refresh rate-limited")

// keySet caches one issuer's published signing keys.
//
// Fetching is driven by tokens, never by a timer: the first token loads
// the set; a token whose kid is not in it triggers a refresh (the way
// providers rotate keys, OpenID Connect Core §10.1.1). Both are
// rate-limited per issuer: at most one refresh per interval, and a failed
// first load is retried at most once per interval, so a flood of tokens
// with made-up kids costs the provider one JWKS download per interval.
// Concurrent requests share one fetch. The fetch runs under its own
// timeout, detached from the request that started it, so a client that
// hangs up does not fail the fetch for the others.
type keySet struct {
	issuer   string
	jwksURL  string // configured; empty means discover
	client   *http.Client
	timeout  time.Duration
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger

	cur atomic.Pointer[[]jose.JSONWebKey] // nil until the first successful load

	mu          sync.Mutex
	discovered  string       // jwks_uri found by discovery (kept once found)
	lastLoad    time.Time    // start of the last attempt while no set was loaded
	lastRefresh time.Time    // start of the last unknown-kid refresh
	call        *fetchCall   // the fetch in flight, if any
	fetches     atomic.Int64 // JWKS downloads attempted, for tests and logs
}

type fetchCall struct {
	done chan struct{}
	err  error
}

func newKeySet(iss, jwksURL string, client *http.Client, timeout, interval time.Duration, now func() time.Time, log *slog.Logger) *keySet {
	return &keySet{issuer: iss, jwksURL: jwksURL, client: client, timeout: timeout, interval: interval, now: now, log: log}
}

// keys returns the cached set; nil before the first successful load.
func (ks *keySet) keys() []jose.JSONWebKey {
	if p := ks.cur.Load(); p != nil {
		return *p
	}
	return nil
}

// refresh loads the set (if none is loaded yet) or refreshes it (after an
// unknown kid), subject to the rate limit, and waits for the result until
// ctx is done. It returns nil when a fetch succeeded (possibly one started
// by another request), errRateLimited when a refresh is not allowed yet
// but a set is loaded, or an *UnavailableError.
func (ks *keySet) refresh(ctx context.Context) error {
	ks.mu.Lock()
	c := ks.call
	if c == nil {
		now := ks.now()
		last := &ks.lastRefresh
		if ks.cur.Load() == nil {
			last = &ks.lastLoad
		}
		if !last.IsZero() && now.Sub(*last) < ks.interval && now.Sub(*last) >= 0 {
			wait := ks.interval - now.Sub(*last)
			loaded := ks.cur.Load() != nil
			ks.mu.Unlock()
			if loaded {
				return errRateLimited
			}
			return &UnavailableError{RetryAfter: wait, Err: fmt.Errorf("%w: %s: last attempt failed, next one allowed in %v",
				ErrKeysUnavailable, ks.issuer, wait.Round(time.Second))}
		}
		*last = now
		c = &fetchCall{done: make(chan struct{})}
		ks.call = c
		go ks.run(context.WithoutCancel(ctx), c)
	}
	ks.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return &UnavailableError{RetryAfter: time.Second, Err: fmt.Errorf("%w: %s: %w", ErrKeysUnavailable, ks.issuer, ctx.Err())}
	}
}

// run performs one fetch and publishes its result.
func (ks *keySet) run(ctx context.Context, c *fetchCall) {
	ctx, cancel := context.WithTimeout(ctx, ks.timeout)
	defer cancel()
	keys, err := ks.fetch(ctx)
	ks.mu.Lock()
	if err == nil {
		ks.cur.Store(&keys)
	} else {
		err = &UnavailableError{RetryAfter: ks.interval, Err: fmt.Errorf("%w: %s: %w", ErrKeysUnavailable, ks.issuer, err)}
	}
	ks.call = nil
	ks.mu.Unlock()
	c.err = err
	close(c.done)
	if err != nil {
		ks.log.LogAttrs(ctx, slog.LevelError, "sessionfence: back-channel logout keys unavailable",
			slog.String("iss", ks.issuer), slog.String("cause", err.Error()))
	} else {
		ks.log.LogAttrs(ctx, slog.LevelInfo, "sessionfence: back-channel logout keys loaded",
			slog.String("iss", ks.issuer), slog.Int("keys", len(keys)))
	}
}

// fetch discovers the JWKS URL if needed and downloads the key set.
func (ks *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	u := ks.jwksURL
	if u == "" {
		ks.mu.Lock()
		u = ks.discovered
		ks.mu.Unlock()
	}
	if u == "" {
		var err error
		if u, err = ks.discover(ctx); err != nil {
			return nil, err
		}
		ks.mu.Lock()
		ks.discovered = u
		ks.mu.Unlock()
	}
	ks.fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("jwks: reading body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: %s answered %s", u, resp.Status)
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if skipped > 0 {
		ks.log.LogAttrs(ctx, slog.LevelDebug, "sessionfence: back-channel logout ignored unusable JWKS entries",
			slog.String("iss", ks.issuer), slog.Int("skipped", skipped))
	}
	return keys, nil
}

// discover reads jwks_uri from the issuer's discovery document through
// go-oidc, which also checks that the document's issuer is exactly ours
// (OpenID Connect Discovery §4.3): a document that names another issuer
// could otherwise hand us someone else's keys.
func (ks *keySet) discover(ctx context.Context) (string, error) {
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, ks.client), ks.issuer)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var meta struct {
		JWKSURI   string `json:"jwks_uri"`
		Supported *bool  `json:"backchannel_logout_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if meta.JWKSURI == "" {
		return "", errors.New("discovery: no jwks_uri")
	}
	if meta.Supported != nil && !*meta.Supported {
		ks.log.LogAttrs(ctx, slog.LevelWarn, "sessionfence: provider says it does not support back-channel logout",
			slog.String("iss", ks.issuer))
	}
	return meta.JWKSURI, nil
}

// parseJWKS decodes a JWK Set, keeping the public signature keys go-jose
// understands and skipping the rest (RFC 7517 §5: members that are not
// understood are ignored, so one exotic key must not disable the others).
func parseJWKS(body []byte) (keys []jose.JSONWebKey, skipped int, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, 0, fmt.Errorf("not a JWK Set: %w", err)
	}
	if set.Keys == nil {
		return nil, 0, errors.New("not a JWK Set: no keys member")
	}
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !k.Valid() || !k.IsPublic() ||
			(k.Use != "" && k.Use != "sig") || len(keys) == maxKeys {
			// A private key in a JWKS is the provider's mistake; using it
			// would be harmless, but it is not what was meant to be
			// published, so it is skipped like any unusable entry.
			skipped++
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// fits reports whether key can verify alg: the JWK's own alg (if any)
// must be alg, and the key type and curve must be the ones alg uses.
// go-jose would refuse most mismatches itself; checking first avoids
// trying keys that cannot work and keeps algorithm confusion impossible
// by construction (an HMAC alg is never verified with a JWKS key).
func fits(k *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return pub.Curve == elliptic.P256()
		case jose.ES384:
			return pub.Curve == elliptic.P384()
		case jose.ES512:
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// limitedClient returns a copy of c whose response bodies fail once they
// exceed limit bytes, so a hostile or broken provider cannot make
// discovery (go-oidc reads the whole body) or the JWKS download hold
// unbounded memory. c itself is not modified.
func limitedClient(c *http.Client, limit int64) *http.Client {
	cp := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = limitTransport{base: base, limit: limit}
	return &cp
}

type limitTransport struct {
	base  http.RoundTripper
	limit int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.limit}
	return resp, nil
}

var errTooLarge = errors.New("response body too large")

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more than allowed tells "exactly at the limit" from
		// "over it".
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
