package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet is a provider's JSON Web Key Set, fetched from its jwks_uri and
// cached. It implements go-oidc's KeySet (so go-oidc's ID-token verifier
// uses it) and serves the bearer verifier directly.
//
// Why not go-oidc's RemoteKeySet: it refetches the JWKS for every token
// whose kid is unknown, so anyone can make the application hammer the
// provider by sending tokens with random kids. This set refetches at most
// once per minRefetch, and also when the cache is older than maxKeyAge so
// that a key the provider withdrew stops being trusted.
type keySet struct {
	uri    string
	client *http.Client
	now    func() time.Time
	algs   []jose.SignatureAlgorithm

	mu        sync.RWMutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time // zero: never fetched successfully
	triedAt   time.Time // last fetch attempt, successful or not

	fetch sync.Mutex // one fetch at a time
}

const (
	minRefetch  = 10 * time.Second
	maxKeyAge   = time.Hour
	maxJWKSSize = 1 << 20
	fetchTime   = 10 * time.Second
)

// errNoKey: no published key verifies the signature.
var errNoKey = errors.New("no published key of the provider verifies the signature")

func newKeySet(uri string, client *http.Client, now func() time.Time, algs []string) *keySet {
	return &keySet{uri: uri, client: client, now: now, algs: joseAlgs(algs)}
}

// VerifySignature implements go-oidc's KeySet: it parses jwt with the
// set's algorithms and verifies its signature with a published key.
// go-oidc checks the algorithm list itself too; checking it here as well
// keeps the set safe if used on its own.
func (ks *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, ks.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed or disallowed JWS: %w", err)
	}
	return ks.verify(ctx, jws)
}

// verify checks jws (already parsed with an allowed algorithm list)
// against the published keys, refetching them once if no key matches and
// the rate limit allows.
func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, errors.New("a JWS must carry exactly one signature")
	}
	h := jws.Signatures[0].Header
	keys, stale := ks.cached()
	if stale {
		if fresh, err := ks.refetch(ctx, true); err == nil {
			keys = fresh
		}
	}
	if p, ok := tryKeys(jws, h, keys); ok {
		return p, nil
	}
	// An unknown kid usually means the provider rotated its keys; look
	// again, but not more than once per minRefetch.
	fresh, err := ks.refetch(ctx, false)
	if err != nil {
		return nil, err
	}
	if p, ok := tryKeys(jws, h, fresh); ok {
		return p, nil
	}
	return nil, errNoKey
}

func tryKeys(jws *jose.JSONWebSignature, h jose.Header, keys []jose.JSONWebKey) ([]byte, bool) {
	for i := range keys {
		k := &keys[i]
		if h.KeyID != "" && k.KeyID != h.KeyID {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		// A key published for one algorithm is never used with another.
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if p, err := jws.Verify(k); err == nil {
			return p, true
		}
	}
	return nil, false
}

// cached returns the cached keys and whether they should be refreshed
// before use (never fetched, or older than maxKeyAge).
func (ks *keySet) cached() ([]jose.JSONWebKey, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys, ks.fetchedAt.IsZero() || ks.now().Sub(ks.fetchedAt) > maxKeyAge
}

// refetch downloads the key set unless another fetch happened within
// minRefetch (then it returns the cache). stale asks for a fetch because
// the cache is old; it follows the same rate limit.
func (ks *keySet) refetch(ctx context.Context, stale bool) ([]jose.JSONWebKey, error) {
	ks.fetch.Lock()
	defer ks.fetch.Unlock()
	ks.mu.RLock()
	keys, tried, fetched := ks.keys, ks.triedAt, ks.fetchedAt
	ks.mu.RUnlock()
	now := ks.now()
	if !tried.IsZero() && now.Sub(tried) >= 0 && now.Sub(tried) < minRefetch {
		if fetched.IsZero() {
			return nil, errors.New("provider keys unavailable (last fetch failed)")
		}
		return keys, nil
	}
	if stale && !fetched.IsZero() && now.Sub(fetched) <= maxKeyAge {
		return keys, nil // another caller refreshed while we waited
	}
	fresh, err := ks.download(ctx)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.triedAt = now
	if err != nil {
		if ks.fetchedAt.IsZero() {
			return nil, err
		}
		// Keep using the keys we have: an outage of the JWKS endpoint
		// must not stop verification with keys already trusted.
		return ks.keys, nil
	}
	ks.keys, ks.fetchedAt = fresh, now
	return fresh, nil
}

func (ks *keySet) download(ctx context.Context) ([]jose.JSONWebKey, error) {
	// The fetch serves every caller waiting on it: it must not die with
	// the first caller's request, so it gets its own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTime)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.uri, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching provider keys: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching provider keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("fetching provider keys: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetching provider keys: %w", err)
	}
	if len(body) > maxJWKSSize {
		return nil, errors.New("fetching provider keys: JWKS larger than 1 MiB")
	}
	// Keys go-jose cannot parse (unknown kty, private parts) fail the
	// whole document in go-jose; decode one by one and keep the good ones.
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("fetching provider keys: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil || !k.Valid() || !k.IsPublic() {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("fetching provider keys: no usable public key in the JWKS")
	}
	return slices.Clip(keys), nil
}
