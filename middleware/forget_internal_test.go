package middleware

import (
	"fmt"
	"testing"
)

// The set of forgotten sessions stays within its bound, and what happens
// past it is what its comment says.
func TestForgetSetIsBounded(t *testing.T) {
	f := forgetSet{half: 3}
	steps := []struct {
		name  string
		id    string
		write bool
	}{
		{"a new id is written", "a", true},
		{"the same id again is not", "a", false},
		{"a second id is written", "b", true},
		{"a third id fills the current generation", "c", true},
		{"a fourth id starts a new generation", "d", true},
		{"an id of the older generation is still remembered", "b", false},
		{"a fifth id fills the new generation (d, b, e)", "e", true},
		{"a sixth id discards the oldest generation (a, c)", "f", true},
		{"an id seen again was carried over and is still remembered", "b", false},
		{"an id not seen since the bound's churn is written once more", "a", true},
	}
	for _, st := range steps {
		if got := f.add(st.id); got != st.write {
			t.Fatalf("%s: add(%q) = %v, want %v", st.name, st.id, got, st.write)
		}
	}
	for i := range 100 {
		f.add(fmt.Sprint(i))
		if n := len(f.cur) + len(f.prev); n > 2*f.half {
			t.Fatalf("after %d more ids the set holds %d, bound %d", i+1, n, 2*f.half)
		}
	}
	f.remove("99")
	if !f.add("99") {
		t.Fatal("an id removed (tracked again) must be written at its next refusal")
	}
}
