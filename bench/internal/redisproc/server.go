// Package redisproc starts throwaway redis-server (or valkey-server)
// processes on free loopback ports, each in its own temporary directory,
// for benchmarks and fault tests that must stop, restart, wipe or cluster
// a server. It never touches a server it did not start.
package redisproc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoBinary reports that neither valkey-server nor redis-server is on
// PATH.
var ErrNoBinary = errors.New("redisproc: neither valkey-server nor redis-server is on PATH")

// Binary returns the server binary to run: $SESSIONFENCE_SERVER_BIN if
// set, else valkey-server, else redis-server.
func Binary() (string, error) {
	if b := os.Getenv("SESSIONFENCE_SERVER_BIN"); b != "" {
		return exec.LookPath(b)
	}
	for _, name := range []string{"valkey-server", "redis-server"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBinary
}

// Options configure [Start].
type Options struct {
	// Args are extra server arguments ("--appendonly", "yes", ...). The
	// defaults are no persistence, no protected mode, loopback only.
	Args []string
	// Port to listen on; 0 picks a free one (and, for Cluster, one whose
	// bus port, +10000, is free too).
	Port int
	// Cluster reserves the bus port as well.
	Cluster bool
}

// Server is one server process. Its methods are safe for concurrent use.
type Server struct {
	Addr string
	Port int
	Dir  string // its working directory, removed by Close

	bin  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *logBuffer
}

// Start starts a server and waits (at most 10 s) until it answers PING.
func Start(o Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	port := o.Port
	if port == 0 {
		if port, err = FreePort(o.Cluster); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "sessionfence-redis-")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir, bin: bin}
	s.args = append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--daemonize", "no", "--logfile", "",
	}, o.Args...)
	if err := s.Restart(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Restart starts the process again (same port, directory and arguments)
// after Stop or Kill, and waits until it answers PING. Whatever the
// directory holds (an AOF, an RDB) is loaded; call Wipe first for an
// empty server.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		select {
		case <-s.done:
		default:
			return errors.New("redisproc: server still running")
		}
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.Dir
	s.log = new(logBuffer)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = SysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := Ping(s.Addr, 200*time.Millisecond); err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redisproc: server on %s exited during start: %s", s.Addr, s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redisproc: server on %s did not answer within 10s: %s", s.Addr, s.log.String())
		}
		t := time.NewTimer(10 * time.Millisecond)
		<-t.C
	}
}

// Pid returns the running process id, or 0.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop shuts the server down gracefully (SIGTERM: it writes its RDB if
// save points are configured and flushes its AOF) and waits for it, at
// most 10 s before killing it.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM, 10*time.Second) }

// Kill crashes the server (SIGKILL) and waits for it.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL, 10*time.Second) }

// Pause freezes the process (SIGSTOP): connections stay open, nothing is
// answered. Resume undoes it.
func (s *Server) Pause() error { return s.send(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() error { return s.send(syscall.SIGCONT) }

func (s *Server) send(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("redisproc: not started")
	}
	return s.cmd.Process.Signal(sig)
}

func (s *Server) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot act on SIGTERM
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("redisproc: server on %s ignored %v for %v; killed", s.Addr, sig, wait)
	}
}

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Wipe removes the data files in the server's directory (the server must
// be stopped), so the next Restart comes back empty, as after a crash of
// a server without persistence or a failover to an empty replica.
func (s *Server) Wipe() error {
	if s.Running() {
		return errors.New("redisproc: stop the server before wiping it")
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "nodes.conf" {
			continue // cluster identity, not data
		}
		if err := os.RemoveAll(filepath.Join(s.Dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Log returns what the server printed since its last start.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

// Info returns the fields of the server's INFO section over a connection
// of its own (see [Conn.Info]).
func (s *Server) Info(section string) (map[string]string, error) {
	c, err := Dial(s.Addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Info(section)
}

// Close kills the server if it runs and removes its directory.
func (s *Server) Close() {
	_ = s.Kill()
	_ = os.RemoveAll(s.Dir)
}

// Ping reports whether a RESP server at addr answers PING within timeout.
func Ping(addr string, timeout time.Duration) error {
	c, err := Dial(addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := c.String("PING")
	if err != nil {
		return err
	}
	if v != "PONG" {
		return fmt.Errorf("PING answered %q", v)
	}
	return nil
}

// FreePort returns a loopback port nobody listens on; with bus set, port
// +10000 is free too (the cluster bus).
func FreePort(bus bool) (int, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !bus {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		ln2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		ln2.Close()
		return port, nil
	}
	return 0, errors.New("redisproc: no free port found")
}

// logBuffer keeps the last 64 KiB a server printed; the process writes it
// from exec's copying goroutine while tests may read it.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const maxLog = 64 << 10

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > maxLog {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-maxLog:]...)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// CPUTime returns the user+system CPU time process pid has used so far,
// read from /proc (zero where /proc is missing or pid is gone).
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name (in parentheses, which may hold
	// spaces) start with the state; utime and stime are the 12th and 13th
	// of them, in clock ticks.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(u+st) * time.Second / ticks
}
