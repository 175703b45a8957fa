package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

const regIssuer = "https://idp.example"

// session returns a SessionInfo for sub in tenant, created at base+created
// and last seen at base+seen, living until base+life.
func session(id, sub, tenant string, base time.Time, created, seen, life time.Duration) middleware.SessionInfo {
	return middleware.SessionInfo{
		ID: id, Issuer: regIssuer, Subject: sub, Tenant: tenant,
		Created: base.Add(created), LastSeen: base.Add(seen), Expires: base.Add(life),
	}
}

func track(t *testing.T, r middleware.Registry, ss ...middleware.SessionInfo) {
	t.Helper()
	for _, s := range ss {
		if err := r.TrackSession(t.Context(), s); err != nil {
			t.Fatalf("TrackSession(%s): %v", s.ID, err)
		}
	}
}

func forget(t *testing.T, r middleware.Registry, s middleware.SessionInfo) {
	t.Helper()
	if err := r.ForgetSession(t.Context(), s); err != nil {
		t.Fatalf("ForgetSession(%s): %v", s.ID, err)
	}
}

func sessionIDs(t *testing.T, r middleware.Registry, issuer, sub string) []string {
	t.Helper()
	ss, err := r.Sessions(t.Context(), issuer, sub)
	if err != nil {
		t.Fatalf("Sessions(%s, %s): %v", issuer, sub, err)
	}
	ids := make([]string, len(ss))
	for i, s := range ss {
		if s.Issuer != issuer || s.Subject != sub {
			t.Fatalf("Sessions(%s, %s) listed %s of %s|%s", issuer, sub, s.ID, s.Issuer, s.Subject)
		}
		ids[i] = s.ID
	}
	return ids
}

func count(t *testing.T, r middleware.Registry, sc middleware.Scope) (int, bool) {
	t.Helper()
	n, ok, err := r.CountSessions(t.Context(), sc)
	if err != nil {
		t.Fatalf("CountSessions(%v): %v", sc, err)
	}
	return n, ok
}

func wantCount(t *testing.T, r middleware.Registry, sc middleware.Scope, want int) {
	t.Helper()
	if n, ok := count(t, r, sc); !ok || n != want {
		t.Fatalf("CountSessions(%v) = %d, %v; want %d, true", sc, n, ok, want)
	}
}

func testRegistryList(t *testing.T, s *suite) {
	a, b := ability[middleware.Registry](t, s, "Registry")
	now := s.storeNow(t)
	h := time.Hour
	track(t, a,
		session("alice-old", "alice", "acme", now, -3*h, -2*h, 5*h),
		session("alice-new", "alice", "acme", now, -h, -time.Minute, 5*h),
		session("alice-phone", "alice", "", now, -4*h, -30*time.Minute, 2*h),
		session("bob-1", "bob", "acme", now, -h, -h, 5*h),
	)
	for _, r := range []middleware.Registry{a, b} {
		if got, want := sessionIDs(t, r, regIssuer, "alice"), []string{"alice-new", "alice-phone", "alice-old"}; !slices.Equal(got, want) {
			t.Fatalf("alice's sessions %v, want %v (most recently seen first)", got, want)
		}
		if got := sessionIDs(t, r, regIssuer, "bob"); !slices.Equal(got, []string{"bob-1"}) {
			t.Fatalf("bob's sessions %v, want [bob-1]", got)
		}
		for _, u := range [][2]string{{regIssuer, "carol"}, {"https://other.example", "alice"}} {
			if got := sessionIDs(t, r, u[0], u[1]); len(got) != 0 {
				t.Fatalf("%s|%s has sessions %v, want none", u[0], u[1], got)
			}
		}
	}
}

func testRegistryRoundTrip(t *testing.T, s *suite) {
	a, b := ability[middleware.Registry](t, s, "Registry")
	now := s.storeNow(t)
	want := middleware.SessionInfo{
		ID: "s-1", Issuer: regIssuer, Subject: "alice", Tenant: "acme",
		UserAgent: "Mozilla/5.0 (ünïcode; \"quoted\")", IP: "2001:db8::1",
		Created:  now.Add(-time.Hour).Truncate(time.Millisecond).Add(123 * time.Microsecond),
		LastSeen: now.Add(-time.Minute).Truncate(time.Millisecond),
		Expires:  now.Add(10 * time.Hour).Truncate(time.Millisecond),
	}
	track(t, a, want)
	ss, err := b.Sessions(t.Context(), regIssuer, "alice")
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	if len(ss) != 1 {
		t.Fatalf("Sessions returned %d sessions, want 1", len(ss))
	}
	got := ss[0]
	if !got.Created.Equal(want.Created) || !got.LastSeen.Equal(want.LastSeen) || !got.Expires.Equal(want.Expires) {
		t.Fatalf("times differ:\n got %+v\nwant %+v", got, want)
	}
	got.Created, got.LastSeen, got.Expires = want.Created, want.LastSeen, want.Expires
	if got != want {
		t.Fatalf("session read back differs:\n got %+v\nwant %+v", got, want)
	}
}

func testRegistryCounts(t *testing.T, s *suite) {
	a, b := ability[middleware.Registry](t, s, "Registry")
	now := s.storeNow(t)
	var all []middleware.SessionInfo
	for i := range 7 {
		tenant := []string{"acme", "acme", "acme", "globex", "", "globex", "acme"}[i]
		sub := []string{"alice", "alice", "bob", "carol", "dave", "carol", "alice"}[i]
		all = append(all, session(fmt.Sprintf("s-%d", i), sub, tenant, now, 0, 0, time.Hour))
	}
	track(t, a, all...)
	for _, r := range []middleware.Registry{a, b} {
		for _, tt := range []struct {
			scope middleware.Scope
			want  int
		}{
			{middleware.GlobalScope(), 7},
			{middleware.TenantScope("acme"), 4},
			{middleware.TenantScope("globex"), 2},
			{middleware.TenantScope("initech"), 0},
			{middleware.SubjectScope(regIssuer, "alice"), 3},
			{middleware.SubjectScope(regIssuer, "carol"), 2},
			{middleware.SubjectScope(regIssuer, "nobody"), 0},
			{middleware.SubjectScope("https://other.example", "alice"), 0},
		} {
			wantCount(t, r, tt.scope, tt.want)
		}
		for _, sc := range []middleware.Scope{middleware.IdPSessionScope(regIssuer, "sid"), middleware.SessionScope("s-1")} {
			if _, ok := count(t, r, sc); ok {
				t.Fatalf("CountSessions(%v) claims to count a scope it cannot", sc)
			}
		}
	}
	if _, _, err := a.CountSessions(t.Context(), middleware.TenantScope("")); !errors.Is(err, middleware.ErrInvalidScope) {
		t.Fatalf("count of an invalid scope: error %v, want ErrInvalidScope", err)
	}
}

func testRegistryRetrack(t *testing.T, s *suite) {
	a, b := ability[middleware.Registry](t, s, "Registry")
	now := s.storeNow(t)
	first := session("s-1", "alice", "acme", now, 0, 0, time.Hour)
	track(t, a, first, session("s-2", "alice", "acme", now, 0, time.Second, time.Hour))
	again := first
	again.LastSeen = now.Add(time.Minute)
	again.IP = "192.0.2.7"
	again.Expires = now.Add(2 * time.Hour)
	track(t, b, again)
	ss, err := a.Sessions(t.Context(), regIssuer, "alice")
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	if len(ss) != 2 || ss[0].ID != "s-1" || ss[0].IP != "192.0.2.7" || !ss[0].LastSeen.Equal(again.LastSeen) {
		t.Fatalf("after tracking s-1 again: %+v", ss)
	}
	wantCount(t, a, middleware.GlobalScope(), 2)
	wantCount(t, a, middleware.TenantScope("acme"), 2)
	wantCount(t, a, middleware.SubjectScope(regIssuer, "alice"), 2)
}

func testRegistryForget(t *testing.T, s *suite) {
	a, b := ability[middleware.Registry](t, s, "Registry")
	now := s.storeNow(t)
	s1 := session("s-1", "alice", "acme", now, 0, 0, time.Hour)
	s2 := session("s-2", "alice", "acme", now, 0, 0, time.Hour)
	track(t, a, s1, s2)
	forget(t, b, s1)
	forget(t, b, s1) // forgetting twice is harmless
	forget(t, b, session("never", "zed", "", now, 0, 0, time.Hour))
	for _, r := range []middleware.Registry{a, b} {
		if got := sessionIDs(t, r, regIssuer, "alice"); !slices.Equal(got, []string{"s-2"}) {
			t.Fatalf("sessions after forgetting s-1: %v", got)
		}
		wantCount(t, r, middleware.GlobalScope(), 1)
		wantCount(t, r, middleware.TenantScope("acme"), 1)
		wantCount(t, r, middleware.SubjectScope(regIssuer, "alice"), 1)
	}
	forget(t, a, middleware.SessionInfo{ID: s2.ID}) // the id alone is enough
	wantCount(t, a, middleware.GlobalScope(), 0)
	wantCount(t, a, middleware.TenantScope("acme"), 0)
	if got := sessionIDs(t, a, regIssuer, "alice"); len(got) != 0 {
		t.Fatalf("sessions after forgetting all: %v", got)
	}
}

func testRegistryExpiry(t *testing.T, s *suite) {
	a, b := ability[middleware.Registry](t, s, "Registry")
	now := s.storeNow(t)
	ttl := s.shortTTL()
	short := session("short", "alice", "acme", now, 0, time.Millisecond, ttl)
	long := session("long", "alice", "acme", now, 0, 0, 100*365*24*time.Hour)
	past := session("past", "alice", "acme", now, -2*time.Hour, -2*time.Hour, -time.Hour)
	track(t, a, short, long, past)
	listed := func(r middleware.Registry) func() bool {
		return func() bool {
			n, _ := count(t, r, middleware.SubjectScope(regIssuer, "alice"))
			return n == 2 && slices.Equal(sessionIDs(t, r, regIssuer, "alice"), []string{"short", "long"})
		}
	}
	gone := func(r middleware.Registry) func() bool {
		return func() bool {
			for _, sc := range []middleware.Scope{middleware.GlobalScope(), middleware.TenantScope("acme"), middleware.SubjectScope(regIssuer, "alice")} {
				if n, _ := count(t, r, sc); n != 1 {
					return false
				}
			}
			return slices.Equal(sessionIDs(t, r, regIssuer, "alice"), []string{"long"})
		}
	}
	if s.realTime() {
		// On a slow machine the short session may be gone already; the
		// session that expired an hour ago must never show.
		if got := sessionIDs(t, a, regIssuer, "alice"); slices.Contains(got, "past") {
			t.Fatalf("a session tracked after its expiry is listed: %v", got)
		}
	} else if !listed(a)() {
		t.Fatalf("sessions right after tracking: %v", sessionIDs(t, a, regIssuer, "alice"))
	}
	s.expire(t, ttl, "the session is forgotten", listed(b), gone(b))
	if !gone(a)() {
		t.Fatal("the expired session is still listed or counted on the first client")
	}
	// A session tracked again after it expired comes back.
	short.Expires = s.storeNow(t).Add(time.Hour)
	track(t, a, short)
	wantCount(t, b, middleware.SubjectScope(regIssuer, "alice"), 2)
}

func testRegistryNoCollision(t *testing.T, s *suite) {
	a, _ := ability[middleware.Registry](t, s, "Registry")
	now := s.storeNow(t)
	users := [][2]string{{"a|b", "c"}, {"a", "b|c"}, {"{x}", "y"}, {"%7Bx%7D", "y"}}
	for i, u := range users {
		info := session(fmt.Sprintf("s-%d", i), u[1], "", now, 0, 0, time.Hour)
		info.Issuer = u[0]
		track(t, a, info)
	}
	for i, u := range users {
		if got := sessionIDs(t, a, u[0], u[1]); !slices.Equal(got, []string{fmt.Sprintf("s-%d", i)}) {
			t.Fatalf("sessions of %q|%q: %v", u[0], u[1], got)
		}
		wantCount(t, a, middleware.SubjectScope(u[0], u[1]), 1)
	}
	wantCount(t, a, middleware.TenantScope("a|b"), 0)
	track(t, a, session("t-1", "u", "{x}", now, 0, 0, time.Hour))
	wantCount(t, a, middleware.TenantScope("{x}"), 1)
	wantCount(t, a, middleware.TenantScope("%7Bx%7D"), 0)
}

func testRegistryInvalid(t *testing.T, s *suite) {
	a, _ := ability[middleware.Registry](t, s, "Registry")
	now := s.storeNow(t)
	good := session("s-1", "alice", "", now, 0, 0, time.Hour)
	for _, tt := range []struct {
		name string
		edit func(*middleware.SessionInfo)
	}{
		{"no id", func(i *middleware.SessionInfo) { i.ID = "" }},
		{"no issuer", func(i *middleware.SessionInfo) { i.Issuer = "" }},
		{"no subject", func(i *middleware.SessionInfo) { i.Subject = "" }},
	} {
		bad := good
		tt.edit(&bad)
		if err := a.TrackSession(t.Context(), bad); !errors.Is(err, middleware.ErrInvalidScope) {
			t.Fatalf("track with %s: error %v, want ErrInvalidScope", tt.name, err)
		}
	}
	if err := a.ForgetSession(t.Context(), middleware.SessionInfo{Issuer: "i", Subject: "s"}); !errors.Is(err, middleware.ErrInvalidScope) {
		t.Fatalf("forget without an id: error %v, want ErrInvalidScope", err)
	}
	wantCount(t, a, middleware.GlobalScope(), 0)
}
