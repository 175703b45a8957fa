// Package faults holds the reliability tests of sessionfence over Valkey:
// the server stopped, restarted empty or with persistence, slowed down,
// and bounded staleness, each against a redis-server the test starts and
// kills itself. The tests are in faults_test.go; run them with
//
//	cd bench && go test -race ./faults
package faults
