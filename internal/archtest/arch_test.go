// Package archtest checks that imports follow the architecture: the core
// uses only the standard library, and each third-party dependency enters
// through exactly one package.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sessionfence/sessionfence"

// allowed maps a package (relative to the module) to the third-party module
// prefixes it may depend on, directly or not. Packages not listed (examples,
// commands, tests) may use whatever the module requires.
var allowed = map[string][]string{
	"middleware":             nil,
	"middleware/admin":       nil,
	"middleware/admin/ui":    nil,
	"middleware/fencetext":   nil,
	"middleware/memstore":    nil,
	"middleware/storetest":   nil,
	"middleware/valkeystore": {"github.com/valkey-io/valkey-go", "golang.org/x/sys"}, // valkey-go needs x/sys
	"adapters/nethttp":       nil,
	"adapters/gin":           {"github.com/gin-gonic/gin", "github.com/", "golang.org/x/", "google.golang.org/", "go.mongodb.org/"},
	"oidc":                   {"github.com/coreos/go-oidc", "golang.org/x/oauth2", "github.com/go-jose/go-jose"},
	"backchannel":            {"github.com/coreos/go-oidc", "golang.org/x/oauth2", "github.com/go-jose/go-jose"},
	"internal/fakeidp":       {"github.com/go-jose/go-jose"},
	"internal/sealer":        nil,
}

func TestImportsFollowTheArchitecture(t *testing.T) {
	for pkg, prefixes := range allowed {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+"/"+pkg).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "no required module provides") || strings.Contains(string(out), "cannot find package") || strings.Contains(string(out), "is not in std") {
				continue // package not written yet
			}
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, module) {
				continue
			}
			ok := false
			for _, p := range prefixes {
				if strings.HasPrefix(dep, p) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s depends on %s, which the architecture does not allow", pkg, dep)
			}
		}
	}
}

// Only these packages may import the named third-party modules directly,
// so that e.g. gin never leaks into the core or the Valkey store.
func TestEachDependencyEntersThroughItsPackage(t *testing.T) {
	owners := map[string][]string{
		"github.com/gin-gonic/gin":       {"adapters/gin", "examples/"},
		"github.com/valkey-io/valkey-go": {"middleware/valkeystore", "examples/", "cmd/", "bench/"},
		"github.com/prometheus/":         {"metrics/", "examples/"},
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module+"/")
		for _, imp := range fields[1:] {
			for dep, who := range owners {
				if !strings.HasPrefix(imp, dep) {
					continue
				}
				ok := false
				for _, w := range who {
					if pkg == w || strings.HasPrefix(pkg, w) {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s; only %v may", pkg, imp, who)
				}
			}
		}
	}
}
