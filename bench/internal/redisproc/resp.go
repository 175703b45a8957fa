package redisproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Conn is a minimal RESP2 connection for administering test servers
// (readiness, CLUSTER, CONFIG, INFO). It is deliberately independent of
// valkey-go, whose behaviour the benchmarks and fault tests measure: the
// harness must keep working when the client under test is confused.
// It is not safe for concurrent use.
type Conn struct {
	c  net.Conn
	r  *bufio.Reader
	to time.Duration
}

// Dial connects to addr with timeout bounding the dial and every later
// command.
func Dial(addr string, timeout time.Duration) (*Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, r: bufio.NewReader(c), to: timeout}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// ServerError is an error reply (-ERR ..., -MOVED ...).
type ServerError string

func (e ServerError) Error() string { return string(e) }

// Do sends one command and returns its reply: string for simple and bulk
// strings, int64 for integers, nil for a null, []any for arrays, and a
// ServerError for an error reply.
func (c *Conn) Do(args ...string) (any, error) {
	if err := c.c.SetDeadline(time.Now().Add(c.to)); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	v, err := c.read(0)
	if err != nil {
		return nil, err
	}
	if se, ok := v.(ServerError); ok {
		return nil, se
	}
	return v, nil
}

// String runs a command whose reply is a string.
func (c *Conn) String(args ...string) (string, error) {
	v, err := c.Do(args...)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: reply %T, want string", args[0], v)
	}
	return s, nil
}

const maxDepth = 8

func (c *Conn) read(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("resp: nesting too deep")
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("resp: empty line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return ServerError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		if n > 64<<20 {
			return nil, errors.New("resp: bulk string too large")
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, nil
		}
		if n > 1<<20 {
			return nil, errors.New("resp: array too large")
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = c.read(depth + 1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("resp: unexpected reply type %q", line[0])
}

// Info returns the fields of INFO section as a map.
func (c *Conn) Info(section string) (map[string]string, error) {
	s, err := c.String("INFO", section)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string)
	for _, l := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") {
			out[k] = v
		}
	}
	return out, nil
}
