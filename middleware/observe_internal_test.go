package middleware

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

type recordingObserver struct {
	decisions []string
	bumps     []string
	errs      []string
	latencies []string
}

func (r *recordingObserver) Decision(k DecisionKind, s ScopeKind, stale bool) {
	r.decisions = append(r.decisions, k.String()+"/"+s.String()+"/"+map[bool]string{true: "stale", false: "fresh"}[stale])
}
func (r *recordingObserver) Bump(kind string, s ScopeKind) {
	r.bumps = append(r.bumps, kind+"/"+s.String())
}
func (r *recordingObserver) StoreError(op string) { r.errs = append(r.errs, op) }
func (r *recordingObserver) StoreLatency(op string, d time.Duration) {
	if d >= 0 {
		r.latencies = append(r.latencies, op)
	}
}

func TestObserveHelpers(t *testing.T) {
	// A nil observer costs nothing and never panics.
	observeDecision(nil, Decision{Kind: DecisionAllowed})
	observeBump(nil, BumpRevoke, ScopeGlobal)
	observeStore(nil, StoreOpFences, observeStart(nil), errors.New("x"))
	if !observeStart(nil).IsZero() {
		t.Fatal("observeStart read the clock for a nil observer")
	}

	o := &recordingObserver{}
	observeDecision(o, Decision{Kind: DecisionAllowed, Scope: Scope{Kind: ScopeTenant}})
	observeDecision(o, Decision{Kind: DecisionRevoked, Scope: TenantScope("a")})
	observeDecision(o, Decision{Kind: DecisionReauthRequired, Scope: GlobalScope(), Stale: true})
	observeBump(o, BumpAnnounce, ScopeSubject)
	observeStore(o, StoreOpFences, observeStart(o), nil)
	observeStore(o, StoreOpBump, observeStart(o), fmt.Errorf("bump: %w", ErrStoreUnavailable))
	observeStore(o, StoreOpBump, observeStart(o), ErrNothingPending) // a refusal, not a store error

	want := []string{"allowed/unknown/fresh", "revoked/tenant/fresh", "reauth_required/global/stale"}
	if len(o.decisions) != 3 || o.decisions[0] != want[0] || o.decisions[1] != want[1] || o.decisions[2] != want[2] {
		t.Errorf("decisions = %v, want %v", o.decisions, want)
	}
	if len(o.bumps) != 1 || o.bumps[0] != "announce/subject" {
		t.Errorf("bumps = %v", o.bumps)
	}
	if len(o.latencies) != 3 || len(o.errs) != 1 || o.errs[0] != StoreOpBump {
		t.Errorf("latencies %v, errors %v", o.latencies, o.errs)
	}
}

func TestBumpKindString(t *testing.T) {
	for k, want := range map[BumpKind]string{BumpRevoke: "revoke", BumpAnnounce: "announce", BumpCancel: "cancel",
		BumpReload: "reload", 0: "unknown", 99: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("BumpKind(%d).String() = %q, want %q", k, got, want)
		}
	}
}
