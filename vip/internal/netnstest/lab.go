// Package netnstest runs real vipnode processes in network namespaces for the VIP integration tests and the
// failover benchmark: one "switch" namespace holding a bridge, one namespace per edge node and one client
// namespace, each host attached to the bridge by a veth pair. Addresses come from 198.18.0.0/24 and fd00:ee::/64,
// which exist only inside these namespaces; everything is deleted on cleanup.
package netnstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/vip"
	"sigs.k8s.io/yaml"
)

// T is the part of testing.TB the lab needs (the benchmark program implements it too).
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Port is the who-am-I service port vipnode serves on every VIP.
const Port = 8080

// Secret is the lab cluster's gossip secret.
const Secret = "netnstest-gossip-secret"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	labSeq    atomic.Int64
)

// Binary builds vipnode once per process.
func Binary(t T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vipnode-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "vipnode")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/edgegate/edgegate/vip/internal/vipnode").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build vipnode: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("%v", buildErr)
	}
	return binPath
}

// RemoveBinary deletes the vipnode built by Binary (call once at the end of the process: TestMain, the benchmark).
func RemoveBinary() {
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
}

// Lab is one switched L2 segment with nodes and a client.
type Lab struct {
	t      T
	Tag    string
	Dir    string
	bin    string
	sw     string
	Client string
	Nodes  []*Node
}

// Node is one edge node namespace and, while started, its vipnode process.
type Node struct {
	lab  *Lab
	Name string
	NS   string
	Veth string // the switch-side veth (drop it to partition the node)
	Addr netip.Addr
	File File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// File mirrors vipnode's configuration file.
type File struct {
	Node struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels,omitempty"`
		Weight int64             `json:"weight,omitempty"`
	} `json:"node"`
	ServePort    int        `json:"servePort,omitempty"`
	StatusFile   string     `json:"statusFile,omitempty"`
	DrainTimeout string     `json:"drainTimeout,omitempty"`
	Unfit        string     `json:"unfit,omitempty"`
	VIP          vip.Config `json:"vip"`
}

// Default VIPs of a lab: two IPv4, one IPv6.
var (
	VIP4a = netip.MustParseAddr("198.18.0.200")
	VIP4b = netip.MustParseAddr("198.18.0.201")
	VIP6  = netip.MustParseAddr("fd00:ee::200")
)

// New creates the namespaces for n nodes and a client. Node i (from 0) is edge-<i+1> at 198.18.0.<11+i>.
func New(t T, n int) *Lab {
	t.Helper()
	seq := labSeq.Add(1)
	tag := fmt.Sprintf("vt%d-%d-", os.Getpid()%100000, seq)
	l := &Lab{t: t, Tag: tag, Dir: t.TempDir(), bin: Binary(t), sw: tag + "sw", Client: tag + "c"}
	t.Cleanup(l.destroy)
	l.ip("netns", "add", l.sw)
	l.ip("-n", l.sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	l.ip("-n", l.sw, "link", "set", "br0", "up")
	hosts := []string{l.Client}
	for i := range n {
		nd := &Node{lab: l, Name: fmt.Sprintf("edge-%d", i+1), NS: fmt.Sprintf("%sn%d", tag, i+1), Veth: fmt.Sprintf("vn%d", i+1),
			Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)})}
		l.Nodes = append(l.Nodes, nd)
		hosts = append(hosts, nd.NS)
	}
	for i, h := range hosts {
		veth := "vc"
		addr4, addr6 := "198.18.0.100/24", "fd00:ee::100/64"
		if i > 0 {
			nd := l.Nodes[i-1]
			veth = nd.Veth
			addr4, addr6 = nd.Addr.String()+"/24", fmt.Sprintf("fd00:ee::%d/64", 10+i)
		}
		l.ip("netns", "add", h)
		l.ip("-n", l.sw, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h)
		l.ip("-n", l.sw, "link", "set", veth, "master", "br0", "up")
		l.ip("-n", h, "link", "set", "lo", "up")
		l.ip("-n", h, "addr", "add", addr4, "dev", "eth0")
		// nodad on the hosts' own addresses only so the lab is usable at once; VIPs get no-DAD from vipnode.
		l.ip("-n", h, "addr", "add", addr6, "dev", "eth0", "nodad")
		l.ip("-n", h, "link", "set", "eth0", "up")
	}
	for _, nd := range l.Nodes {
		nd.File = l.defaultFile(nd)
	}
	if dir := os.Getenv("VIPTEST_PCAP_DIR"); dir != "" {
		// Debugging aid: capture the client's traffic.
		cmd := exec.Command("ip", "netns", "exec", l.Client, "tcpdump", "-i", "eth0", "-s", "200", "-w", filepath.Join(dir, tag+"client.pcap"))
		if err := cmd.Start(); err == nil {
			t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
		}
	}
	return l
}

func (l *Lab) defaultFile(nd *Node) File {
	var f File
	f.Node.Name = nd.Name
	f.ServePort = Port
	f.StatusFile = filepath.Join(l.Dir, nd.Name+".status.json")
	f.DrainTimeout = "10s"
	var seeds []string
	for _, o := range l.Nodes {
		seeds = append(seeds, o.Addr.String()+":7946")
	}
	c := &f.VIP
	c.Memberlist.BindAddress = nd.Addr.String()
	c.Memberlist.Seeds = seeds
	c.Memberlist.Secret = Secret
	c.Interfaces = []string{"eth0"}
	must(yaml.Unmarshal([]byte(`
- metadata: {name: edge, namespace: metallb-system}
  spec:
    addresses: [198.18.0.200-198.18.0.201, fd00:ee::200/128]
`), &c.IPAddressPools))
	must(yaml.Unmarshal([]byte(`[{metadata: {name: l2}}]`), &c.L2Advertisements))
	return f
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func (l *Lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (l *Lab) destroy() {
	for _, nd := range l.Nodes {
		nd.Signal(syscall.SIGKILL)
		nd.Wait(5 * time.Second)
	}
	for _, ns := range append([]string{l.Client, l.sw}, l.nsNames()...) {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

func (l *Lab) nsNames() []string {
	var out []string
	for _, nd := range l.Nodes {
		out = append(out, nd.NS)
	}
	return out
}

// Start runs vipnode for every node.
func (l *Lab) Start() {
	for _, nd := range l.Nodes {
		nd.Start()
	}
}

// Start runs the node's vipnode with its File.
func (nd *Node) Start() {
	t := nd.lab.t
	t.Helper()
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		t.Fatalf("%s already running", nd.Name)
	}
	b, err := yaml.Marshal(nd.File)
	if err != nil {
		t.Fatalf("marshal %s config: %v", nd.Name, err)
	}
	cfgPath := filepath.Join(nd.lab.Dir, nd.Name+".yaml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	logf, err := os.OpenFile(filepath.Join(nd.lab.Dir, nd.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("%v", err)
	}
	os.Remove(nd.File.StatusFile)
	cmd := exec.Command("ip", "netns", "exec", nd.NS, nd.lab.bin, "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", nd.Name, err)
	}
	nd.cmd, nd.done = cmd, make(chan struct{})
	done := nd.done
	go func() { cmd.Wait(); logf.Close(); close(done) }()
}

// Signal sends sig to the running vipnode (ip netns exec execs it, so the pid is vipnode's).
func (nd *Node) Signal(sig syscall.Signal) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		nd.cmd.Process.Signal(sig)
	}
}

// Wait waits for the process to exit (bounded); it reports whether it exited.
func (nd *Node) Wait(timeout time.Duration) bool {
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	if done == nil {
		return true
	}
	select {
	case <-done:
		nd.mu.Lock()
		nd.cmd, nd.done = nil, nil
		nd.mu.Unlock()
		return true
	case <-time.After(timeout):
		return false
	}
}

// Cleanup runs `vipnode -cleanup` in the node's namespace: what systemd's ExecStopPost does after a crash.
func (nd *Node) Cleanup() {
	t := nd.lab.t
	t.Helper()
	cfgPath := filepath.Join(nd.lab.Dir, nd.Name+".yaml")
	if out, err := exec.Command("ip", "netns", "exec", nd.NS, nd.lab.bin, "-config", cfgPath, "-cleanup").CombinedOutput(); err != nil {
		t.Fatalf("cleanup %s: %v: %s", nd.Name, err, out)
	}
}

// Log returns the node's log so far.
func (nd *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(nd.lab.Dir, nd.Name+".log"))
	return string(b)
}

// Status reads the node's last status file.
func (nd *Node) Status() (vip.Status, error) {
	var s vip.Status
	b, err := os.ReadFile(nd.File.StatusFile)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// Holds reports whether the node's eth0 carries a as a host address (ground truth, from the kernel).
func (nd *Node) Holds(a netip.Addr) bool {
	out, _ := exec.Command("ip", "-n", nd.NS, "-o", "addr", "show", "dev", "eth0").Output()
	return bytes.Contains(out, []byte(" "+a.String()+"/"+fmt.Sprint(a.BitLen())+" "))
}

// SetLink brings the node's switch-side veth up or down (a partition of that node).
func (nd *Node) SetLink(up bool) {
	state := "down"
	if up {
		state = "up"
	}
	nd.lab.ip("-n", nd.lab.sw, "link", "set", nd.Veth, state)
}

// Holders lists the nodes holding a.
func (l *Lab) Holders(a netip.Addr) []string {
	var out []string
	for _, nd := range l.Nodes {
		if nd.Holds(a) {
			out = append(out, nd.Name)
		}
	}
	return out
}

// Node returns the node named name.
func (l *Lab) Node(name string) *Node {
	for _, nd := range l.Nodes {
		if nd.Name == name {
			return nd
		}
	}
	l.t.Fatalf("no node %s", name)
	return nil
}

// Eventually polls cond every 20 ms until it holds or timeout passes (state in other processes and kernels has
// no event to wait on). It returns how long it took.
func (l *Lab) Eventually(timeout time.Duration, what string, cond func() bool) time.Duration {
	l.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			l.t.Fatalf("after %v: %s%s", timeout, what, l.debug())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func (l *Lab) debug() string {
	var b strings.Builder
	for _, nd := range l.Nodes {
		s, err := nd.Status()
		fmt.Fprintf(&b, "\n--- %s status (err %v): %+v\n--- %s log (tail):\n%s", nd.Name, err, s, nd.Name, tail(nd.Log(), 3000))
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Converged reports whether every listed VIP is held by exactly one node and, when members > 0, every running node
// sees that many members.
func (l *Lab) Converged(vips []netip.Addr, members int, running ...*Node) bool {
	for _, a := range vips {
		if len(l.Holders(a)) != 1 {
			return false
		}
	}
	for _, nd := range running {
		s, err := nd.Status()
		if err != nil || !s.Ready || (members > 0 && len(s.Members) != members) {
			return false
		}
	}
	return true
}

// InNS runs f on an OS thread switched into namespace ns; sockets f creates live in that namespace.
func InNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it exits with the goroutine instead of returning to the pool in ns.
		if err := enterNS(ns); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}
