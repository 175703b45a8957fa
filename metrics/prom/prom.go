// Package prom exports sessionfence's decisions, fence changes, store
// health and back-channel logout outcomes as Prometheus metrics. It is
// optional: the core (package middleware) defines the [middleware.Observer]
// interface and stays dependency-free; this package implements it on
// github.com/prometheus/client_golang.
//
//	obs, err := prom.New(prometheus.DefaultRegisterer)
//	guard, err := middleware.New(middleware.Config{Store: store, Keys: keys, Observer: obs})
//	http.Handle("/metrics", promhttp.Handler())
//
// Metrics (all prefixed sessionfence_):
//
//	decisions_total{decision, scope, stale}   counter: one per request decision
//	bumps_total{kind, scope}                   counter: fence changes (revoke, announce, cancel, reload)
//	backchannel_logouts_total{result}          counter: back-channel logout requests by outcome
//	store_errors_total{op}                     counter: failed store operations
//	store_latency_seconds{op}                  histogram: store operation latency
//	cache_lookups_total{result}                counter: fence reads answered from the client-side cache (hit) or not (miss)
//
// Cache hit ratio: rate(sessionfence_cache_lookups_total{result="hit"}[5m])
// / rate(sessionfence_cache_lookups_total[5m]).
//
// Label values are bounded: decision and scope names are fixed sets, op and
// result values are restricted to short [a-z0-9_:] words and at most 64
// distinct values per label, beyond which they are counted as "other", so
// a misbehaving caller cannot explode the series count.
//
// Security: no label carries a user, tenant, session or token value.
package prom

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionfence/sessionfence/middleware"
)

var (
	_ middleware.Observer            = (*Observer)(nil)
	_ middleware.BackchannelObserver = (*Observer)(nil)
	_ middleware.CacheObserver       = (*Observer)(nil)
)

// The decision kinds and scope kinds the middleware defines, indexed by
// their numeric values. Scope 0 ("none") is reported for decisions that
// no scope refused.
const (
	numDecisions = int(middleware.DecisionStoreUnavailable) + 1
	numScopes    = int(middleware.ScopeEpoch) + 1
	numBumps     = int(middleware.BumpReload) + 1
	maxLabelVals = 64
)

// LatencyBuckets are the store latency histogram's buckets, in seconds:
// from 5µs (a warm client-side cache answers in about 1µs, so the first
// bucket holds the cache hits) to 1s (past the store's default 500ms
// timeout).
var LatencyBuckets = []float64{5e-6, 25e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1}

// Observer implements [middleware.Observer], [middleware.BackchannelObserver]
// and [middleware.CacheObserver] with Prometheus collectors. It is safe for
// concurrent use. Decision, Bump and CacheLookup do not allocate; every
// series a request can touch is created up front.
type Observer struct {
	decisions [numDecisions][numScopes][2]prometheus.Counter
	bumps     [numBumps][numScopes]prometheus.Counter
	hits      prometheus.Counter
	misses    prometheus.Counter

	decisionVec    *prometheus.CounterVec
	bumpVec        *prometheus.CounterVec
	backchannelVec *prometheus.CounterVec
	errorVec       *prometheus.CounterVec
	latencyVec     *prometheus.HistogramVec
	cacheVec       *prometheus.CounterVec

	backchannel labelCache[prometheus.Counter]
	errs        labelCache[prometheus.Counter]
	latency     labelCache[prometheus.Observer]
}

// New creates the collectors and registers them with reg
// (prometheus.DefaultRegisterer when nil). It fails if reg refuses one,
// typically because an Observer is already registered there: build one
// per registry and share it between guards.
func New(reg prometheus.Registerer) (*Observer, error) {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	o := &Observer{
		decisionVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionfence_decisions_total",
			Help: "Request decisions by kind (allowed, revoked, ...), refusing scope (none unless revoked or reauth_required), and whether bounded staleness answered.",
		}, []string{"decision", "scope", "stale"}),
		bumpVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionfence_bumps_total",
			Help: "Fence changes by kind (revoke, announce, cancel, reload) and scope.",
		}, []string{"kind", "scope"}),
		backchannelVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionfence_backchannel_logouts_total",
			Help: "Back-channel logout requests by outcome.",
		}, []string{"result"}),
		errorVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionfence_store_errors_total",
			Help: "Failed store operations by operation.",
		}, []string{"op"}),
		latencyVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sessionfence_store_latency_seconds",
			Help:    "Store operation latency by operation, failed or not.",
			Buckets: LatencyBuckets,
		}, []string{"op"}),
		cacheVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionfence_cache_lookups_total",
			Help: "Fence reads answered from the client-side cache (hit) or from the server (miss).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{o.decisionVec, o.bumpVec, o.backchannelVec, o.errorVec, o.latencyVec, o.cacheVec} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("prom: sessionfence metrics are already registered with this registerer; share one Observer")
			}
			return nil, err
		}
	}
	// Create every series a request can touch, so the hot path is an
	// array index and an atomic add, and dashboards see zeros rather than
	// gaps. Scopes are recorded only for the kinds a scope refuses.
	for k := 1; k < numDecisions; k++ {
		kind := middleware.DecisionKind(k)
		for s := 0; s < numScopes; s++ {
			if s != 0 && kind != middleware.DecisionRevoked && kind != middleware.DecisionReauthRequired {
				continue
			}
			if s == 0 && (kind == middleware.DecisionRevoked || kind == middleware.DecisionReauthRequired) {
				continue
			}
			for st, stale := range []string{"false", "true"} {
				o.decisions[k][s][st] = o.decisionVec.WithLabelValues(kind.String(), scopeName(middleware.ScopeKind(s)), stale)
			}
		}
	}
	for b := 1; b < numBumps; b++ {
		for s := 1; s < numScopes-1; s++ { // no bump of the epoch
			o.bumps[b][s] = o.bumpVec.WithLabelValues(middleware.BumpKind(b).String(), scopeName(middleware.ScopeKind(s)))
		}
	}
	o.hits = o.cacheVec.WithLabelValues("hit")
	o.misses = o.cacheVec.WithLabelValues("miss")
	o.backchannel.make = func(v string) prometheus.Counter { return o.backchannelVec.WithLabelValues(v) }
	o.errs.make = func(v string) prometheus.Counter { return o.errorVec.WithLabelValues(v) }
	o.latency.make = func(v string) prometheus.Observer { return o.latencyVec.WithLabelValues(v) }
	for _, op := range []string{middleware.StoreOpFences, middleware.StoreOpBump, middleware.StoreOpAudit, middleware.StoreOpRegistry} {
		o.errs.get(op)
		o.latency.get(op)
	}
	return o, nil
}

func scopeName(s middleware.ScopeKind) string {
	if s == 0 {
		return "none"
	}
	return s.String()
}

// Decision implements [middleware.Observer]. Unknown kinds or scopes (a
// newer middleware) are counted under the closest known series: the
// scope is dropped, an unknown kind is not counted.
func (o *Observer) Decision(kind middleware.DecisionKind, scope middleware.ScopeKind, stale bool) {
	k, s := int(kind), int(scope)
	if k <= 0 || k >= numDecisions {
		return
	}
	if s < 0 || s >= numScopes {
		s = 0
	}
	st := 0
	if stale {
		st = 1
	}
	c := o.decisions[k][s][st]
	if c == nil {
		// A scope reported for a kind that has none (or none for one
		// that has): count the decision without it.
		if c = o.decisions[k][0][st]; c == nil {
			return
		}
	}
	c.Inc()
}

// Bump implements [middleware.Observer].
func (o *Observer) Bump(kind string, scope middleware.ScopeKind) {
	b := 0
	for i := 1; i < numBumps; i++ {
		if middleware.BumpKind(i).String() == kind {
			b = i
		}
	}
	if b == 0 || scope <= 0 || int(scope) >= numScopes || o.bumps[b][scope] == nil {
		o.bumpVec.WithLabelValues("other", "other").Inc()
		return
	}
	o.bumps[b][scope].Inc()
}

// StoreError implements [middleware.Observer].
func (o *Observer) StoreError(op string) { o.errs.get(op).Inc() }

// StoreLatency implements [middleware.Observer].
func (o *Observer) StoreLatency(op string, d time.Duration) { o.latency.get(op).Observe(d.Seconds()) }

// Backchannel implements [middleware.BackchannelObserver]: result is the
// receiver's outcome code.
func (o *Observer) Backchannel(result string) { o.backchannel.get(result).Inc() }

// CacheLookup implements [middleware.CacheObserver].
func (o *Observer) CacheLookup(hit bool) {
	if hit {
		o.hits.Inc()
	} else {
		o.misses.Inc()
	}
}

// labelCache maps a free-form label value to its child collector, with
// sanitised values and a bound on distinct values.
type labelCache[T any] struct {
	make func(string) T
	m    sync.Map // string -> T
	mu   sync.Mutex
	n    int
}

func (c *labelCache[T]) get(v string) T {
	if x, ok := c.m.Load(v); ok {
		return x.(T)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if x, ok := c.m.Load(v); ok {
		return x.(T)
	}
	label := v
	if !validLabel(v) || c.n >= maxLabelVals {
		label = "other"
	}
	x := c.make(label)
	if c.n < maxLabelVals {
		// Remember the value (even when mapped to "other") until the
		// bound; past it, unknown values take the slow path, which is
		// still correct and only ever hit by a misbehaving caller.
		c.m.Store(v, x)
		c.n++
	}
	return x
}

// validLabel accepts short words of lower-case letters, digits, '_' and
// ':' (the back-channel receiver reports "rejected:<code>").
func validLabel(v string) bool {
	if v == "" || len(v) > 48 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}
