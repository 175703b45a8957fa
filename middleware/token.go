package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// TokenClaims are the claims of a bearer token we did not mint (an
// identity provider's JWT access token), already verified by the caller
// (see the oidc package's bearer verifier). Such tokens carry no
// generations, so the guard judges them by time.
type TokenClaims struct {
	Issuer     string
	Subject    string
	Tenant     string
	IdPSession string
	IssuedAt   time.Time
	AuthTime   time.Time
	ACR        string
	AMR        []string
}

// CheckToken decides for a verified bearer token. A token passes a fence
// only if it was issued more than Config.Skew after the fence took effect
// (skew in the safe direction); a fence with a login policy further
// requires that the authentication behind the token (auth_time, acr, amr)
// be newer than the fence and meet the policy, else the decision is
// ReauthRequired (RFC 9470 step-up). A logged-out IdP session refuses every
// token that carries its sid. A token issued before the store's epoch began
// is refused, so a wiped store resurrects no token.
func (g *Guard) CheckToken(ctx context.Context, tc *TokenClaims) Decision {
	d := Decision{Token: tc}
	if tc == nil || tc.Subject == "" || tc.IssuedAt.IsZero() {
		d.Kind = DecisionInvalid
		return d
	}
	sc := g.scratch.Get().(*scratch)
	defer g.scratch.Put(sc)
	list := sc.list[:0]
	list = append(list, Scope{Kind: ScopeGlobal})
	if tc.Tenant != "" {
		list = append(list, Scope{Kind: ScopeTenant, ID: tc.Tenant})
	}
	if tc.Issuer != "" {
		list = append(list, Scope{Kind: ScopeSubject, Issuer: tc.Issuer, ID: tc.Subject})
		if tc.IdPSession != "" {
			list = append(list, Scope{Kind: ScopeIdPSession, Issuer: tc.Issuer, ID: tc.IdPSession})
		}
	}
	fences := sc.fences[:len(list)]
	v, err := g.read(ctx, list, fences, &d, true)
	if err != nil {
		failed(&d, err)
		return d
	}
	now := g.now()
	if et, ok := EpochTime(v.Epoch); ok && !tc.IssuedAt.After(et.Add(g.cfg.Skew)) {
		d.Kind, d.Scope, d.FenceTime = DecisionRevoked, Scope{Kind: ScopeEpoch}, et
		return d
	}
	for j, f := range fences {
		eff := f.EffectiveGen(now)
		if f.Announced(now) && (d.Notice == nil || f.PendingAt.Before(d.Notice.At)) {
			d.Notice = &Notice{At: f.PendingAt, Scope: list[j], Policy: f.PendingPolicy, Reason: f.Reason}
		}
		if eff == 0 {
			continue
		}
		ft, p := f.EffectiveTime(now), g.policy(f, now)
		if list[j].Kind == ScopeIdPSession || !tc.IssuedAt.After(ft.Add(g.cfg.Skew)) {
			if d.Kind == 0 {
				d.Kind, d.Scope, d.FenceTime = DecisionRevoked, list[j], ft
			}
			d.Policy = max(d.Policy, p)
			continue
		}
		if p == PolicyNone || d.Kind != 0 {
			continue
		}
		fresh := !tc.AuthTime.IsZero() && tc.AuthTime.After(ft.Add(-g.cfg.Skew))
		if !fresh || (p == PolicyMFA && !g.cfg.MFA.Satisfied(tc.ACR, tc.AMR)) {
			d.Kind, d.Scope, d.FenceTime, d.Policy = DecisionReauthRequired, list[j], ft, p
		}
	}
	if d.Kind == DecisionRevoked && d.Policy != PolicyNone {
		d.Kind = DecisionReauthRequired
	}
	if d.Kind == 0 {
		d.Kind = DecisionAllowed
	}
	return d
}

// NewEpoch returns a fresh store epoch for a store whose clock reads now:
// "<unix milliseconds>-<32 random hex digits>". The time part lets bearer
// checks refuse tokens older than the store's data (see
// [Guard.CheckToken]); the random part makes every epoch unique.
func NewEpoch(now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixMilli(), 10) + "-" + hex.EncodeToString(b[:])
}

// EpochTime returns the creation time encoded in an epoch made by
// [NewEpoch]; ok is false for any other form.
func EpochTime(epoch string) (time.Time, bool) {
	i := strings.IndexByte(epoch, '-')
	if i <= 0 {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(epoch[:i], 10, 64)
	if err != nil || ms <= 0 || ms > maxMilli {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}
