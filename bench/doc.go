// Package bench holds sessionfence's performance and reliability evidence,
// as its own module so that the comparison dependencies (scs, redigo) stay
// out of the library's go.mod. See BENCHMARKS.md at the repository root for
// the figures and the commands that reproduce them.
//
//	go test -run '^$' -bench . -benchmem .   in-process: (a)..(e) side by side
//	go run ./cmd/compare                      the same, printed with ratios
//	go run ./cmd/load                         the same variants over loopback HTTP
//	go run ./cmd/propagation                  terminate-all across 4 app processes
//	go run ./cmd/scale [-big]                 admin actions at 10k..1M sessions
//	go test -race ./...                       fault and cluster tests (CI)
//
// Every command and test starts its own redis-server processes on free
// loopback ports in temporary directories, unless told to use an existing
// server (-valkey host:port), and never touches data it did not write.
package bench
