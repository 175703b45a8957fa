package fakeidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key is one of the provider's signing keys.
type Key struct {
	// ID is the kid in token headers and in the JWKS.
	ID string
	// Alg is the JWS algorithm: "RS256", "ES256" or "EdDSA".
	Alg string
	// Signer is the private key (*rsa.PrivateKey, *ecdsa.PrivateKey or
	// ed25519.PrivateKey).
	Signer crypto.Signer
}

// Public returns the public half of the key.
func (k Key) Public() crypto.PublicKey { return k.Signer.Public() }

// supportedAlgs are the algorithms the provider can hold keys for, and
// therefore the ones it accepts when parsing its own tokens.
var supportedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

func generateKey(alg string) (Key, error) {
	var (
		s   crypto.Signer
		err error
	)
	switch alg {
	case "RS256":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Key{}, fmt.Errorf("unsupported signing algorithm %q (want RS256, ES256 or EdDSA)", alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("generating %s key: %w", alg, err)
	}
	return Key{ID: randomID(8), Alg: alg, Signer: s}, nil
}

// SigningKey returns the key that currently signs the provider's tokens.
func (p *Provider) SigningKey() Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[0]
}

// RotateKey replaces the signing key with a new one of the same algorithm
// and a new kid, and returns it. The old key leaves the JWKS at once unless
// [WithKeepRetiredKeys] was given, so tokens it signed stop verifying once
// the relying party refetches the keys (go-oidc does so on an unknown kid).
func (p *Provider) RotateKey() Key {
	return p.RotateKeyAlg(p.SigningKey().Alg)
}

// RotateKeyAlg is [Provider.RotateKey] to a key of another algorithm
// ("RS256", "ES256" or "EdDSA"); discovery then advertises the algorithms
// of the published keys. An unsupported alg fails the test.
func (p *Provider) RotateKeyAlg(alg string) Key {
	k, err := generateKey(alg)
	if err != nil {
		p.fatalf("fakeidp: RotateKey: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.keepRetired {
		p.keys = append([]Key{k}, p.keys...)
	} else {
		p.keys = []Key{k}
	}
	return k
}

// publishedAlgs lists the distinct algorithms of the published keys, the
// current one first. Caller holds p.mu.
func (p *Provider) publishedAlgs() []string {
	var algs []string
	seen := map[string]bool{}
	for _, k := range p.keys {
		if !seen[k.Alg] {
			seen[k.Alg] = true
			algs = append(algs, k.Alg)
		}
	}
	return algs
}

// unpublishedKey returns a key of the current algorithm that is never put
// in the JWKS. Caller holds p.mu.
func (p *Provider) unpublishedKey() (Key, error) {
	if p.rogue == nil || p.rogue.Alg != p.keys[0].Alg {
		k, err := generateKey(p.keys[0].Alg)
		if err != nil {
			return Key{}, err
		}
		p.rogue = &k
	}
	return *p.rogue, nil
}

func (p *Provider) handleKeys(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	set := jose.JSONWebKeySet{}
	for _, k := range p.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// Sign signs claims with the current signing key and returns the compact
// JWS. The header starts as {"kid": <current kid>, "typ": "JWT"} (alg is
// the key's); entries of header are added or override it, and a nil value
// removes kid or typ. Overriding "alg" only changes what the header says:
// the signature is still made with the key's real algorithm, which is how
// algorithm-confusion tokens are built. A failure fails the test.
func (p *Provider) Sign(header, claims map[string]any) string {
	k := p.SigningKey()
	return p.SignWith(k.Signer, k.Alg, withDefaults(header, map[string]any{"kid": k.ID}), claims)
}

// SignWith signs claims with any key: a crypto.Signer (for RS*/PS*, ES*,
// EdDSA) or a []byte secret (for HS256/HS384/HS512, e.g. the provider's
// public key bytes or a client secret, to test that the relying party never
// accepts a MAC). The header starts as {"typ": "JWT"} with alg; header
// entries add or override (nil removes), exactly as in [Provider.Sign]. No
// kid is set unless header has one. A failure fails the test.
func (p *Provider) SignWith(key any, alg string, header, claims map[string]any) string {
	raw, err := signJWT(key, alg, withDefaults(header, map[string]any{"typ": "JWT"}), claims)
	if err != nil {
		p.fatalf("fakeidp: SignWith: %v", err)
	}
	return raw
}

// Unsigned returns an unsecured JWT (header {"alg":"none","typ":"JWT"},
// empty signature) carrying claims. go-jose refuses to produce "none", and
// its output is the point of the test, so this is the one token the package
// encodes by hand.
func (p *Provider) Unsigned(claims map[string]any) string {
	h, err := json.Marshal(map[string]any{"alg": "none", "typ": "JWT"})
	if err != nil {
		p.fatalf("fakeidp: Unsigned: %v", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		p.fatalf("fakeidp: Unsigned: %v", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "."
}

// withDefaults returns base overlaid with over, then drops nil entries:
// the caller's header wins, and nil is how a caller removes a default.
func withDefaults(over, base map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	for k, v := range out {
		if v == nil {
			delete(out, k)
		}
	}
	return out
}

// signJWT is the single place where tokens are signed, always through
// go-jose. The header map becomes protected header entries; go-jose sets
// alg itself, and a header "alg" entry overrides it in the output only.
func signJWT(key any, alg string, header, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	switch key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, []byte:
	case crypto.Signer:
		// A signer go-jose does not know (HSM, KMS, test double) goes
		// through its opaque-signer adapter.
		key = cryptosigner.Opaque(key.(crypto.Signer))
	default:
		return "", fmt.Errorf("key of type %T is neither a crypto.Signer nor []byte", key)
	}
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{}}
	for k, v := range header {
		opts.ExtraHeaders[jose.HeaderKey(k)] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("creating %s signer: %w", alg, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return jws.CompactSerialize()
}

// ownClaims are the claims the provider reads back from tokens it issued
// (id_token_hint, bearer access tokens, tokens presented for revocation).
type ownClaims struct {
	jwt.Claims
	SID      string `json:"sid"`
	ClientID string `json:"client_id"`
}

var errNotOurs = errors.New("not a token signed by this provider")

// parseOwn verifies raw against the published keys and the issuer and
// returns its claims and header typ. Expiry is the caller's business: an
// expired ID token is still a valid id_token_hint.
func (p *Provider) parseOwn(raw string) (ownClaims, string, error) {
	tok, err := jwt.ParseSigned(raw, supportedAlgs)
	if err != nil {
		return ownClaims{}, "", fmt.Errorf("%w: %v", errNotOurs, err)
	}
	h := tok.Headers[0]
	p.mu.Lock()
	var pub crypto.PublicKey
	for _, k := range p.keys {
		if k.ID == h.KeyID && k.Alg == h.Algorithm {
			pub = k.Public()
		}
	}
	p.mu.Unlock()
	if pub == nil {
		return ownClaims{}, "", fmt.Errorf("%w: unknown kid %q", errNotOurs, h.KeyID)
	}
	var c ownClaims
	if err := tok.Claims(pub, &c); err != nil {
		return ownClaims{}, "", fmt.Errorf("%w: %v", errNotOurs, err)
	}
	if c.Issuer != p.issuer {
		return ownClaims{}, "", fmt.Errorf("%w: iss %q", errNotOurs, c.Issuer)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	return c, typ, nil
}
