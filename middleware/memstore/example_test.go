package memstore_test

import (
	"context"
	"fmt"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/memstore"
)

// One process: the store lives in memory, the guard reads it with no I/O,
// and fence changes go through the guard's writer.
func ExampleNew() {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	guard, err := middleware.New(middleware.Config{Store: store, Keys: [][]byte{middleware.GenerateKey()}})
	if err != nil {
		panic(err)
	}
	_, cookie, err := guard.Issue(ctx, middleware.Claims{Issuer: "https://idp.example", Subject: "alice", Tenant: "acme"})
	if err != nil {
		panic(err)
	}
	fmt.Println(guard.Check(ctx, cookie.Value).Kind)

	w, err := guard.Writer().Write(ctx, middleware.Change{
		Scope: middleware.TenantScope("acme"), Kind: middleware.BumpRevoke, Actor: "ops", Reason: "incident",
	})
	if err != nil {
		panic(err)
	}
	d := guard.Check(ctx, cookie.Value)
	fmt.Println(d.Kind, d.Scope, w.Entry.Action)
	// Output:
	// allowed
	// revoked tenant:acme terminate_tenant
}
