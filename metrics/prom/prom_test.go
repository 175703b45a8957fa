package prom_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessionfence/sessionfence/metrics/prom"
	"github.com/sessionfence/sessionfence/middleware"
)

func newObserver(t testing.TB) (*prom.Observer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return o, reg
}

func TestDecisions(t *testing.T) {
	o, reg := newObserver(t)
	o.Decision(middleware.DecisionAllowed, 0, false)
	o.Decision(middleware.DecisionAllowed, 0, false)
	o.Decision(middleware.DecisionAllowed, 0, true)
	o.Decision(middleware.DecisionRevoked, middleware.ScopeTenant, false)
	o.Decision(middleware.DecisionReauthRequired, middleware.ScopeGlobal, false)
	o.Decision(middleware.DecisionRevoked, middleware.ScopeEpoch, false)
	o.Decision(middleware.DecisionStoreUnavailable, 0, false)
	// A scope on a kind that has none is counted without it; an unknown
	// kind is not counted.
	o.Decision(middleware.DecisionNoSession, middleware.ScopeTenant, false)
	o.Decision(middleware.DecisionKind(200), 0, false)

	tests := []struct {
		labels string
		want   float64
	}{
		{`decision="allowed",scope="none",stale="false"`, 2},
		{`decision="allowed",scope="none",stale="true"`, 1},
		{`decision="revoked",scope="tenant",stale="false"`, 1},
		{`decision="reauth_required",scope="global",stale="false"`, 1},
		{`decision="revoked",scope="epoch",stale="false"`, 1},
		{`decision="store_unavailable",scope="none",stale="false"`, 1},
		{`decision="no_session",scope="none",stale="false"`, 1},
		{`decision="access_expired",scope="none",stale="false"`, 0},
		{`decision="revoked",scope="subject",stale="true"`, 0},
		{`decision="invalid_session",scope="none",stale="false"`, 0},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(series(t, reg, "sessionfence_decisions_total", tt.labels)); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.labels, got, tt.want)
		}
	}
	// 6 kinds without a scope × 2 + 2 kinds × 6 scopes × 2 = 36 series,
	// all created up front.
	if n := testutil.CollectAndCount(reg, "sessionfence_decisions_total"); n != 36 {
		t.Errorf("%d decision series, want 36", n)
	}
}

// series returns one series of a gathered counter as a collector for
// testutil.ToFloat64 (value -1 when the series does not exist).
func series(t *testing.T, reg *prometheus.Registry, name, labels string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				var parts []string
				for _, lp := range m.GetLabel() {
					parts = append(parts, lp.GetName()+`="`+lp.GetValue()+`"`)
				}
				if sameLabels(parts, labels) {
					ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "x", nil, nil), prometheus.CounterValue, m.GetCounter().GetValue())
					return
				}
			}
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "x", nil, nil), prometheus.CounterValue, -1)
	})
}

func sameLabels(parts []string, labels string) bool {
	want := strings.Split(labels, ",")
	if len(want) != len(parts) {
		return false
	}
	for _, w := range want {
		found := false
		for _, p := range parts {
			if p == w {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

func TestBumpsBackchannelStoreAndCache(t *testing.T) {
	o, reg := newObserver(t)
	o.Bump("revoke", middleware.ScopeGlobal)
	o.Bump("revoke", middleware.ScopeGlobal)
	o.Bump("announce", middleware.ScopeTenant)
	o.Bump("reload", middleware.ScopeSubject)
	o.Bump("explode", middleware.ScopeGlobal)
	o.Backchannel("applied")
	o.Backchannel("applied")
	o.Backchannel("rejected:bad_signature")
	o.Backchannel("Rejected because <script>") // not a safe label value
	o.StoreError(middleware.StoreOpFences)
	o.StoreLatency(middleware.StoreOpFences, 2*time.Microsecond)
	o.StoreLatency(middleware.StoreOpFences, 300*time.Microsecond)
	o.StoreLatency(middleware.StoreOpBump, 3*time.Millisecond)
	o.CacheLookup(true)
	o.CacheLookup(true)
	o.CacheLookup(true)
	o.CacheLookup(false)

	checks := []struct {
		name, labels string
		want         float64
	}{
		{"sessionfence_bumps_total", `kind="revoke",scope="global"`, 2},
		{"sessionfence_bumps_total", `kind="announce",scope="tenant"`, 1},
		{"sessionfence_bumps_total", `kind="reload",scope="subject"`, 1},
		{"sessionfence_bumps_total", `kind="other",scope="other"`, 1},
		{"sessionfence_backchannel_logouts_total", `result="applied"`, 2},
		{"sessionfence_backchannel_logouts_total", `result="rejected:bad_signature"`, 1},
		{"sessionfence_backchannel_logouts_total", `result="other"`, 1},
		{"sessionfence_store_errors_total", `op="fences"`, 1},
		{"sessionfence_store_errors_total", `op="bump"`, 0},
		{"sessionfence_cache_lookups_total", `result="hit"`, 3},
		{"sessionfence_cache_lookups_total", `result="miss"`, 1},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(series(t, reg, c.name, c.labels)); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// op -> (count, observations at or below 5µs, at or below 500µs)
	want := map[string][3]uint64{"fences": {2, 1, 2}, "bump": {1, 0, 0}, "audit": {0, 0, 0}, "registry": {0, 0, 0}}
	seen := 0
	for _, mf := range mfs {
		if mf.GetName() != "sessionfence_store_latency_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			op := m.GetLabel()[0].GetValue()
			h := m.GetHistogram()
			var le5us, le500us uint64
			for _, b := range h.GetBucket() {
				switch b.GetUpperBound() {
				case 5e-6:
					le5us = b.GetCumulativeCount()
				case 500e-6:
					le500us = b.GetCumulativeCount()
				}
			}
			if got := [3]uint64{h.GetSampleCount(), le5us, le500us}; got != want[op] {
				t.Errorf("latency{op=%q}: count, ≤5µs, ≤500µs = %v, want %v", op, got, want[op])
			}
			seen++
		}
	}
	if seen != len(want) {
		t.Errorf("%d latency series, want %d", seen, len(want))
	}
}

func TestLabelValuesAreBounded(t *testing.T) {
	o, reg := newObserver(t)
	for i := range 500 {
		o.Backchannel("r" + strconv.Itoa(i))
	}
	if n := testutil.CollectAndCount(reg, "sessionfence_backchannel_logouts_total"); n > 65 {
		t.Fatalf("%d back-channel series after 500 distinct results; want at most 64 plus other", n)
	}
	if got := testutil.ToFloat64(series(t, reg, "sessionfence_backchannel_logouts_total", `result="other"`)); got != 500-64 {
		t.Fatalf("other = %v, want %d", got, 500-64)
	}
}

func TestNewRefusesASecondRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := prom.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := prom.New(reg); err == nil {
		t.Fatal("a second Observer registered on the same registry")
	}
}

func BenchmarkDecision(b *testing.B) {
	o, _ := newObserver(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.Decision(middleware.DecisionAllowed, 0, false)
		}
	})
}

func BenchmarkStoreLatency(b *testing.B) {
	o, _ := newObserver(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.StoreLatency(middleware.StoreOpFences, time.Microsecond)
		}
	})
}
