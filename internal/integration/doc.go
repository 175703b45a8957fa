// Package integration holds end-to-end tests that run several application
// instances against one real Valkey/Redis server: a revocation made
// through the admin API of one instance must be enforced by the others
// within the propagation bound. It has no non-test code.
package integration
