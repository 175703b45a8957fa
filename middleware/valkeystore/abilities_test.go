package valkeystore_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// scanKeys lists every key under prefix.
func scanKeys(t *testing.T, c valkey.Client, prefix string) []string {
	t.Helper()
	var keys []string
	var cursor uint64
	for {
		e, err := c.Do(t.Context(), c.B().Scan().Cursor(cursor).Match(globEscape(prefix)+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatalf("SCAN: %v", err)
		}
		keys = append(keys, e.Elements...)
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	slices.Sort(keys)
	return keys
}

func TestAbilityKeysFollowTheDocumentedLayout(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	now := time.Now()
	if _, err := e.a.Remember(ctx, "https://idp|{jti}", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.a.PutSecret(ctx, "rt:s 1", "sealed", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := e.a.TryLock(ctx, "refresh:s1", time.Hour); err != nil || !ok {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	if _, err := e.a.AppendAudit(ctx, middleware.AuditEntry{Action: "reload"}); err != nil {
		t.Fatal(err)
	}
	info := middleware.SessionInfo{ID: "s|1", Issuer: "https://idp", Subject: "al{ice}", Tenant: "acme", Expires: now.Add(time.Hour)}
	if err := e.a.TrackSession(ctx, info); err != nil {
		t.Fatal(err)
	}
	p := e.prefix
	want := []string{
		p + "audit",
		p + "l:refresh:s1",
		p + "r:https://idp%7C%7Bjti%7D",
		p + "reg:all",
		p + "reg:s:s%7C1",
		p + "reg:t:acme",
		p + "reg:u:https://idp|al%7Bice%7D",
		p + "x:rt:s%201",
	}
	slices.Sort(want)
	if got := scanKeys(t, e.admin, p); !slices.Equal(got, want) {
		t.Fatalf("keys:\n got %q\nwant %q", got, want)
	}
	// Everything but the audit stream expires by itself.
	for _, k := range want {
		ttl, err := e.admin.Do(ctx, e.admin.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if k == p+"audit" {
			if ttl != -1 {
				t.Fatalf("the audit stream has a ttl of %dms", ttl)
			}
			continue
		}
		if ttl <= 0 || ttl > time.Hour.Milliseconds() {
			t.Fatalf("%s has a ttl of %dms, want about an hour", k, ttl)
		}
	}
	// The audit entry is one JSON field of its stream entry.
	xs, err := e.admin.Do(ctx, e.admin.B().Xrange().Key(p+"audit").Start("-").End("+").Build()).AsXRange()
	if err != nil || len(xs) != 1 || len(xs[0].FieldValues) != 1 || xs[0].FieldValues["e"] == "" {
		t.Fatalf("audit stream holds %+v (%v), want one entry with one field e", xs, err)
	}
}

func TestTrackSessionTrimsExpiredMembersWithoutASweeper(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	now := time.Now()
	sets := []string{e.prefix + "reg:all", e.prefix + "reg:t:acme", e.prefix + "reg:u:https://idp|alice"}
	// Members left behind by sessions that expired without being forgotten.
	for _, set := range sets {
		for i := range 5 {
			err := e.admin.Do(ctx, e.admin.B().Zadd().Key(set).ScoreMember().
				ScoreMember(float64(now.Add(-time.Duration(i+1)*time.Minute).UnixMilli()), "dead-"+strconv.Itoa(i)).Build()).Error()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// They are never counted, even before anything trims them.
	for _, sc := range []middleware.Scope{middleware.GlobalScope(), middleware.TenantScope("acme"), middleware.SubjectScope("https://idp", "alice")} {
		if n, ok, err := e.a.CountSessions(ctx, sc); err != nil || !ok || n != 0 {
			t.Fatalf("CountSessions(%v) = %d, %v, %v; want 0 before any trim", sc, n, ok, err)
		}
	}
	info := middleware.SessionInfo{ID: "live", Issuer: "https://idp", Subject: "alice", Tenant: "acme", Expires: now.Add(time.Hour)}
	if err := e.b.TrackSession(ctx, info); err != nil {
		t.Fatal(err)
	}
	for _, set := range sets {
		members, err := e.admin.Do(ctx, e.admin.B().Zrange().Key(set).Min("0").Max("-1").Build()).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(members, []string{"live"}) {
			t.Fatalf("%s holds %v after TrackSession, want only the live session", set, members)
		}
		ttl, err := e.admin.Do(ctx, e.admin.B().Pttl().Key(set).Build()).AsInt64()
		if err != nil || ttl <= 0 {
			t.Fatalf("%s has ttl %d (%v), want the expiry of its last member", set, ttl, err)
		}
	}
}

func TestRegistrySetsLiveAsLongAsTheirLatestSession(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	now := time.Now()
	long := middleware.SessionInfo{ID: "long", Issuer: "https://idp", Subject: "alice", Expires: now.Add(2 * time.Hour)}
	short := middleware.SessionInfo{ID: "short", Issuer: "https://idp", Subject: "alice", Expires: now.Add(time.Hour)}
	for _, s := range []middleware.SessionInfo{long, short} {
		if err := e.a.TrackSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	ttl, err := e.admin.Do(ctx, e.admin.B().Pttl().Key(e.prefix+"reg:u:https://idp|alice").Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if ttl < (time.Hour + 59*time.Minute).Milliseconds() {
		t.Fatalf("the user's set expires in %dms: a shorter session lowered the set's expiry below its longest member's", ttl)
	}
}

func TestAuditRefusesACursorBeforeSendingIt(t *testing.T) {
	e := newEnv(t)
	// A cursor is attacker input: it must never reach the server as an
	// argument it might read as a range bound of its own.
	for _, c := range []string{"+", "-", "(1-1", "1-1 COUNT 5", "0x1-1"} {
		if _, _, err := e.a.Audit(t.Context(), middleware.AuditQuery{Before: c}); err == nil {
			t.Fatalf("cursor %q accepted", c)
		}
	}
}

func TestNewRefusesANegativeAuditCap(t *testing.T) {
	c := newClient(t, serverAddr(t))
	_, err := valkeystore.New(c, valkeystore.Config{Prefix: testPrefix(), AuditCap: -1})
	if err == nil {
		t.Fatal("New accepted a negative AuditCap")
	}
}

// BenchmarkRegistry measures TrackSession and CountSessions with 10k and
// 100k live sessions in the global and tenant sets: both must cost about
// one round trip whatever the number of sessions.
func BenchmarkRegistry(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		addr := serverAddr(b)
		prefix := testPrefix()
		admin := newClient(b, addr)
		b.Cleanup(func() { deleteKeys(b, admin, prefix) })
		s := newStore(b, newClient(b, addr), prefix)
		ctx := context.Background()
		exp := float64(time.Now().Add(time.Hour).UnixMilli())
		// Fill the sets directly, 1000 members per ZADD: what counts is
		// their size, and TrackSession one by one would take minutes.
		for start := 0; start < n; start += 1000 {
			for _, set := range []string{prefix + "reg:all", prefix + "reg:t:acme"} {
				z := admin.B().Zadd().Key(set).ScoreMember()
				for i := start; i < start+1000; i++ {
					z = z.ScoreMember(exp, "fill-"+strconv.Itoa(i))
				}
				if err := admin.Do(ctx, z.Build()).Error(); err != nil {
					b.Fatal(err)
				}
			}
		}
		info := middleware.SessionInfo{ID: "s", Issuer: "https://idp", Subject: "alice", Tenant: "acme", Expires: time.Now().Add(time.Hour)}
		b.Run(fmt.Sprintf("TrackSession/sessions=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				info.ID = "s-" + strconv.Itoa(i%1000)
				i++
				if err := s.TrackSession(ctx, info); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, sc := range []middleware.Scope{middleware.GlobalScope(), middleware.TenantScope("acme")} {
			b.Run(fmt.Sprintf("CountSessions/%s/sessions=%d", sc.Kind, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if got, ok, err := s.CountSessions(ctx, sc); err != nil || !ok || got < n {
						b.Fatalf("CountSessions = %d, %v, %v; want at least %d", got, ok, err, n)
					}
				}
			})
		}
	}
}
