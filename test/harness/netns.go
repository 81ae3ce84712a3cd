package harness

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// Netns is a network namespace created for one test, joined to the main
// namespace by a veth pair. It owns a /24 from 198.18.0.0/15 (RFC 2544's
// benchmarking range): the main namespace routes that /24 to the veth, the
// host end holds .1 and the namespace end .2; backends get .10 and up.
//
// kube-apiserver refuses loopback EndpointSlice addresses, which is why the
// backends live here rather than on 127.0.0.x.
//
// Methods are safe for concurrent use.
type Netns struct {
	Name     string       // netns name, under /run/netns
	HostVeth string       // veth end in the main namespace
	Prefix   netip.Prefix // the /24 this namespace owns
	HostAddr netip.Addr   // .1, on HostVeth

	nsVeth string
	mu     sync.Mutex
	next   netip.Addr // next backend address
}

// netnsTag prefixes every namespace and veth name the harness creates, so a
// later run can recognise and remove what a crashed run left behind.
const netnsTag = "eg"

// blockRange is 198.18.0.0/15 split into /24s.
var (
	blockBase  = netip.MustParseAddr("198.18.0.0")
	blockCount = 512
	netnsSeq   atomic.Int64
	staleOnce  sync.Once
)

// NewNetns creates a namespace with its veth pair, address block and route,
// and removes them when the test ends.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	RequireRoot(t)
	n, err := CreateNetns()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Delete(); err != nil {
			t.Errorf("delete netns: %v", err)
		}
	})
	return n
}

// CreateNetns is NewNetns without a test; call Delete when done.
func CreateNetns() (*Netns, error) {
	staleOnce.Do(removeStaleNetns)
	pid := os.Getpid()
	seq := netnsSeq.Add(1)
	n := &Netns{
		Name:     fmt.Sprintf("%s-%d-%d", netnsTag, pid, seq),
		HostVeth: fmt.Sprintf("%s%x%xh", netnsTag, pid, seq), // at most 15 bytes: "eg" + 6 + 3 + "h"
		nsVeth:   fmt.Sprintf("%s%x%xn", netnsTag, pid, seq),
	}
	if err := n.create(int(int64(pid)*7+seq*13) % blockCount); err != nil {
		_ = n.Delete()
		return nil, err
	}
	return n, nil
}

func (n *Netns) create(firstBlock int) error {
	if err := ip("netns", "add", n.Name); err != nil {
		return err
	}
	if err := ip("link", "add", n.HostVeth, "type", "veth", "peer", "name", n.nsVeth, "netns", n.Name); err != nil {
		return err
	}
	if err := ip("link", "set", n.HostVeth, "up"); err != nil {
		return err
	}
	if err := n.claimBlock(firstBlock); err != nil {
		return err
	}
	nsAddr := n.HostAddr.Next()
	for _, args := range [][]string{
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "addr", "add", netip.PrefixFrom(nsAddr, 24).String(), "dev", n.nsVeth},
		{"-n", n.Name, "link", "set", n.nsVeth, "up"},
	} {
		if err := ip(args...); err != nil {
			return err
		}
	}
	n.next = withLastOctet(n.Prefix.Addr(), 10)
	return nil
}

// claimBlock takes the first free /24 from firstBlock on. Adding the route is
// the claim: the kernel refuses a second identical route with EEXIST, which
// makes the choice safe between test processes running at the same time.
func (n *Netns) claimBlock(firstBlock int) error {
	for i := range blockCount {
		b := (firstBlock + i) % blockCount
		base := blockBase.As4()
		base[1] += byte(b / 256)
		base[2] = byte(b % 256)
		prefix := netip.PrefixFrom(netip.AddrFrom4(base), 24)
		if out, _ := ipOutput("route", "show", prefix.String()); strings.TrimSpace(out) != "" {
			continue
		}
		host := withLastOctet(prefix.Addr(), 1)
		if err := ip("addr", "add", netip.PrefixFrom(host, 32).String(), "dev", n.HostVeth); err != nil {
			return err
		}
		err := ip("route", "add", prefix.String(), "dev", n.HostVeth, "src", host.String())
		if err == nil {
			n.Prefix, n.HostAddr = prefix, host
			return nil
		}
		_ = ip("addr", "del", netip.PrefixFrom(host, 32).String(), "dev", n.HostVeth)
		if !strings.Contains(err.Error(), "File exists") {
			return err
		}
	}
	return fmt.Errorf("no free /24 left in 198.18.0.0/15")
}

// NewAddr assigns the next free address of the block inside the namespace.
func (n *Netns) NewAddr() (netip.Addr, error) {
	n.mu.Lock()
	a := n.next
	if !n.Prefix.Contains(a) || a.As4()[3] == 255 {
		n.mu.Unlock()
		return netip.Addr{}, fmt.Errorf("netns %s: address block %s exhausted", n.Name, n.Prefix)
	}
	n.next = a.Next()
	n.mu.Unlock()
	if err := ip("-n", n.Name, "addr", "add", netip.PrefixFrom(a, 32).String(), "dev", n.nsVeth); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

// Delete removes the veth pair (deleting one end deletes both; the route and
// the host address go with it) and the namespace. Sockets still open inside
// the namespace keep it alive in the kernel until they close: stop backends
// first (the test cleanups do, in reverse order of creation).
func (n *Netns) Delete() error {
	var errs []string
	if linkExists(n.HostVeth) {
		if err := ip("link", "del", n.HostVeth); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if _, err := os.Stat("/run/netns/" + n.Name); err == nil {
		if err := ip("netns", "del", n.Name); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// removeStaleNetns deletes namespaces (and so their veths) that a test process
// which no longer exists left behind; names carry the creator's pid.
func removeStaleNetns() {
	out, err := ipOutput("netns", "list")
	if err != nil {
		return
	}
	re := regexp.MustCompile(`^` + netnsTag + `-(\d+)-\d+$`)
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		m := re.FindStringSubmatch(fields[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // its creator still runs
		}
		_ = ip("netns", "del", fields[0])
	}
}

func withLastOctet(a netip.Addr, last byte) netip.Addr {
	b := a.As4()
	b[3] = last
	return netip.AddrFrom4(b)
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

func ip(args ...string) error {
	_, err := ipOutput(args...)
	return err
}

func ipOutput(args ...string) (string, error) {
	cmd := exec.Command("ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
