// Package loadgen drives an HTTP endpoint on loopback with a fixed number
// of concurrent workers (a closed loop: each worker sends its next request
// when the previous answer arrived) for a bounded time, and records every
// request's latency.
package loadgen

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Result is one run.
type Result struct {
	Elapsed   time.Duration
	Requests  int
	Status    map[int]int // responses by status code
	Errors    int         // transport errors
	Latencies []time.Duration
}

// Throughput is requests per second over the run.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// NewTransport returns a keep-alive transport with conns connections to
// one loopback host.
func NewTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
}

// Run sends GET url with cookie header values (worker i uses
// cookies[i%len(cookies)]) from conc workers for dur, and returns what
// happened. A request still in flight at the end is waited for (bounded
// by a 5 s client timeout) and counted.
func Run(ctx context.Context, url string, cookies []string, conc int, dur time.Duration) Result {
	tr := NewTransport(conc)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	type part struct {
		lat    []time.Duration
		status map[int]int
		errs   int
	}
	parts := make([]part, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conc {
		wg.Add(1)
		go func(p *part, cookie string) {
			defer wg.Done()
			p.status = make(map[int]int)
			p.lat = make([]time.Duration, 0, 1<<14)
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				p.errs++
				return
			}
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			for ctx.Err() == nil {
				t := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					p.errs++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				p.lat = append(p.lat, time.Since(t))
				p.status[resp.StatusCode]++
			}
		}(&parts[i], pick(cookies, i))
	}
	wg.Wait()
	res := Result{Elapsed: time.Since(start), Status: make(map[int]int)}
	for _, p := range parts {
		res.Latencies = append(res.Latencies, p.lat...)
		res.Errors += p.errs
		for k, v := range p.status {
			res.Status[k] += v
			res.Requests += v
		}
	}
	return res
}

func pick(cookies []string, i int) string {
	if len(cookies) == 0 {
		return ""
	}
	return cookies[i%len(cookies)]
}
