package valkeystore_test

import (
	"log"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware"
	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// Many instances share one Valkey (or Redis 7) server. The client must
// keep server-assisted client-side caching on (valkey-go's default); New
// checks that, and the server's eviction policy, before it returns. This
// example needs a server, so it is compiled but not run by go test.
func ExampleNew() {
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{"127.0.0.1:6379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close() // the store never closes what it did not open
	store, err := valkeystore.New(client, valkeystore.Config{
		// Wait for one replica to acknowledge every fence change, so a
		// failover cannot lose an acknowledged revocation.
		WaitReplicas: 1,
	})
	if err != nil {
		log.Fatal(err)
	}
	guard, err := middleware.New(middleware.Config{Store: store, Keys: [][]byte{middleware.GenerateKey()}})
	if err != nil {
		log.Fatal(err)
	}
	_ = guard
}
