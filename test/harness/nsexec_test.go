package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestForwardIntoNetns: a process inside a namespace reaches a listener on the host's 127.0.0.1
// at the same address through the forwarder, and Close ends the forwarded connections.
func TestForwardIntoNetns(t *testing.T) {
	n := NewNetns(t)
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go func() { // line echo
		for {
			c, err := host.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	addr := host.Addr().String()

	// Without the forwarder the namespace's own loopback has nothing there.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := DialInNetns(ctx, n.Name, addr); err == nil {
		c.Close()
		t.Fatalf("dial %s inside %s worked without a forwarder", addr, n.Name)
	}

	f, err := ForwardIntoNetns(n.Name, addr, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DialInNetns(ctx, n.Name, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintln(c, "hello"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("echo through the forwarder: %q, %v", line, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Errorf("read after Close: %v, want EOF (forwarded connection closed)", err)
	}
}

// TestBackendInNetns: a backend started in a namespace by name answers a client whose
// connections are opened inside that namespace.
func TestBackendInNetns(t *testing.T) {
	n := NewNetns(t)
	a, err := n.NewAddr()
	if err != nil {
		t.Fatal(err)
	}
	b, err := StartBackendInNetns(n.Name, "nb", netip.AddrPortFrom(a, DefaultBackendPort))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	resp, err := NetnsHTTPClient(n.Name, 5*time.Second).Get("http://" + b.Addr.String() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || b.Requests() != 1 {
		t.Errorf("status %d, backend saw %d requests; want 200 and 1", resp.StatusCode, b.Requests())
	}
}
