package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Echo is what every backend answers: which backend it is, and the Host and
// path it was asked for.
type Echo struct {
	Backend string `json:"backend"`
	Host    string `json:"host"`
	Path    string `json:"path"`
}

// Backend is a small HTTP server whose listening socket lives in a test
// network namespace (so its address can be published in an EndpointSlice)
// while it is served from this process.
type Backend struct {
	Name string
	Addr netip.AddrPort

	srv      *http.Server
	requests atomic.Int64
	stopOnce sync.Once
	served   chan error
}

// DefaultBackendPort is the port backends listen on unless told otherwise;
// Services in the tests map their port 80 to it.
const DefaultBackendPort = 8080

// Backend starts a backend on a new address of the namespace, port
// DefaultBackendPort, and stops it when the test ends.
func (n *Netns) Backend(t testing.TB, name string) *Backend {
	t.Helper()
	a, err := n.NewAddr()
	if err != nil {
		t.Fatal(err)
	}
	return n.BackendAt(t, name, netip.AddrPortFrom(a, DefaultBackendPort))
}

// BackendAt starts a backend on addr (an address of this namespace, see
// NewAddr) and stops it when the test ends.
func (n *Netns) BackendAt(t testing.TB, name string, addr netip.AddrPort) *Backend {
	t.Helper()
	b, err := n.StartBackend(name, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

// StartBackend is BackendAt without a test; call Stop when done.
func (n *Netns) StartBackend(name string, addr netip.AddrPort) (*Backend, error) {
	l, err := n.Listen(addr.String())
	if err != nil {
		return nil, err
	}
	b := &Backend{Name: name, Addr: addr, served: make(chan error, 1)}
	b.srv = &http.Server{
		Handler:           http.HandlerFunc(b.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second, // never reached by a test; bounds a stuck client
	}
	go func() { b.served <- b.srv.Serve(l) }()
	return b, nil
}

func (b *Backend) serveHTTP(w http.ResponseWriter, r *http.Request) {
	b.requests.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(Echo{Backend: b.Name, Host: r.Host, Path: r.URL.Path})
}

// Requests is how many requests the backend has served.
func (b *Backend) Requests() int64 { return b.requests.Load() }

// IP is the backend's address without the port.
func (b *Backend) IP() string { return b.Addr.Addr().String() }

// Port is the backend's port.
func (b *Backend) Port() int32 { return int32(b.Addr.Port()) }

// Stop closes the listener and open connections; connecting afterwards is
// refused. Stop is idempotent.
func (b *Backend) Stop() {
	b.stopOnce.Do(func() {
		_ = b.srv.Close()
		<-b.served
	})
}

// Listen opens a TCP listener inside the namespace. The calling goroutine's
// OS thread enters the namespace only for the socket call and returns to the
// original namespace; if returning fails the thread is left locked, so the Go
// runtime destroys it instead of reusing it in the wrong namespace.
func (n *Netns) Listen(addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(n.Name)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("open netns %s: %w", n.Name, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter netns %s: %w", n.Name, err)}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if err := netns.Set(orig); err != nil {
			// Stay locked: the thread dies with this goroutine.
			if l != nil {
				l.Close()
			}
			ch <- result{err: errors.Join(lerr, fmt.Errorf("leave netns %s: %w", n.Name, err))}
			return
		}
		runtime.UnlockOSThread()
		if lerr != nil {
			lerr = fmt.Errorf("listen on %s in netns %s: %w", addr, n.Name, lerr)
		}
		ch <- result{l: l, err: lerr}
	}()
	r := <-ch
	return r.l, r.err
}
