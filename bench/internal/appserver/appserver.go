// Package appserver builds and runs cmd/app, the benchmark application,
// as separate processes, and talks to them.
package appserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"time"

	"github.com/sessionfence/sessionfence/bench/internal/redisproc"
)

// Build compiles cmd/app into dir and returns the binary's path. It runs
// the go command from the current directory, which must be inside the
// bench module (go run ./cmd/... from bench/ is).
func Build(dir string) (string, error) {
	out := filepath.Join(dir, "sessionfence-bench-app")
	cmd := exec.Command("go", "build", "-o", out, "github.com/sessionfence/sessionfence/bench/cmd/app")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("appserver: go build cmd/app (run from the bench module, or pass -app): %w", err)
	}
	return out, nil
}

// Binary returns prebuilt when it is set, else builds cmd/app into a
// temporary directory; cleanup removes what was built.
func Binary(prebuilt string) (bin string, cleanup func(), err error) {
	if prebuilt != "" {
		return prebuilt, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "sessionfence-bench-")
	if err != nil {
		return "", nil, err
	}
	if bin, err = Build(dir); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// Proc is one running app.
type Proc struct {
	URL  string // http://127.0.0.1:port
	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{}
}

// Start runs bin with args and waits (at most 30 s) for the line
// "listening <url>" on its standard output. The app exits when its
// standard input closes, so it cannot outlive this process.
func Start(bin string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = redisproc.SysProcAttr()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, in: in, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			if first {
				lines <- sc.Text()
				first = false
			}
		}
		close(lines)
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case l, ok := <-lines:
		u, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			p.Close()
			return nil, fmt.Errorf("appserver: %s did not report its address (got %q)", bin, l)
		}
		p.URL = u
		return p, nil
	case <-t.C:
		p.Close()
		return nil, errors.New("appserver: app did not start within 30s")
	}
}

// Close stops the app (closing its standard input, then SIGKILL after 5 s).
func (p *Proc) Close() {
	_ = p.in.Close()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Login asks the app's /login endpoint for a session for subject and
// returns the Cookie header value ("name=value").
func Login(ctx context.Context, client *http.Client, base, subject string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/login?sub="+url.QueryEscape(subject), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusNoContent || len(cs) == 0 {
		return "", fmt.Errorf("appserver: login: status %d", resp.StatusCode)
	}
	return cs[0].Name + "=" + cs[0].Value, nil
}

// CPUTime returns the user+system CPU time the app has used so far.
func (p *Proc) CPUTime() time.Duration { return redisproc.CPUTime(p.cmd.Process.Pid) }
