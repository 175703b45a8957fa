// Package valkeytest finds the Valkey/Redis server that tests run against
// and cleans up after them. It speaks the few RESP commands it needs over
// a plain connection, so it adds no dependency: only middleware/valkeystore
// (and commands, examples) import valkey-go.
//
// The server is named by SESSIONFENCE_VALKEY_ADDR (default 127.0.0.1:6379,
// except under CI=true, where the variable is required). When none answers,
// tests skip, unless CI=true or SESSIONFENCE_REQUIRE_STORE=1, where they
// fail: a missing store must never turn a CI run green.
package valkeytest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var probe struct {
	once sync.Once
	addr string
	err  string
}

// Required reports whether a missing server must fail the test.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SESSIONFENCE_REQUIRE_STORE") == "1"
}

// Addr returns the address of a live server, or skips (fails when
// [Required]) the test.
func Addr(tb testing.TB) string {
	tb.Helper()
	probe.once.Do(func() {
		addr := os.Getenv("SESSIONFENCE_VALKEY_ADDR")
		if addr == "" {
			if os.Getenv("CI") == "true" {
				probe.err = "CI=true but SESSIONFENCE_VALKEY_ADDR is not set"
				return
			}
			addr = "127.0.0.1:6379"
		}
		probe.addr = addr
		c, err := dial(addr)
		if err != nil {
			probe.err = "no Valkey/Redis server answers at " + addr + ": " + err.Error()
			return
		}
		defer c.close()
		if v, err := c.do("PING"); err != nil || v != "PONG" {
			probe.err = fmt.Sprintf("server at %s does not answer PING with PONG (%v, %v)", addr, v, err)
		}
	})
	if probe.err != "" {
		if Required() {
			tb.Fatal(probe.err)
		}
		tb.Skip(probe.err + " (set SESSIONFENCE_VALKEY_ADDR to run the Valkey tests)")
	}
	return probe.addr
}

// Prefix returns a key prefix no other test uses, with the hash tag the
// Valkey store requires: "{sftest-<16 hex>}:".
func Prefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "{sftest-" + hex.EncodeToString(b[:]) + "}:"
}

// Cleanup registers the deletion of every key under prefix at the end of
// tb. Register it before anything that uses the keys, so it runs last.
func Cleanup(tb testing.TB, addr, prefix string) {
	tb.Helper()
	tb.Cleanup(func() {
		if err := DeleteKeys(addr, prefix); err != nil {
			tb.Errorf("deleting test keys under %s: %v", prefix, err)
		}
	})
}

// DeleteKeys removes every key under prefix (SCAN MATCH, then DEL).
func DeleteKeys(addr, prefix string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.close()
	pattern := globEscape(prefix) + "*"
	cursor := "0"
	var keys []string
	for {
		v, err := c.do("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
		if err != nil {
			return err
		}
		arr, ok := v.([]any)
		if !ok || len(arr) != 2 {
			return fmt.Errorf("unexpected SCAN reply %v", v)
		}
		cursor, _ = arr[0].(string)
		list, _ := arr[1].([]any)
		for _, k := range list {
			if s, ok := k.(string); ok {
				keys = append(keys, s)
			}
		}
		if cursor == "0" || cursor == "" {
			break
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if _, err := c.do(append([]string{"DEL"}, keys[:n]...)...); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
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

// conn is a minimal RESP2 client: enough for PING, SCAN and DEL.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &conn{c: c, r: bufio.NewReader(c)}, nil
}

func (c *conn) close() { _ = c.c.Close() }

func (c *conn) do(args ...string) (any, error) {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	if _, err := io.WriteString(c.c, b.String()); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *conn) read() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errors.New(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = c.read(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected RESP reply %q", line)
}
