package nethttpapp_test

import (
	"testing"

	"github.com/sessionfence/sessionfence/examples/internal/apptest"
	"github.com/sessionfence/sessionfence/examples/nethttp/nethttpapp"
)

func TestEndToEnd(t *testing.T) {
	apptest.Run(t, "nethttp", nethttpapp.Handler)
}
