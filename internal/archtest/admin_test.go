package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The core and the admin layer ship inside the library: each uses the
// standard library and only the packages of ours below it (internal/sealer
// is the cookie codec, internal/httpx a header helper), so the core never depends on administration and
// the page never reaches past the API it drives.
func TestTheAdminLayerSitsOnTheCore(t *testing.T) {
	layers := map[string][]string{
		"middleware":          {"internal/sealer"},
		"middleware/admin":    {"middleware", "internal/sealer", "internal/httpx"},
		"middleware/admin/ui": {"middleware", "middleware/admin", "internal/sealer", "internal/httpx"},
	}
	for pkg, below := range layers {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+"/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel := strings.TrimPrefix(dep, module+"/")
			if rel != pkg && !slices.Contains(below, rel) {
				t.Errorf("%s depends on %s; it may use only the standard library and %v", pkg, dep, below)
			}
		}
	}
}
