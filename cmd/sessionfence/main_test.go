package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/internal/valkeytest"
	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

const iss = "https://idp.test"

// app is the application side of a test: a guard on the same store the
// CLI acts on, to issue sessions and see the CLI's effect.
type app struct {
	addr, prefix string
	guard        *middleware.Guard
	store        *valkeystore.Store
	client       valkey.Client
}

// newApp builds the application side on a fresh key prefix; mod adjusts
// its guard's configuration.
func newApp(t *testing.T, mod ...func(*middleware.Config)) *app {
	t.Helper()
	addr := valkeytest.Addr(t)
	prefix := valkeytest.Prefix()
	valkeytest.Cleanup(t, addr, prefix)
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	st, err := valkeystore.New(client, valkeystore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := middleware.Config{Store: st, Keys: [][]byte{middleware.GenerateKey()},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mod {
		m(&cfg)
	}
	g, err := middleware.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &app{addr: addr, prefix: prefix, guard: g, store: st, client: client}
}

func (a *app) env(k string) string {
	switch k {
	case "SESSIONFENCE_VALKEY_ADDR":
		return a.addr
	case "SESSIONFENCE_PREFIX":
		return a.prefix
	case "USER":
		return "tester"
	}
	return ""
}

func (a *app) issue(t *testing.T, sub, tenant string) string {
	t.Helper()
	_, ck, err := a.guard.Issue(context.Background(), middleware.Claims{Issuer: iss, Subject: sub, Tenant: tenant, AuthTime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return ck.Value
}

// kind is the decision for a cookie value, waiting out the sub-millisecond
// invalidation after a write made by the CLI's own client.
func (a *app) kind(t *testing.T, cookie string, want middleware.DecisionKind) middleware.DecisionKind {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		k := a.guard.Check(context.Background(), cookie).Kind
		if k == want || time.Now().After(deadline) {
			return k
		}
	}
}

// tty is an interactive stdin for the confirmation prompt.
type tty struct{ io.Reader }

func (tty) IsTerminal() bool { return true }

type result struct {
	code           int
	stdout, stderr string
}

func (a *app) run(stdin io.Reader, args ...string) result {
	var out, errb bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := run(args, stdin, &out, &errb, a.env)
	return result{code, out.String(), errb.String()}
}

func (a *app) global(t *testing.T) middleware.Fence {
	t.Helper()
	var f [1]middleware.Fence
	if _, err := a.store.Fences(context.Background(), []middleware.Scope{middleware.GlobalScope()}, f[:]); err != nil {
		t.Fatal(err)
	}
	return f[0]
}

func TestUsageErrors(t *testing.T) {
	a := &app{addr: "127.0.0.1:1", prefix: "{x}:"} // never reached: usage is checked first
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no command", nil, exitUsage},
		{"an unknown command", []string{"nuke"}, exitUsage},
		{"help", []string{"help"}, exitOK},
		{"a command's -h", []string{"terminate-user", "-h"}, exitOK},
		{"terminate-tenant without a tenant", []string{"terminate-tenant"}, exitUsage},
		{"terminate-user with one argument", []string{"terminate-user", iss}, exitUsage},
		{"terminate-all with an argument", []string{"terminate-all", "now", "--yes"}, exitUsage},
		{"an unknown flag", []string{"terminate-all", "--force"}, exitUsage},
		{"a flag of another command", []string{"status", "--reason", "x"}, exitUsage},
		{"an unknown policy", []string{"terminate-all", "--yes", "--reauth=strong"}, exitUsage},
		{"an at that is not a time", []string{"terminate-all", "--yes", "--at=tomorrow"}, exitUsage},
		{"an at in the past", []string{"terminate-all", "--yes", "--at=2001-01-01T00:00:00Z"}, exitUsage},
		{"a negative relative at", []string{"terminate-all", "--yes", "--at=+-5m"}, exitUsage},
		{"an empty actor", []string{"terminate-all", "--yes", "--actor="}, exitUsage},
		{"cancel without a scope", []string{"cancel"}, exitUsage},
		{"cancel with an unknown scope", []string{"cancel", "planet", "x"}, exitUsage},
		{"cancel with a scope missing its argument", []string{"cancel", "user", iss}, exitUsage},
		{"audit with limit 0", []string{"audit", "--limit", "0"}, exitUsage},
		{"audit with limit 501", []string{"audit", "--limit=501"}, exitUsage},
		{"status with a malformed scope", []string{"status", "subject:alice"}, exitUsage},
		{"a zero timeout", []string{"status", "--timeout=0s"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.run(nil, tt.args...)
			if r.code != tt.want {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", r.code, tt.want, r.stdout, r.stderr)
			}
		})
	}
}

func TestStoreUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	a := &app{addr: addr, prefix: "{x}:"}
	for _, args := range [][]string{{"status"}, {"terminate-user", iss, "alice"}, {"terminate-all", "--yes"}} {
		if r := a.run(nil, args...); r.code != exitUnavailable || !strings.Contains(r.stderr, "store unavailable") {
			t.Errorf("%v: exit %d, stderr %q; want %d", args, r.code, r.stderr, exitUnavailable)
		}
	}
}

func TestTerminateAllNeedsConfirmation(t *testing.T) {
	tests := []struct {
		name  string
		stdin io.Reader
		args  []string
		want  int
	}{
		{"without --yes from a script it is refused", strings.NewReader("terminate-all\n"), nil, exitRefused},
		{"at a terminal a wrong word is refused", tty{strings.NewReader("yes\n")}, nil, exitRefused},
		{"at a terminal end of input is refused", tty{strings.NewReader("")}, nil, exitRefused},
		{"at a terminal the typed word confirms", tty{strings.NewReader("terminate-all\n")}, nil, exitOK},
		{"--yes confirms", nil, []string{"--yes"}, exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(t)
			v := a.issue(t, "alice", "acme")
			r := a.run(tt.stdin, append([]string{"terminate-all", "--reason", "drill"}, tt.args...)...)
			if r.code != tt.want {
				t.Fatalf("exit %d, want %d; stderr %s", r.code, tt.want, r.stderr)
			}
			gen := a.global(t).Gen
			want := middleware.DecisionAllowed
			if tt.want == exitOK {
				want = middleware.DecisionRevoked
				if gen != 1 {
					t.Fatalf("global generation %d after a confirmed terminate-all", gen)
				}
			} else if gen != 0 {
				t.Fatalf("a refused terminate-all moved the global fence to %d", gen)
			}
			if k := a.kind(t, v, want); k != want {
				t.Fatalf("session after: %v, want %v", k, want)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	a := newApp(t)
	root := a.issue(t, "root", "ops")
	alice := a.issue(t, "alice", "acme")
	alice2 := a.issue(t, "alice", "acme")
	bob := a.issue(t, "bob", "globex")
	carol := a.issue(t, "carol", "acme")
	carolSession, _ := a.guard.SessionFromCookie(carol)

	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		after  map[string]middleware.DecisionKind
	}{
		{"sessions lists a user's devices", []string{"sessions", iss, "alice"}, exitOK, "2 live session(s)", nil},
		{"terminate-session ends one session", []string{"terminate-session", carolSession.ID, "--reason", "stolen cookie"}, exitOK,
			"terminate_session: session:" + carolSession.ID, map[string]middleware.DecisionKind{"carol": middleware.DecisionRevoked, "bob": middleware.DecisionAllowed}},
		{"terminate-user ends one user on every device, flags after arguments", []string{"terminate-user", iss, "alice", "--reason", "lost laptop", "--reauth=mfa"}, exitOK,
			"sessions affected: 2", map[string]middleware.DecisionKind{"alice": middleware.DecisionReauthRequired, "alice2": middleware.DecisionReauthRequired, "bob": middleware.DecisionAllowed}},
		{"an announced tenant termination", []string{"terminate-tenant", "globex", "--at=+1h", "--reason", "migration"}, exitOK,
			"announced: tenant:globex", map[string]middleware.DecisionKind{"bob": middleware.DecisionAllowed}},
		{"cancel withdraws it", []string{"cancel", "tenant", "globex", "--reason", "postponed"}, exitOK, "cancelled", nil},
		{"cancel with nothing pending fails", []string{"cancel", "tenant:globex"}, exitFailed, "", nil},
		{"reload moves the reload generation", []string{"reload", "tenant", "acme"}, exitOK, "reload generation 1", nil},
		{"terminate-tenant ends one tenant", []string{"terminate-tenant", "globex"}, exitOK, "terminate_tenant: tenant:globex",
			map[string]middleware.DecisionKind{"bob": middleware.DecisionRevoked, "root": middleware.DecisionAllowed}},
		{"status shows the fences asked for", []string{"status", "tenant", "globex", "user", iss, "alice"}, exitOK, "subject:" + iss + "|alice", nil},
		{"terminate-all with --yes", []string{"terminate-all", "--yes", "--reason", "breach", "--actor", "cli:oncall"}, exitOK, "terminate_all: global",
			map[string]middleware.DecisionKind{"root": middleware.DecisionRevoked}},
	}
	cookies := map[string]string{"root": root, "alice": alice, "alice2": alice2, "bob": bob, "carol": carol}
	for _, st := range steps {
		r := a.run(nil, st.args...)
		if r.code != st.code || !strings.Contains(r.stdout, st.stdout) {
			t.Fatalf("%s: exit %d (want %d)\nstdout %s\nstderr %s", st.name, r.code, st.code, r.stdout, r.stderr)
		}
		for who, want := range st.after {
			if k := a.kind(t, cookies[who], want); k != want {
				t.Errorf("%s: %s is %v, want %v", st.name, who, k, want)
			}
		}
	}

	// The audit log, as JSON, newest first, exact.
	r := a.run(nil, "audit", "--limit", "3", "--json")
	if r.code != exitOK {
		t.Fatalf("audit: %d %s", r.code, r.stderr)
	}
	var page struct {
		Entries []middleware.AuditEntry `json:"entries"`
		Next    string                  `json:"next"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil {
		t.Fatalf("audit --json is not JSON: %v\n%s", err, r.stdout)
	}
	if len(page.Entries) != 3 || page.Next == "" {
		t.Fatalf("audit page: %+v", page)
	}
	e := page.Entries[0]
	// Affected is not asserted here: it depends on whether ended
	// sessions have left the registry (terminate-user's entry, below in
	// the log, checks an exact count).
	if e.Actor != "cli:oncall" || e.Action != "terminate_all" || e.Scope != "global" || e.Reason != "breach" ||
		e.Policy != "none" || e.Generation != 1 || e.Affected < 0 {
		t.Errorf("newest entry = %+v", e)
	}
	if e := page.Entries[1]; e.Actor != "cli:tester" || e.Action != "terminate_tenant" || e.Scope != "tenant:globex" {
		t.Errorf("second entry = %+v", e)
	}
	// Paging goes on from the cursor.
	r = a.run(nil, "audit", "--limit", "1", "--before", page.Next, "--json")
	var older struct{ Entries []middleware.AuditEntry }
	if err := json.Unmarshal([]byte(r.stdout), &older); err != nil || len(older.Entries) != 1 || older.Entries[0].Action != "cancel" {
		t.Errorf("older page: %s %v", r.stdout, err)
	}
	if r := a.run(nil, "audit", "--before", "not-an-id"); r.code != exitUsage {
		t.Errorf("bad cursor: exit %d", r.code)
	}
	// Text output: newest last, like tail.
	r = a.run(nil, "audit", "--limit", "2")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != exitOK || len(lines) < 3 || !strings.Contains(lines[2], "terminate_all") || !strings.Contains(lines[1], "terminate_tenant") {
		t.Errorf("audit text:\n%s", r.stdout)
	}

	// status --json.
	r = a.run(nil, "status", "--json", "tenant:globex")
	var status struct {
		Epoch  string
		Fences []struct {
			Scope      string
			Generation uint64
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &status); err != nil || status.Epoch == "" || len(status.Fences) != 2 ||
		status.Fences[0].Generation != 1 || status.Fences[1].Scope != "tenant:globex" || status.Fences[1].Generation != 2 {
		// tenant:globex: announced (reserves 1), cancelled (1 is burned),
		// terminated (2).
		t.Errorf("status --json: %s %v", r.stdout, err)
	}
	// An action with --json.
	r = a.run(nil, "reload", "global", "--json")
	var act struct {
		Entry middleware.AuditEntry
		Fence struct{ Reload uint64 }
	}
	if err := json.Unmarshal([]byte(r.stdout), &act); err != nil || act.Entry.Action != "reload" || act.Fence.Reload != 1 {
		t.Errorf("reload --json: %s %v", r.stdout, err)
	}
}

// TestBinary builds the command and runs it as an operator would: exit
// codes and output come from the real process.
// pttl is the remaining time to live of sc's fence key on the server:
// -1 when it never expires, -2 when there is no such key.
func (a *app) pttl(t *testing.T, sc middleware.Scope) time.Duration {
	t.Helper()
	ms, err := a.client.Do(context.Background(), a.client.B().Pttl().Key(a.prefix+"f:"+sc.Key()).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if ms < 0 {
		return time.Duration(ms)
	}
	return time.Duration(ms) * time.Millisecond
}

// TestASessionFenceOutlivesTheApplicationsSessions guards issue 10, break
// 2, at the CLI: the CLI has no lifetimes of its own, so the fence it
// writes for terminate-session must last as long as the application's
// sessions (recorded in the store by its guard), not a default.
func TestASessionFenceOutlivesTheApplicationsSessions(t *testing.T) {
	t.Run("a 48 h session lifetime recorded by the application gives a fence of at least 48 h", func(t *testing.T) {
		a := newApp(t, func(c *middleware.Config) { c.AbsoluteLifetime = 48 * time.Hour })
		cookie := a.issue(t, "alice", "acme") // the guard records its lifetimes before issuing
		s, err := a.guard.SessionFromCookie(cookie)
		if err != nil {
			t.Fatal(err)
		}
		if r := a.run(nil, "terminate-session", s.ID, "--reason", "stolen cookie"); r.code != exitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if k := a.kind(t, cookie, middleware.DecisionRevoked); k != middleware.DecisionRevoked {
			t.Fatalf("after terminate-session: %v", k)
		}
		if ttl := a.pttl(t, middleware.SessionScope(s.ID)); ttl < 48*time.Hour {
			t.Fatalf("the fence's PTTL is %v, shorter than the application's 48h sessions", ttl)
		}
	})
	t.Run("with no lifetime recorded the fence is kept for ever", func(t *testing.T) {
		a := newApp(t) // its guard never issued: nothing is recorded
		sc := middleware.SessionScope("a-session-of-another-deployment")
		if r := a.run(nil, "terminate-session", sc.ID); r.code != exitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if ttl := a.pttl(t, sc); ttl != -1 {
			t.Fatalf("the fence's PTTL is %v, want -1 (no expiry)", ttl)
		}
	})
}

func TestBinary(t *testing.T) {
	a := newApp(t)
	bin := filepath.Join(t.TempDir(), "sessionfence")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "SESSIONFENCE_VALKEY_ADDR="+a.addr, "SESSIONFENCE_PREFIX="+a.prefix, "USER=binary")
	exitCode := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdin = nil // /dev/null: not a terminal
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	v := a.issue(t, "alice", "acme")
	if code, out := exitCode("terminate-all"); code != exitRefused || !strings.Contains(out, "--yes") {
		t.Fatalf("terminate-all without --yes: %d %s", code, out)
	}
	if code, out := exitCode("nonsense"); code != exitUsage {
		t.Fatalf("unknown command: %d %s", code, out)
	}
	if code, out := exitCode("terminate-user", iss, "alice", "--reason", "from the binary"); code != exitOK {
		t.Fatalf("terminate-user: %d %s", code, out)
	}
	if k := a.kind(t, v, middleware.DecisionRevoked); k != middleware.DecisionRevoked {
		t.Fatalf("alice after the binary's terminate-user: %v", k)
	}
	code, out := exitCode("audit", "--json", "--limit", "1")
	var page struct{ Entries []middleware.AuditEntry }
	if code != exitOK || json.Unmarshal([]byte(out), &page) != nil || len(page.Entries) != 1 ||
		page.Entries[0].Actor != "cli:binary" || page.Entries[0].Reason != "from the binary" {
		t.Fatalf("audit: %d %s", code, out)
	}
	if code, _ := exitCode("status", "--addr", "127.0.0.1:1"); code != exitUnavailable {
		t.Fatalf("unreachable store: exit %d", code)
	}
}
