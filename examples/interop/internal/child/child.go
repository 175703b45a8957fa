// Package child runs an OpenID Provider under test as a child process in
// its own process group, keeps what it prints, and stops the whole group
// (the process and anything it started) when asked. The provider
// packages (hydra, oidcprovider) share it.
package child

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopGrace is how long a process may take to exit after SIGTERM before
// its process group is killed.
const StopGrace = 10 * time.Second

// Process is a started child process.
type Process struct {
	cmd  *exec.Cmd
	logs *SyncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// Start starts cmd in a new process group, with stdout and stderr going
// to the returned Process's log unless cmd already sets them.
func Start(cmd *exec.Cmd) (*Process, error) {
	p := &Process{cmd: cmd, logs: &SyncBuffer{}, done: make(chan struct{})}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if cmd.Stdout == nil {
		cmd.Stdout = p.logs
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.logs
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited; Err then says how.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is Wait's result once Done is closed, nil before.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after StopGrace.
// Safe to call twice, and after the process exited by itself.
func (p *Process) Stop() error {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done:
		// The leader is gone; kill what it may have left in its group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return nil
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(StopGrace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("%s ignored SIGTERM for %s and was killed", filepath.Base(p.cmd.Path), StopGrace)
	case <-time.After(StopGrace):
		return fmt.Errorf("%s (pid %d) survived SIGKILL", filepath.Base(p.cmd.Path), pgid)
	}
}

// WaitReady calls ready every interval until it reports true (nil), it
// fails, the process exits, or timeout passes. name labels the errors.
func (p *Process) WaitReady(name string, timeout, interval time.Duration, ready func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		switch ok, err := ready(); {
		case err != nil:
			return err
		case ok:
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v", name, p.err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s", name, timeout)
		}
	}
}

// GetOK reports whether GET u answers 200 within a second.
func GetOK(c *http.Client, u string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	res, err := c.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// Logs returns what the process printed so far (when Start captured it).
func (p *Process) Logs() string { return p.logs.String() }

// Tail returns the last n lines of the log.
func (p *Process) Tail(n int) string { return Tail(p.Logs(), n) }

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a process's
// stdout and stderr, a server's goroutines) and a reader.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FindUp returns the first rel found in the working directory or one of
// its parents.
func FindUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s in the working directory or its parents", rel)
		}
		dir = parent
	}
}
