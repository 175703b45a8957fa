package memstore_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

func TestWipeForgetsEveryAbilitysData(t *testing.T) {
	clock := newFakeClock()
	s := memstore.New(memstore.Config{Now: clock.Now})
	ctx := t.Context()
	if _, err := s.Remember(ctx, "jti", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSecret(ctx, "k", "v", time.Hour); err != nil {
		t.Fatal(err)
	}
	oldUnlock, ok, err := s.TryLock(ctx, "lease", time.Hour)
	if err != nil || !ok {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	before, err := s.AppendAudit(ctx, middleware.AuditEntry{Action: "reload"})
	if err != nil {
		t.Fatal(err)
	}
	info := middleware.SessionInfo{ID: "s", Issuer: "https://idp", Subject: "alice", Expires: clock.Now().Add(time.Hour)}
	if err := s.TrackSession(ctx, info); err != nil {
		t.Fatal(err)
	}

	s.Wipe()

	if first, _ := s.Remember(ctx, "jti", time.Hour); !first {
		t.Error("a remembered id survived the wipe")
	}
	if _, ok, _ := s.Secret(ctx, "k"); ok {
		t.Error("a secret survived the wipe")
	}
	if es, _, _ := s.Audit(ctx, middleware.AuditQuery{}); len(es) != 0 {
		t.Errorf("%d audit entries survived the wipe", len(es))
	}
	if n, _, _ := s.CountSessions(ctx, middleware.GlobalScope()); n != 0 {
		t.Errorf("%d sessions survived the wipe", n)
	}
	// The lease is free again, and the unlock from before the wipe cannot
	// release the lease taken after it.
	if _, ok, _ := s.TryLock(ctx, "lease", time.Hour); !ok {
		t.Fatal("a lease survived the wipe")
	}
	_ = oldUnlock(ctx)
	if _, ok, _ := s.TryLock(ctx, "lease", time.Hour); ok {
		t.Error("an unlock from before the wipe released a lease taken after it")
	}
	// IDs keep growing, so an old cursor never names a new entry.
	after, _ := s.AppendAudit(ctx, middleware.AuditEntry{Action: "reload"})
	if after.ID == before.ID {
		t.Errorf("audit ID %s reused after the wipe", after.ID)
	}
	if es, _, _ := s.Audit(ctx, middleware.AuditQuery{Before: after.ID}); len(es) != 0 {
		t.Errorf("page before the first entry after the wipe holds %d entries", len(es))
	}
}

func TestAuditCapDefaultsTo10000(t *testing.T) {
	s := memstore.New(memstore.Config{})
	ctx := t.Context()
	for range memstore.DefaultAuditCap + 5 {
		if _, err := s.AppendAudit(ctx, middleware.AuditEntry{Action: "reload"}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for before := ""; ; {
		es, next, err := s.Audit(ctx, middleware.AuditQuery{Before: before, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
		if next == "" {
			break
		}
		before = next
	}
	if n != memstore.DefaultAuditCap {
		t.Fatalf("log keeps %d entries, want %d", n, memstore.DefaultAuditCap)
	}
}

func TestSessionsListsAtMostTheBoundAndTheLatestExpiring(t *testing.T) {
	clock := newFakeClock()
	s := memstore.New(memstore.Config{Now: clock.Now})
	ctx := t.Context()
	for i := range memstore.MaxListedSessions + 10 {
		info := middleware.SessionInfo{ID: strconv.Itoa(i), Issuer: "https://idp", Subject: "bot",
			Expires: clock.Now().Add(time.Hour + time.Duration(i)*time.Second)}
		if err := s.TrackSession(ctx, info); err != nil {
			t.Fatal(err)
		}
	}
	ss, err := s.Sessions(ctx, "https://idp", "bot")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != memstore.MaxListedSessions {
		t.Fatalf("listed %d sessions, want %d", len(ss), memstore.MaxListedSessions)
	}
	for _, info := range ss {
		if i, _ := strconv.Atoi(info.ID); i < 10 {
			t.Fatalf("listed session %s, one of the earliest to expire", info.ID)
		}
	}
	if n, _, _ := s.CountSessions(ctx, middleware.SubjectScope("https://idp", "bot")); n != memstore.MaxListedSessions+10 {
		t.Fatalf("count %d, want every session", n)
	}
}

// BenchmarkRegistry measures TrackSession and CountSessions with 10k and
// 100k live sessions: TrackSession is O(log n), CountSessions O(1), so
// both must stay flat.
func BenchmarkRegistry(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		clock := newFakeClock()
		s := memstore.New(memstore.Config{Now: clock.Now})
		ctx := context.Background()
		for i := range n {
			info := middleware.SessionInfo{ID: "fill-" + strconv.Itoa(i), Issuer: "https://idp", Subject: "u" + strconv.Itoa(i%5000),
				Tenant: "acme", Expires: clock.Now().Add(time.Hour + time.Duration(i)*time.Millisecond)}
			if err := s.TrackSession(ctx, info); err != nil {
				b.Fatal(err)
			}
		}
		info := middleware.SessionInfo{Issuer: "https://idp", Subject: "alice", Tenant: "acme", Expires: clock.Now().Add(2 * time.Hour)}
		ids := make([]string, 1000)
		for i := range ids {
			ids[i] = "s-" + strconv.Itoa(i)
		}
		b.Run(fmt.Sprintf("TrackSession/sessions=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				info.ID = ids[i%len(ids)]
				i++
				if err := s.TrackSession(ctx, info); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, sc := range []middleware.Scope{middleware.GlobalScope(), middleware.TenantScope("acme"), middleware.SubjectScope("https://idp", "u1")} {
			b.Run(fmt.Sprintf("CountSessions/%s/sessions=%d", sc.Kind, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, ok, err := s.CountSessions(ctx, sc); err != nil || !ok {
						b.Fatal(ok, err)
					}
				}
			})
		}
	}
}
