// Package cluster runs sessionfence's Valkey store against a Valkey/Redis
// Cluster the tests build themselves on loopback (three masters, one
// replica each): the store conformance suite, propagation across
// instances, and a master failover under load. Run with
//
//	cd bench && go test -race ./cluster
package cluster
