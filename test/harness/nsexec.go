package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// InNetns runs fn on an OS thread that has entered the named network
// namespace (under /run/netns), then returns the thread to the original
// namespace. Sockets fn creates stay in the namespace after it returns. If the
// thread cannot return, it stays locked and the Go runtime destroys it rather
// than reuse it in the wrong namespace.
func InNetns(name string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("open netns %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			ch <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", name, err)) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		ch <- ferr
	}()
	return <-ch
}

// ListenInNetns opens a TCP listener on addr inside the named namespace; it is
// served from this process like any other listener.
func ListenInNetns(name, addr string) (net.Listener, error) {
	var l net.Listener
	err := InNetns(name, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s in netns %s: %w", addr, name, err)
		}
		return nil
	})
	return l, err
}

// DialInNetns opens a TCP connection to addr from inside the named namespace
// (the socket is created there; the connection is used from this process).
func DialInNetns(ctx context.Context, name, addr string) (net.Conn, error) {
	var c net.Conn
	err := InNetns(name, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// NetnsHTTPClient is an HTTP client whose connections are opened inside the
// named namespace, one connection per request (no keep-alive), each request
// bounded by timeout.
func NetnsHTTPClient(name string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return DialInNetns(ctx, name, addr)
			},
			DisableKeepAlives: true,
		},
	}
}

// StartBackendInNetns starts a Backend (see Backend) listening on addr inside
// the named namespace, which the caller created and owns; call Stop when done.
func StartBackendInNetns(name, backend string, addr netip.AddrPort) (*Backend, error) {
	return (&Netns{Name: name}).StartBackend(backend, addr)
}

// StartProcessInNetns is StartProcess with cmd run inside the named namespace
// (`ip netns exec` enters it and execs cmd in place, so the Process's pid is
// cmd's own). When util-linux's setpriv is there, the process is also killed
// if the test process dies without its cleanups (a parent-death signal kept
// across the execs), so no daemon outlives a killed test binary.
func StartProcessInNetns(ns, name, logPath string, cmd *exec.Cmd) (*Process, error) {
	args := append([]string{"netns", "exec", ns, cmd.Path}, cmd.Args[1:]...)
	wrapped := exec.Command("ip", args...)
	if setpriv, err := exec.LookPath("setpriv"); err == nil {
		wrapped = exec.Command(setpriv, append([]string{"--pdeathsig", "KILL", "ip"}, args...)...)
	}
	wrapped.Env, wrapped.Dir = cmd.Env, cmd.Dir
	return StartProcess(name, logPath, wrapped)
}

// Forwarder accepts TCP connections on a listener inside a network namespace
// and connects each to a target address in this process's namespace: a
// process in the namespace reaches, say, the apiserver on the host's
// 127.0.0.1 at the same address, so its kubeconfig and certificates stay
// valid. Close ends the listener and every forwarded connection.
type Forwarder struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// ForwardIntoNetns listens on listenAddr inside the named namespace and
// forwards every connection to target (dialled from this process).
func ForwardIntoNetns(ns, listenAddr, target string) (*Forwarder, error) {
	l, err := ListenInNetns(ns, listenAddr)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{l: l, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// forwardDialTimeout bounds the connection to the target (on this host).
const forwardDialTimeout = 5 * time.Second

func (f *Forwarder) accept() {
	defer f.wg.Done()
	for {
		in, err := f.l.Accept()
		if err != nil {
			return // closed
		}
		out, err := net.DialTimeout("tcp", f.target, forwardDialTimeout)
		if err != nil {
			in.Close()
			continue
		}
		if !f.track(in, out) {
			return
		}
		f.wg.Add(2)
		go f.pipe(in, out)
		go f.pipe(out, in)
	}
}

func (f *Forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

// pipe copies one direction; when it ends, both connections are closed (the
// apiserver's watches are long-lived, and a half-open forward helps no one).
func (f *Forwarder) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	f.mu.Lock()
	delete(f.conns, dst)
	delete(f.conns, src)
	f.mu.Unlock()
}

// Close stops accepting, closes every forwarded connection and waits for the
// copy goroutines.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	err := f.l.Close()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return err
}
