package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/sessionfence/sessionfence/examples/devidp/devidp"
)

func TestRunRefusesANonLoopbackAddress(t *testing.T) {
	err := run([]string{"-addr", "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("err = %v", err)
	}
}

func TestRunRefusesABadClientList(t *testing.T) {
	t.Setenv("DEVIDP_CLIENTS", "demo:secret:/relative")
	if err := run([]string{"-addr", "127.0.0.1:0"}); !errors.Is(err, devidp.ErrInvalidConfig) {
		t.Errorf("err = %v", err)
	}
}
