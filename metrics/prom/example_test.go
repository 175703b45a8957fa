package prom_test

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessionfence/sessionfence/metrics/prom"
	"github.com/sessionfence/sessionfence/middleware"
)

// New registers the collectors; the guard (through its Observer) then
// reports every decision.
func ExampleNew() {
	reg := prometheus.NewRegistry()
	obs, err := prom.New(reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	var o middleware.Observer = obs // what the guard calls
	o.Decision(middleware.DecisionRevoked, middleware.ScopeTenant, false)
	o.Bump("revoke", middleware.ScopeTenant)
	fmt.Println(testutil.CollectAndCount(reg, "sessionfence_bumps_total"))
	// Output: 20
}
