package valkeystore

import (
	"context"
	"sync"
	"time"
)

// lazyDeadline is a context bounded by a deadline whose timer is created
// only if somebody waits on it.
//
// Why: Fences is the hot path and answers from valkey-go's client-side
// cache without touching its context at all (see pipe.doCacheMGet: a full
// cache hit never calls Done, Err or Deadline). context.WithTimeout would
// still cost a context, a timer and two closures per call, three times
// what the rest of the read allocates. With lazyDeadline the warm path pays
// one small allocation, and a cache miss, which waits for the network
// anyway, gets a real context.WithDeadline on first use.
//
// Deadline reports the bound without starting anything, so code that only
// inspects the deadline (valkey-go's synchronous path) also stays cheap.
type lazyDeadline struct {
	parent   context.Context
	deadline time.Time

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

// released is what a lazyDeadline turns into once its operation is over
// without ever having been waited on: a cancelled context, so that any late
// use behaves like a finished call.
var released = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (c *lazyDeadline) start() {
	c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
}

func (c *lazyDeadline) inner() context.Context {
	c.once.Do(c.start)
	return c.ctx
}

// release ends the operation: it cancels the timer if one was started, or
// marks the context finished if none was.
func (c *lazyDeadline) release() {
	c.once.Do(func() { c.ctx = released })
	if c.cancel != nil {
		c.cancel()
	}
}

func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *lazyDeadline) Done() <-chan struct{}       { return c.inner().Done() }
func (c *lazyDeadline) Err() error                  { return c.inner().Err() }
func (c *lazyDeadline) Value(key any) any           { return c.parent.Value(key) }
