// Package propagation measures how long a terminate-all takes to reach
// every application instance while they serve load, and whether any
// instance accepts a revoked session after it has started refusing.
//
// One trial:
//
//  1. Mint fresh sessions (one to poll with, a few for the load) under the
//     current fences.
//  2. Every target serves load with them; a poller per target polls with
//     its own session until the target has accepted it and some load
//     (so the fences are cached on every instance).
//  3. t_send: the writer revokes (terminate-all); t_reply: it returns.
//  4. Pollers keep polling until their target refuses, then send a few
//     more polls; the load keeps going with the same (now revoked)
//     sessions throughout.
//
// Definitions, per target i:
//
//   - F_i, first refusal: the earliest time a response refusing one of
//     the trial's sessions (401) was received from i, poll or load.
//   - propagation P_i = max(0, F_i - t_reply): how long after the writer's
//     reply target i was seen refusing. It includes one HTTP round trip,
//     so it bounds the instance's own delay from above.
//   - the bound B_i = t_reply + P_i = F_i.
//   - accepted within the bound: responses that accepted a trial session
//     for a request sent after t_reply but no later than F_i. Expected
//     and bounded by P_i: the price of client-side caching.
//   - late acceptance: a response that accepted a trial session for a
//     request sent after F_i. Must be zero: once an instance has refused
//     a revoked session it never accepts one again.
//
// All times come from this process's monotonic clock.
package propagation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures [Run].
type Config struct {
	// Targets are the instances' base URLs; GET <target>/private is the
	// guarded endpoint.
	Targets []string
	// Issue mints a session and returns the Cookie header value. It should
	// read its own writes (use the writer's store).
	Issue func(ctx context.Context, subject string) (string, error)
	// Revoke is the writer: terminate-all, on its own client.
	Revoke func(ctx context.Context) error
	// Trials to run. Default 100.
	Trials int
	// LoadWorkers per target, each a closed loop. Default 2.
	LoadWorkers int
	// LoadSessions per trial, shared by the load workers. Default 4.
	LoadSessions int
	// After is how many polls each poller sends after its target's first
	// refusal, to catch late acceptances. Default 20.
	After int
	// Limit bounds each phase of a trial: warming, and every target
	// refusing after the reply. A trial that exceeds it is an error.
	// Default 5 s.
	Limit time.Duration
	// BeforeRevoke, if set, runs after warming and before the revoke of
	// trial i (the cluster test starts a failover there).
	BeforeRevoke func(ctx context.Context, trial int) error
}

// Trial is one trial's outcome.
type Trial struct {
	Write       time.Duration   // t_reply - t_send
	Propagation []time.Duration // P_i per target
	All         time.Duration   // max P_i: every target refuses
	LastStale   time.Duration   // latest send time, after t_reply, of an accepted request (0 if none)
	Within      int             // accepted within the bound
	Late        int             // late acceptances
	Requests    int             // requests recorded during the trial
	Other       int             // responses neither 200 nor 401, and transport errors
	RoundTrips  []time.Duration // recv - sent of every request: what one HTTP round trip costs under this load
}

type sample struct {
	target     int
	sent, recv time.Duration // since the trial's base
	status     int           // 0 for a transport error
}

type trialState struct {
	cookies []string
	base    time.Time
	loadOK  []atomic.Int64 // accepted load requests per target

	mu      sync.Mutex
	stopped bool
	samples []sample
	flight  sync.WaitGroup // load requests in flight
}

func (st *trialState) record(s sample) {
	st.mu.Lock()
	st.samples = append(st.samples, s)
	st.mu.Unlock()
}

// begin registers a load request about to be sent; false once the trial
// stopped recording.
func (st *trialState) begin() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped {
		return false
	}
	st.flight.Add(1)
	return true
}

func (st *trialState) closed() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stopped
}

// finish stops the load from starting requests with this trial's sessions
// and waits for those in flight, whose outcomes still count.
func (st *trialState) finish() {
	st.mu.Lock()
	st.stopped = true
	st.mu.Unlock()
	st.flight.Wait()
}

// get sends GET url with cookie and returns the status (0 on error).
func get(ctx context.Context, c *http.Client, url, cookie string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Cookie", cookie)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Run runs the trials and returns them; it stops at the first trial that
// breaks a limit, returning the trials so far with the error.
func Run(ctx context.Context, cfg Config) ([]Trial, error) {
	if cfg.Trials == 0 {
		cfg.Trials = 100
	}
	if cfg.LoadWorkers == 0 {
		cfg.LoadWorkers = 2
	}
	if cfg.LoadSessions == 0 {
		cfg.LoadSessions = 4
	}
	if cfg.After == 0 {
		cfg.After = 20
	}
	if cfg.Limit == 0 {
		cfg.Limit = 5 * time.Second
	}
	if len(cfg.Targets) == 0 || cfg.Issue == nil || cfg.Revoke == nil {
		return nil, errors.New("propagation: Targets, Issue and Revoke are required")
	}
	n := len(cfg.Targets)
	tr := &http.Transport{MaxIdleConns: n * (cfg.LoadWorkers + 2), MaxIdleConnsPerHost: cfg.LoadWorkers + 2, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Limit}

	// The load: LoadWorkers closed loops per target, following the trials.
	var (
		mu      sync.Mutex
		current *trialState
		next    = make(chan struct{}) // closed and replaced when current changes
	)
	cur := func() (*trialState, chan struct{}) {
		mu.Lock()
		defer mu.Unlock()
		return current, next
	}
	set := func(st *trialState) {
		mu.Lock()
		current = st
		close(next)
		next = make(chan struct{})
		mu.Unlock()
	}
	stop := make(chan struct{})
	var workers sync.WaitGroup
	for t := range n {
		url := cfg.Targets[t] + "/private"
		for w := range cfg.LoadWorkers {
			workers.Add(1)
			go func() {
				defer workers.Done()
				for {
					st, ch := cur()
					if st == nil || st.closed() {
						select {
						case <-ch:
							continue
						case <-stop:
							return
						}
					}
					i := w + t
					for st.begin() {
						cookie := st.cookies[i%len(st.cookies)]
						i++
						sent := time.Since(st.base)
						code := get(ctx, client, url, cookie)
						st.record(sample{target: t, sent: sent, recv: time.Since(st.base), status: code})
						if code == http.StatusOK {
							st.loadOK[t].Add(1)
						}
						st.flight.Done()
					}
				}
			}()
		}
	}
	defer func() {
		set(nil)
		close(stop)
		workers.Wait()
	}()

	var trials []Trial
	for k := range cfg.Trials {
		if err := ctx.Err(); err != nil {
			return trials, err
		}
		tr, err := runTrial(ctx, cfg, client, k, set)
		if err != nil {
			return trials, fmt.Errorf("propagation: trial %d: %w", k, err)
		}
		trials = append(trials, tr)
	}
	return trials, nil
}

func runTrial(ctx context.Context, cfg Config, client *http.Client, k int, set func(*trialState)) (Trial, error) {
	n := len(cfg.Targets)
	cookies := make([]string, cfg.LoadSessions+1)
	for i := range cookies {
		c, err := cfg.Issue(ctx, fmt.Sprintf("trial-%d-%d", k, i))
		if err != nil {
			return Trial{}, fmt.Errorf("issue: %w", err)
		}
		cookies[i] = c
	}
	poll := cookies[0]
	st := &trialState{cookies: cookies[1:], base: time.Now(), loadOK: make([]atomic.Int64, n)}
	set(st)
	defer st.finish()

	// Warm: each poller polls until its target accepted the poll session
	// and some load; then waits for the revoke; then polls until refused
	// plus After more.
	warmed := make(chan int, n)
	revoked := make(chan struct{})
	var aborted atomic.Bool // set before revoked is closed when no revoke follows
	var pollers sync.WaitGroup
	pollErr := make([]error, n)
	for t := range n {
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			url := cfg.Targets[t] + "/private"
			deadline := time.Now().Add(cfg.Limit)
			accepted := false
			for !accepted || st.loadOK[t].Load() < int64(cfg.LoadWorkers) {
				if time.Now().After(deadline) {
					pollErr[t] = fmt.Errorf("target %d did not accept fresh sessions within %v", t, cfg.Limit)
					warmed <- t
					return
				}
				sent := time.Since(st.base)
				code := get(ctx, client, url, poll)
				st.record(sample{target: t, sent: sent, recv: time.Since(st.base), status: code})
				accepted = accepted || code == http.StatusOK
			}
			warmed <- t
			<-revoked
			if aborted.Load() {
				return
			}
			deadline = time.Now().Add(cfg.Limit)
			after := -1
			for after < cfg.After {
				if time.Now().After(deadline) {
					pollErr[t] = fmt.Errorf("target %d still accepted the revoked session %v after the reply", t, cfg.Limit)
					return
				}
				sent := time.Since(st.base)
				code := get(ctx, client, url, poll)
				st.record(sample{target: t, sent: sent, recv: time.Since(st.base), status: code})
				if code == http.StatusUnauthorized || after >= 0 {
					after++
				}
			}
		}()
	}
	for range n {
		<-warmed
	}
	abort := func() {
		aborted.Store(true)
		close(revoked)
		pollers.Wait()
	}
	if err := errors.Join(pollErr...); err != nil {
		abort()
		return Trial{}, err
	}
	if cfg.BeforeRevoke != nil {
		if err := cfg.BeforeRevoke(ctx, k); err != nil {
			abort()
			return Trial{}, err
		}
	}
	tSend := time.Since(st.base)
	err := cfg.Revoke(ctx)
	tReply := time.Since(st.base)
	close(revoked)
	pollers.Wait()
	if err != nil {
		return Trial{}, fmt.Errorf("revoke: %w", err)
	}
	if err := errors.Join(pollErr...); err != nil {
		return Trial{}, err
	}
	st.finish()
	return analyse(st.samples, n, tSend, tReply), nil
}

// analyse applies the definitions of the package documentation.
func analyse(samples []sample, n int, tSend, tReply time.Duration) Trial {
	tr := Trial{Write: tReply - tSend, Propagation: make([]time.Duration, n), Requests: len(samples)}
	first := make([]time.Duration, n)
	for i := range first {
		first[i] = -1
	}
	tr.RoundTrips = make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		tr.RoundTrips = append(tr.RoundTrips, s.recv-s.sent)
		switch s.status {
		case http.StatusUnauthorized:
			if first[s.target] < 0 || s.recv < first[s.target] {
				first[s.target] = s.recv
			}
		case http.StatusOK:
		default:
			tr.Other++
		}
	}
	for i, f := range first {
		tr.Propagation[i] = max(0, f-tReply)
		tr.All = max(tr.All, tr.Propagation[i])
	}
	for _, s := range samples {
		if s.status != http.StatusOK || s.sent <= tReply {
			continue
		}
		tr.LastStale = max(tr.LastStale, s.sent-tReply)
		if s.sent > first[s.target] {
			tr.Late++
		} else {
			tr.Within++
		}
	}
	return tr
}
