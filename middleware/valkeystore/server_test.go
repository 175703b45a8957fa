package valkeystore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/sessionfence/sessionfence/internal/valkeytest"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/sessionfence/sessionfence/middleware/valkeystore"
)

// The tests run against a real server named by SESSIONFENCE_VALKEY_ADDR
// (see internal/valkeytest): outside CI they skip when nothing answers; in
// CI (CI=true, or SESSIONFENCE_REQUIRE_STORE=1 as scripts/test sets) a
// missing server is a failure, never a skip.

// serverAddr returns the address of a live server or ends the test.
func serverAddr(tb testing.TB) string { return valkeytest.Addr(tb) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testPrefix returns a prefix no other test uses, with the required hash
// tag.
func testPrefix() string { return valkeytest.Prefix() }

func newClient(tb testing.TB, addr string, opt ...func(*valkey.ClientOption)) valkey.Client {
	tb.Helper()
	o := valkey.ClientOption{InitAddress: []string{addr}}
	for _, f := range opt {
		f(&o)
	}
	c, err := valkey.NewClient(o)
	if err != nil {
		tb.Fatalf("valkey.NewClient(%s): %v", addr, err)
	}
	tb.Cleanup(c.Close)
	return c
}

func newStore(tb testing.TB, c valkey.Client, prefix string) *valkeystore.Store {
	tb.Helper()
	return newStoreConfig(tb, c, valkeystore.Config{Prefix: prefix})
}

func newStoreConfig(tb testing.TB, c valkey.Client, cfg valkeystore.Config) *valkeystore.Store {
	tb.Helper()
	s, err := valkeystore.New(c, cfg)
	if err != nil {
		tb.Fatalf("valkeystore.New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// deleteKeys removes every key under prefix: from the store's point of
// view the same as FLUSHALL, without touching anybody else's data on a
// shared server.
func deleteKeys(tb testing.TB, c valkey.Client, prefix string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pattern := globEscape(prefix) + "*"
	var cursor uint64
	var keys []string
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
		if err != nil {
			tb.Fatalf("SCAN %s: %v", pattern, err)
		}
		keys = append(keys, e.Elements...)
		cursor = e.Cursor
		if cursor == 0 {
			break
		}
	}
	if len(keys) == 0 {
		return
	}
	// One DEL, atomic like FLUSHALL: the keys share one hash slot.
	if err := c.Do(ctx, c.B().Del().Key(keys...).Build()).Error(); err != nil {
		tb.Fatalf("DEL %v: %v", keys, err)
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// proxy is a TCP relay between a client and the server that a test can cut
// (close every connection, like a crashed server) or black-hole (keep the
// connections open and drop every byte, like a silent partition).
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  []net.Conn
	closed bool
	holed  bool
	wg     sync.WaitGroup
}

func startProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

// pipe copies src to dst until either side fails, dropping the bytes while
// the proxy is black-holed.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			holed := p.holed
			p.mu.Unlock()
			if !holed {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// BlackHole keeps every connection open and silently drops all traffic.
func (p *proxy) BlackHole() {
	p.mu.Lock()
	p.holed = true
	p.mu.Unlock()
}

// Close stops listening and closes every relayed connection.
func (p *proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.conns
	p.mu.Unlock()
	p.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
