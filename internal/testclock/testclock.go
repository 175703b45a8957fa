// Package testclock is the fake clock tests share: a goroutine-safe time
// that moves only when told, to inject as a store's and a guard's Now.
package testclock

import (
	"sync"
	"time"
)

// Clock is a fake clock. The zero value reads the zero time; use [New].
// It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock at 2026-11-23 10:00 UTC.
func New() *Clock { return &Clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
