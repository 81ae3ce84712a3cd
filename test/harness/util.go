package harness

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// RequireRoot skips the test unless it runs as root: network namespaces,
// veth pairs and routes need CAP_NET_ADMIN. CI runs these tests as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, veth pairs, routes)")
	}
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago. Another process may take one before it is used; callers that bind them
// retry or fail loudly.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreeAddrs is FreePorts as "127.0.0.1:port" strings, failing the test on error.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	ports, err := FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, n)
	for i, p := range ports {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return addrs
}

// PollInterval is how often Eventually retries: short enough to keep tests
// quick, long enough not to busy-loop against Envoy and the apiserver.
const PollInterval = 100 * time.Millisecond

// DefaultTimeout bounds how long Eventually waits for edgegate to reflect a
// change. Debounce plus xDS push take well under a second on an idle machine;
// the margin is for CI machines busy with compiles.
const DefaultTimeout = 30 * time.Second

// Eventually calls check every PollInterval until it returns nil and fails
// the test with the last error if that has not happened within timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	if err := Poll(timeout, check); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Poll calls check every PollInterval until it returns nil or timeout passes,
// and returns the last error in the latter case.
func Poll(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for attempt := 1; ; attempt++ {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %s (%d attempts): %w", timeout, attempt, err)
		}
		<-tick.C
	}
}
