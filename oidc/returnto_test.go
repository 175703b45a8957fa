package oidc_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/oidc"
)

func TestValidReturnTo(t *testing.T) {
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"a plain path is accepted", "/app/me", true},
		{"the root is accepted", "/", true},
		{"a path with a query is accepted", "/reports?year=2026&q=a%20b", true},
		{"an encoded non-ASCII path is accepted", "/caf%C3%A9", true},
		{"a colon after the first segment is accepted", "/users/a:b", true},
		{"an empty value is refused", "", false},
		{"a relative path is refused", "app/me", false},
		{"a protocol-relative URL is refused", "//evil.example/x", false},
		{"a backslash after the slash is refused", "/\\evil.example", false},
		{"a backslash later in the path is refused", "/app\\..\\x", false},
		{"an absolute URL is refused", "https://evil.example/", false},
		{"another scheme is refused", "javascript:alert(1)", false},
		{"an encoded double slash is refused", "/%2F%2Fevil.example", false},
		{"an encoded slash after the first is refused", "/%2fevil.example", false},
		{"an encoded backslash is refused", "/%5Cevil.example", false},
		{"a doubly encoded double slash is refused", "/%252F%252Fevil.example", false},
		{"a triply encoded double slash is refused", "/%25252F%25252Fevil.example", false},
		{"a tab that browsers strip is refused", "/\t/evil.example", false},
		{"an encoded tab is refused", "/%09/evil.example", false},
		{"a newline is refused", "/\n/evil.example", false},
		{"a dot-dot segment is refused", "/x/..//evil.example", false},
		{"an encoded dot-dot segment is refused", "/%2e%2e/x", false},
		{"a fragment is refused", "/app#x", false},
		{"a space is refused", "/ /evil", false},
		{"raw non-ASCII is refused", "/caf\u00e9", false},
		{"a colon in the first segment is refused", "/evil.example:443/x", false},
		{"a malformed escape is refused", "/%zz", false},
		{"an overlong value is refused", "/" + strings.Repeat("a", 2000), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := oidc.ValidReturnTo(tc.in)
			if ok != tc.ok || (ok && got != tc.in) {
				t.Fatalf("ValidReturnTo(%q) = %q, %v; want ok=%v", tc.in, got, ok, tc.ok)
			}
		})
	}
}

// FuzzReturnTo checks that whatever ValidReturnTo accepts stays on our
// origin however a browser or a later component treats it: resolved
// against our URL, after browsers strip tabs and newlines and turn
// backslashes into slashes, and after any number of percent-decodings.
func FuzzReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/app/me?x=1", "//evil", "/\\evil", "/%2F%2Fevil", "/%2e%2e//x", "https://e.example"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://rp.example/base/page")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := oidc.ValidReturnTo(s)
		if !ok {
			if got != "" {
				t.Fatalf("refused %q but returned %q", s, got)
			}
			return
		}
		if got != s {
			t.Fatalf("accepted %q but returned %q", s, got)
		}
		cur := s
		for range 6 {
			browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(cur)
			if !strings.HasPrefix(browser, "/") || strings.HasPrefix(browser, "//") {
				t.Fatalf("%q decodes to %q, which leaves the origin", s, cur)
			}
			if u, err := url.Parse(browser); err == nil {
				if r := base.ResolveReference(u); r.Host != "rp.example" || r.Scheme != "https" {
					t.Fatalf("%q resolves to %s", s, r)
				}
			}
			next, err := url.PathUnescape(cur)
			if err != nil || next == cur {
				break
			}
			cur = next
		}
	})
}
