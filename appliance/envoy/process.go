package envoy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Admin talks to Envoy's admin interface (loopback TCP or unix socket).
type Admin struct {
	base   string
	client *http.Client
}

// NewAdmin returns a client for the admin interface at addr (host:port or unix:///path).
func NewAdmin(addr string) *Admin {
	tr := &http.Transport{DisableKeepAlives: true}
	base := "http://" + addr
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		base = "http://envoy-admin"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	return &Admin{base: base, client: &http.Client{Transport: tr, Timeout: 2 * time.Second}}
}

// Ready reports whether Envoy's /ready answers 200 (server state LIVE: initial xDS applied).
func (a *Admin) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/ready", nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("envoy admin: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("envoy not ready: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// DrainListeners asks Envoy to stop accepting new connections gracefully and let existing ones
// finish (POST /drain_listeners?graceful).
func (a *Admin) DrainListeners(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/drain_listeners?graceful", nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("drain listeners: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("drain listeners: status %d", resp.StatusCode)
	}
	return nil
}

// Process runs Envoy as a child process (supervise mode) and restarts it if it dies.
type Process struct {
	Binary    string
	Bootstrap string
	Admin     *Admin
	// Concurrency 0 lets Envoy use one worker per core.
	Concurrency int
	DrainTime   time.Duration
	ExtraArgs   []string
	Log         *slog.Logger
	// Output receives Envoy's stdout and stderr (os.Stderr when nil).
	Output io.Writer

	mu  sync.Mutex
	cmd *exec.Cmd
}

// restartDelay: pause before restarting a crashed Envoy, so a crash loop does not spin the CPU.
const restartDelay = time.Second

// Run starts Envoy and keeps it running until ctx is done; then it drains Envoy's listeners for
// DrainTime and stops it.
func (p *Process) Run(ctx context.Context) error {
	for {
		exited, err := p.start()
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			p.stop(exited)
			return nil
		case err := <-exited:
			p.Log.Error("envoy exited; restarting", "error", err, "delay", restartDelay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(restartDelay):
			}
		}
	}
}

func (p *Process) start() (<-chan error, error) {
	args := []string{"-c", p.Bootstrap,
		// No hot restart: edgegate never restarts Envoy to change configuration (xDS does that),
		// and hot restart's shared memory would clash between several Envoys on one host.
		"--disable-hot-restart",
		"--drain-time-s", strconv.Itoa(int(p.DrainTime.Seconds())),
		"--drain-strategy", "immediate",
	}
	if p.Concurrency > 0 {
		args = append(args, "--concurrency", strconv.Itoa(p.Concurrency))
	}
	args = append(args, p.ExtraArgs...)
	raiseFileLimit()
	cmd := exec.Command(p.Binary, args...)
	out := p.Output
	if out == nil {
		out = os.Stderr
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, and die with edgegate if edgegate is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start envoy: %w", err)
	}
	p.Log.Info("envoy started", "pid", cmd.Process.Pid, "binary", p.Binary)
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return exited, nil
}

func (p *Process) stop(exited <-chan error) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if p.DrainTime > 0 {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := p.Admin.DrainListeners(dctx); err != nil {
			p.Log.Warn("drain envoy listeners", "error", err)
		}
		cancel()
		select {
		case <-exited:
			return
		case <-time.After(p.DrainTime):
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	p.Log.Info("envoy stopped")
}

// raiseFileLimit sets this process's open-file soft limit to its hard limit before Envoy starts, so
// Envoy inherits it. Envoy holds a socket per downstream connection and per pooled upstream
// connection (one pool per backend in use). Go raises its own soft limit at start but hands child
// processes the original one (often 1024) unless the program sets the limit itself, as here. In
// production Envoy runs in its own unit with LimitNOFILE=; this is for supervise mode.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur >= l.Max {
		return
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l) // refused under a seccomp filter: keep the old
}
