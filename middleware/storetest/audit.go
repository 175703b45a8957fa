package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sessionfence/sessionfence/middleware"
)

// The subtests of the optional abilities AuditLog and Registry. Each one
// skips when the store under test does not implement the ability.
var logCases = []testCase{
	{"audit entries come back newest first with ids and times assigned", testAuditOrder},
	{"audit pages follow the cursor down to the oldest entry", testAuditPages},
	{"an audit page holds 100 entries unless a limit up to 500 is asked", testAuditLimit},
	{"every field of an audit entry round trips", testAuditRoundTrip},
	{"the audit log keeps only about its capacity of newest entries", testAuditCap},
	{"a malformed audit cursor fails", testAuditBadCursor},
	{"tracked sessions are listed for their user only, most recently seen first", testRegistryList},
	{"every field of a tracked session round trips", testRegistryRoundTrip},
	{"sessions are counted per global, tenant and subject scope", testRegistryCounts},
	{"tracking a session again replaces its record", testRegistryRetrack},
	{"a forgotten session is neither listed nor counted", testRegistryForget},
	{"a session is forgotten once its expiry has passed", testRegistryExpiry},
	{"users whose naive keys collide are kept apart", testRegistryNoCollision},
	{"a session without id, issuer or subject is refused", testRegistryInvalid},
}

func appendAudit(t *testing.T, l middleware.AuditLog, e middleware.AuditEntry) middleware.AuditEntry {
	t.Helper()
	got, err := l.AppendAudit(t.Context(), e)
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if got.ID == "" {
		t.Fatal("AppendAudit assigned no ID")
	}
	return got
}

func audit(t *testing.T, l middleware.AuditLog, q middleware.AuditQuery) ([]middleware.AuditEntry, string) {
	t.Helper()
	es, next, err := l.Audit(t.Context(), q)
	if err != nil {
		t.Fatalf("Audit(%+v): %v", q, err)
	}
	return es, next
}

// appendN appends n entries whose Reason is their number, from first.
func appendN(t *testing.T, l middleware.AuditLog, first, n int) []middleware.AuditEntry {
	t.Helper()
	out := make([]middleware.AuditEntry, n)
	for i := range n {
		out[i] = appendAudit(t, l, middleware.AuditEntry{
			Actor: "cli:test", Action: "terminate_user", Scope: "subject:https://idp|u",
			Reason: strconv.Itoa(first + i), Affected: -1,
		})
	}
	return out
}

// allAudit reads every page, checking that the cursors are consistent.
func allAudit(t *testing.T, l middleware.AuditLog, limit int) []middleware.AuditEntry {
	t.Helper()
	var all []middleware.AuditEntry
	before := ""
	for page := 0; ; page++ {
		if page > 10000 {
			t.Fatal("the audit log pages without end")
		}
		es, next := audit(t, l, middleware.AuditQuery{Before: before, Limit: limit})
		all = append(all, es...)
		if next == "" {
			return all
		}
		if len(es) == 0 || next != es[len(es)-1].ID {
			t.Fatalf("page of %d entries returned cursor %q, want the last entry's ID", len(es), next)
		}
		before = next
	}
}

func reasons(es []middleware.AuditEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Reason
	}
	return out
}

func testAuditOrder(t *testing.T, s *suite) {
	a, b := ability[middleware.AuditLog](t, s, "AuditLog")
	if es, next := audit(t, a, middleware.AuditQuery{}); len(es) != 0 || next != "" {
		t.Fatalf("empty log returned %d entries and cursor %q", len(es), next)
	}
	before := s.storeNow(t)
	var want []string
	ids := map[string]bool{}
	for i := range 5 {
		l := []middleware.AuditLog{a, b}[i%2]
		e := appendAudit(t, l, middleware.AuditEntry{Actor: "a", Action: "reload", Scope: "global", Reason: strconv.Itoa(i)})
		if ids[e.ID] {
			t.Fatalf("ID %q assigned twice", e.ID)
		}
		ids[e.ID] = true
		if e.Time.Before(before.Truncate(time.Millisecond)) || e.Time.After(s.storeNow(t)) {
			t.Fatalf("assigned time %v is outside the store clock's window from %v", e.Time, before)
		}
		want = append([]string{strconv.Itoa(i)}, want...)
	}
	for _, l := range []middleware.AuditLog{a, b} {
		es, next := audit(t, l, middleware.AuditQuery{})
		if got := reasons(es); !slices.Equal(got, want) || next != "" {
			t.Fatalf("Audit returned %v and cursor %q, want %v and none", got, next, want)
		}
	}
}

func testAuditPages(t *testing.T, s *suite) {
	a, b := ability[middleware.AuditLog](t, s, "AuditLog")
	written := appendN(t, a, 0, 25)
	var want []string
	for i := len(written) - 1; i >= 0; i-- {
		want = append(want, written[i].Reason)
	}
	for _, limit := range []int{1, 7, 10, 25, 26} {
		if got := reasons(allAudit(t, b, limit)); !slices.Equal(got, want) {
			t.Fatalf("pages of %d read %v, want %v", limit, got, want)
		}
	}
	// A cursor taken before more entries were appended still pages from
	// where it was.
	es, next := audit(t, a, middleware.AuditQuery{Limit: 10})
	appendN(t, a, 25, 3)
	es2, _ := audit(t, a, middleware.AuditQuery{Before: next, Limit: 10})
	if len(es) != 10 || len(es2) != 10 || es2[0].Reason != "14" {
		t.Fatalf("second page after more appends starts at %v, want 14", reasons(es2))
	}
	// The cursor of the oldest entry reads an empty last page.
	if es, next := audit(t, a, middleware.AuditQuery{Before: written[0].ID}); len(es) != 0 || next != "" {
		t.Fatalf("page before the oldest entry returned %v and cursor %q", reasons(es), next)
	}
}

func testAuditLimit(t *testing.T, s *suite) {
	a, _ := ability[middleware.AuditLog](t, s, "AuditLog")
	if s.h.AuditCap != 0 && s.h.AuditCap < 120 {
		t.Skipf("harness audit capacity %d is under the 120 entries this test needs", s.h.AuditCap)
	}
	appendN(t, a, 0, 120)
	for _, tt := range []struct {
		limit, want int
	}{{0, 100}, {-1, 100}, {501, 100}, {500, 120}, {120, 120}, {50, 50}} {
		es, next := audit(t, a, middleware.AuditQuery{Limit: tt.limit})
		if len(es) != tt.want || (tt.want < 120) != (next != "") {
			t.Fatalf("limit %d: %d entries and cursor %q, want %d", tt.limit, len(es), next, tt.want)
		}
	}
}

func testAuditRoundTrip(t *testing.T, s *suite) {
	a, b := ability[middleware.AuditLog](t, s, "AuditLog")
	at := time.Date(2031, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	when := time.Date(2030, 12, 31, 23, 59, 58, 123_456_789, time.UTC)
	full := middleware.AuditEntry{
		Time: when, Actor: "https://idp|admin", Action: "announce", Scope: "tenant:acme",
		Reason: "maintenance: ünïcode \"quoted\"\nnew line", Policy: "mfa", EffectiveAt: &at,
		Generation: 1 << 40, Affected: 12345, RequestID: "req-1", ClientIP: "2001:db8::1",
		KeptSession: "s-kept", Notes: []string{"revoke refresh token: timeout", ""},
	}
	minimal := middleware.AuditEntry{Actor: "backchannel:https://idp", Action: "backchannel_logout", Scope: "session:x", Affected: -1}
	wantFull := appendAudit(t, a, full)
	wantMin := appendAudit(t, a, minimal)
	if !wantFull.Time.Equal(when) {
		t.Fatalf("AppendAudit changed a given time from %v to %v", when, wantFull.Time)
	}
	wantFull.ID = ""
	wantMin.ID = ""
	if msg := diffAudit(wantFull, full); msg != "" {
		t.Fatalf("AppendAudit returned an entry that differs from the one given: %s", msg)
	}
	es, _ := audit(t, b, middleware.AuditQuery{})
	if len(es) != 2 {
		t.Fatalf("Audit returned %d entries, want 2", len(es))
	}
	es[0].ID, es[1].ID = "", ""
	if msg := diffAudit(es[1], full); msg != "" {
		t.Fatalf("full entry read back differs: %s", msg)
	}
	if msg := diffAudit(es[0], wantMin); msg != "" {
		t.Fatalf("minimal entry read back differs: %s", msg)
	}
	// The store keeps its own copy.
	atWas := at
	full.Notes[0] = "changed"
	*full.EffectiveAt = time.Time{} // that is, at
	es, _ = audit(t, a, middleware.AuditQuery{})
	if es[1].Notes[0] != "revoke refresh token: timeout" || !es[1].EffectiveAt.Equal(atWas) {
		t.Fatal("changing the appended entry changed the stored one")
	}
}

// diffAudit describes how got differs from want, comparing times with
// Equal; "" when they are the same.
func diffAudit(got, want middleware.AuditEntry) string {
	eqTime := func(a, b *time.Time) bool {
		if a == nil || b == nil {
			return a == nil && b == nil
		}
		return a.Equal(*b)
	}
	g, w := got, want
	if !g.Time.Equal(w.Time) || !eqTime(g.EffectiveAt, w.EffectiveAt) || !slices.Equal(g.Notes, w.Notes) {
		return fmt.Sprintf("\n got %+v\nwant %+v", got, want)
	}
	g.Time, w.Time, g.EffectiveAt, w.EffectiveAt, g.Notes, w.Notes = time.Time{}, time.Time{}, nil, nil, nil, nil
	if fmt.Sprint(g) != fmt.Sprint(w) {
		return fmt.Sprintf("\n got %+v\nwant %+v", got, want)
	}
	return ""
}

func testAuditCap(t *testing.T, s *suite) {
	a, _ := ability[middleware.AuditLog](t, s, "AuditLog")
	if s.h.AuditCap <= 0 {
		t.Skip("harness does not state the audit capacity")
	}
	limit, slack := s.h.AuditCap, s.h.AuditSlack
	n := limit + slack + 50
	appendN(t, a, 0, n)
	all := allAudit(t, a, 500)
	if len(all) < limit || len(all) > limit+slack {
		t.Fatalf("log keeps %d entries after %d appends, want %d to %d", len(all), n, limit, limit+slack)
	}
	// What is kept is the newest entries, in order.
	for i, e := range all {
		if want := strconv.Itoa(n - 1 - i); e.Reason != want {
			t.Fatalf("entry %d is %q, want %q: the log must drop the oldest entries", i, e.Reason, want)
		}
	}
}

func testAuditBadCursor(t *testing.T, s *suite) {
	a, _ := ability[middleware.AuditLog](t, s, "AuditLog")
	appendN(t, a, 0, 2)
	for _, c := range []string{"x", "-", "1-", "(1", "+", "1 2", "99999999999999999999999999-1"} {
		if _, _, err := a.Audit(t.Context(), middleware.AuditQuery{Before: c}); !errors.Is(err, middleware.ErrInvalidCursor) {
			t.Fatalf("Audit with the cursor %q: %v, want ErrInvalidCursor", c, err)
		}
	}
}
