package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// The admin page ships inside the library: it must stay standard library
// only, like the core it sits next to, and import nothing else of ours.
func TestAdminUIUsesOnlyTheStandardLibrary(t *testing.T) {
	pkg := module + "/middleware/adminui"
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", pkg, err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != pkg {
			t.Errorf("middleware/adminui depends on %s; it must use the standard library only", dep)
		}
	}
}
