package oidc

import (
	"net/url"
	"strings"
)

// maxReturnTo bounds return_to; the value travels in the login-state
// cookie, which must stay well under the browser's 4 KiB.
const maxReturnTo = 1024

// ValidReturnTo reports whether s is safe to redirect to after login or
// logout: a same-origin relative path. It returns s unchanged when it is.
//
// Accepted: a path starting with exactly one "/", with an optional query
// ("/reports?year=2026"), in printable ASCII (percent-encode the rest).
// Refused, because a browser or a later component may resolve them to
// another origin: protocol-relative URLs ("//evil.example"), a backslash
// anywhere ("/\evil.example": browsers treat "\" as "/"), absolute URLs
// and every other scheme ("https://…", "javascript:…"), fragments, spaces
// and control characters (browsers strip tabs and newlines, so "/\t/evil"
// becomes "//evil"), "." and ".." path segments, and any of these hidden
// behind percent-encoding ("/%2F%2Fevil.example", "/%5Cevil.example",
// "/%2e%2e//evil"), decoded repeatedly so double encoding does not help.
func ValidReturnTo(s string) (string, bool) {
	if len(s) == 0 || len(s) > maxReturnTo {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '#' {
			return "", false
		}
	}
	// Check the raw form and every decoding of it, so that a component
	// that decodes once (or twice) more than we expect still sees a local
	// path.
	cur := s
	for range 4 {
		if !localPath(cur) {
			return "", false
		}
		next, err := url.PathUnescape(cur)
		if err != nil {
			return "", false
		}
		if next == cur {
			break
		}
		cur = next
	}
	if cur != s && !localPath(cur) {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return "", false
	}
	return s, true
}

// localPath is the structural check applied to s and to each decoding of
// it: one leading slash, and a path part (up to the first "?") free of
// backslashes, control characters and dot segments. The query part of a
// decoding may hold anything; it cannot change the origin.
func localPath(s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	path, _, _ := strings.Cut(s, "?")
	for i := 0; i < len(path); i++ {
		if c := path[i]; c < ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	// Dot segments: "/x/..//evil" resolves to the path "//evil", which a
	// later redirect by another component could turn into a
	// protocol-relative URL. Legitimate return paths never need them.
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	// A scheme can only precede the first "/", and s starts with one;
	// refuse ":" in the first segment anyway, in case a consumer strips
	// the leading slash.
	first, _, _ := strings.Cut(path[1:], "/")
	return !strings.Contains(first, ":")
}

// returnTo picks the validated return_to of a request, or the default.
func (rp *RP) returnTo(raw string) string {
	if v, ok := ValidReturnTo(raw); ok {
		return v
	}
	return rp.cfg.DefaultReturnTo
}
