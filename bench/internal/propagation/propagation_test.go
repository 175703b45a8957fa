package propagation

import (
	"net/http"
	"testing"
	"time"
)

const ms = time.Millisecond

// The definitions of the package documentation, on a hand-made trial:
// target 0 first refuses at 3ms (received), target 1 at 5ms, the writer's
// reply comes at 2ms.
func TestAnalyseAppliesTheDefinitions(t *testing.T) {
	samples := []sample{
		{target: 0, sent: 1 * ms, recv: 1500 * time.Microsecond, status: http.StatusOK},                  // before the reply: ignored
		{target: 0, sent: 2500 * time.Microsecond, recv: 2600 * time.Microsecond, status: http.StatusOK}, // within the bound
		{target: 0, sent: 2700 * time.Microsecond, recv: 3 * ms, status: http.StatusUnauthorized},        // F_0 = 3ms
		{target: 0, sent: 3100 * time.Microsecond, recv: 3200 * time.Microsecond, status: http.StatusOK}, // late
		{target: 1, sent: 4 * ms, recv: 4500 * time.Microsecond, status: http.StatusOK},                  // within
		{target: 1, sent: 4600 * time.Microsecond, recv: 5 * ms, status: http.StatusUnauthorized},        // F_1 = 5ms
		{target: 1, sent: 5100 * time.Microsecond, recv: 5200 * time.Microsecond, status: http.StatusServiceUnavailable},
	}
	tr := analyse(samples, 2, 1*ms, 2*ms)
	if tr.Write != 1*ms {
		t.Errorf("Write = %v, want 1ms", tr.Write)
	}
	if tr.Propagation[0] != 1*ms || tr.Propagation[1] != 3*ms || tr.All != 3*ms {
		t.Errorf("Propagation = %v, All = %v; want [1ms 3ms], 3ms", tr.Propagation, tr.All)
	}
	if tr.Within != 2 || tr.Late != 1 || tr.Other != 1 || tr.Requests != len(samples) {
		t.Errorf("Within %d Late %d Other %d Requests %d; want 2 1 1 %d", tr.Within, tr.Late, tr.Other, tr.Requests, len(samples))
	}
	// Accepted after the reply: sent at 2.5, 3.1 and 4ms; the last is 2ms
	// after the reply.
	if tr.LastStale != 2*ms {
		t.Errorf("LastStale = %v, want 2ms", tr.LastStale)
	}
}

// A target that refused before the writer's reply arrived propagates in
// zero, not a negative time.
func TestAnalyseClampsRefusalsBeforeTheReply(t *testing.T) {
	tr := analyse([]sample{{target: 0, sent: 0, recv: 1 * ms, status: http.StatusUnauthorized}}, 1, 0, 2*ms)
	if tr.Propagation[0] != 0 {
		t.Fatalf("Propagation = %v, want 0", tr.Propagation[0])
	}
}
