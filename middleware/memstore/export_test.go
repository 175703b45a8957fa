package memstore

// Snapshot exposes the store's snapshot hook to this package's external
// tests: it returns a function that restores the fences and the version as
// they are now, keeping the epoch, like a restart from an older snapshot.
func Snapshot(s *Store) (restore func()) { return s.snapshot() }
