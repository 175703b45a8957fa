package storetest_test

import (
	"testing"

	"github.com/sessionfence/sessionfence/middleware/memstore"
	"github.com/sessionfence/sessionfence/middleware/storetest"
)

// A store implementation proves its contract with the conformance suite
// and the model-based test of the fence algebra, from its own tests. This
// example shows the wiring; it runs inside a Test function, not alone.
func Example() {
	testStore := func(t *testing.T) {
		newHarness := func(t *testing.T) storetest.Harness {
			s := memstore.New(memstore.Config{})
			return storetest.Harness{Store: s, Wipe: s.Wipe}
		}
		storetest.Run(t, newHarness)
		storetest.RunModel(t, newHarness, storetest.ModelOptions{})
	}
	_ = testStore
}
