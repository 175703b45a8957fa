package faults_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/adapters/nethttp"
	"github.com/sessionfence/sessionfence/bench/internal/redisproc"
	"github.com/sessionfence/sessionfence/bench/internal/variants"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// app is one application instance: its own valkey-go client, store,
// guard and HTTP server.
type app struct {
	client valkey.Client
	store  *valkeystore.Store
	guard  *middleware.Guard
	srv    *httptest.Server
	http   *http.Client
}

type appOptions struct {
	client func(*valkey.ClientOption)
	store  func(*valkeystore.Config)
	guard  func(*middleware.Config)
}

func newApp(t *testing.T, addr, prefix string, key []byte, o appOptions) *app {
	t.Helper()
	co := valkey.ClientOption{InitAddress: []string{addr}}
	if o.client != nil {
		o.client(&co)
	}
	c, err := valkey.NewClient(co)
	if err != nil {
		t.Fatalf("valkey.NewClient: %v", err)
	}
	t.Cleanup(c.Close)
	sc := valkeystore.Config{Prefix: prefix}
	if o.store != nil {
		o.store(&sc)
	}
	st, err := valkeystore.New(c, sc)
	if err != nil {
		t.Fatalf("valkeystore.New: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	gc := middleware.Config{Store: st, Keys: [][]byte{key}, InsecureCookies: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if o.guard != nil {
		o.guard(&gc)
	}
	g, err := middleware.New(gc)
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	srv := httptest.NewServer(nethttp.Middleware(g)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})))
	t.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &app{client: c, store: st, guard: g, srv: srv, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// issue mints a session for subject and returns the cookie.
func (a *app) issue(t *testing.T, subject string) *http.Cookie {
	t.Helper()
	_, c, err := a.guard.Issue(context.Background(), variants.Claims(subject))
	if err != nil {
		t.Fatalf("issue %s: %v", subject, err)
	}
	return c
}

// answer is one response of the guarded endpoint.
type answer struct {
	status int    // 0: transport error
	code   string // the refusal body's "error"
	scope  string // the refusal body's "scope"
}

func (a *app) get(cookie *http.Cookie) answer {
	req, err := http.NewRequest(http.MethodGet, a.srv.URL, nil)
	if err != nil {
		return answer{}
	}
	req.AddCookie(cookie)
	resp, err := a.http.Do(req)
	if err != nil {
		return answer{}
	}
	defer resp.Body.Close()
	ans := answer{status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		var body middleware.RefusalBody
		_ = json.NewDecoder(resp.Body).Decode(&body)
		ans.code, ans.scope = body.Error, body.Scope
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return ans
}

// until polls cond until it holds or limit passes (then fails the test).
// Polling, never sleeping for a guessed time.
func until(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	wait := 200 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		tm := time.NewTimer(wait)
		<-tm.C
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// event is one request of a load run.
type event struct {
	sent, recv time.Time
	ans        answer
}

// load runs workers closed loops against a with cookies until stop is
// closed, recording every request.
type load struct {
	mu     sync.Mutex
	events []event
	ok     int
	wg     sync.WaitGroup
	stop   chan struct{}
}

func startLoad(a *app, cookies []*http.Cookie, workers int) *load {
	l := &load{stop: make(chan struct{})}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				sent := time.Now()
				ans := a.get(cookies[i%len(cookies)])
				l.mu.Lock()
				l.events = append(l.events, event{sent: sent, recv: time.Now(), ans: ans})
				if ans.status == http.StatusOK {
					l.ok++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// count returns how many recorded events satisfy f.
func (l *load) count(f func(event) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if f(e) {
			n++
		}
	}
	return n
}

func (l *load) end() []event {
	close(l.stop)
	l.wg.Wait()
	return l.events
}

// rawDo runs one command on srv over a connection of its own, without
// valkey-go: what the server holds, seen by the harness, not by the client
// under test.
func rawDo(t *testing.T, srv *redisproc.Server, args ...string) any {
	t.Helper()
	c, err := redisproc.Dial(srv.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", srv.Addr, err)
	}
	defer c.Close()
	v, err := c.Do(args...)
	if err != nil {
		t.Fatalf("%v on %s: %v", args, srv.Addr, err)
	}
	return v
}

// rawGet reads key on srv with rawDo ("" when absent).
func rawGet(t *testing.T, srv *redisproc.Server, key string) string {
	t.Helper()
	s, _ := rawDo(t, srv, "GET", key).(string)
	return s
}
