package admin

import (
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// FenceView is the JSON form of a fence used by the HTTP API and the CLI:
// the raw counters, the generation in force now, and times in UTC.
type FenceView struct {
	Scope               string     `json:"scope"`
	Generation          uint64     `json:"generation"`
	EffectiveGeneration uint64     `json:"effective_generation"`
	Reload              uint64     `json:"reload"`
	BumpedAt            *time.Time `json:"bumped_at,omitempty"`
	Policy              string     `json:"policy"`
	PendingAt           *time.Time `json:"pending_at,omitempty"`
	PendingPolicy       string     `json:"pending_policy,omitempty"`
	Reason              string     `json:"reason,omitempty"`
}

// NewFenceView describes fence f of scope sc as seen at now.
func NewFenceView(sc middleware.Scope, f middleware.Fence, now time.Time) FenceView {
	v := FenceView{Scope: sc.String(), Generation: f.Gen, EffectiveGeneration: f.EffectiveGen(now),
		Reload: f.Reload, Policy: f.Policy.String(), Reason: f.Reason}
	if !f.BumpedAt.IsZero() {
		t := f.BumpedAt.UTC()
		v.BumpedAt = &t
	}
	if !f.PendingAt.IsZero() {
		t := f.PendingAt.UTC()
		v.PendingAt, v.PendingPolicy = &t, f.PendingPolicy.String()
	}
	return v
}
