package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/bgp/internal/lab"
)

var speakerBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "bgpspeaker-bin-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			os.Chmod(dir, 0o755)
			speakerBin = filepath.Join(dir, "bgpspeaker")
			out, err := exec.Command("go", "build", "-o", speakerBin, "github.com/edgegate/edgegate/bgp/cmd/bgpspeaker").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "build bgpspeaker: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// Addresses inside the lab (RFC 2544 benchmarking range and ULA, only inside our namespaces).
var (
	vip4       = netip.MustParsePrefix("198.19.0.10/32")
	vip6       = netip.MustParsePrefix("fd00:99::10/128")
	routerASN  = 64512
	nodeASN    = uint32(4200000001) // 4-byte ASN on purpose
	mainSecret = "edgegate-md5-secret"
)

// vipHTTP are the addresses a node serves HTTP on.
var vipHTTP = []string{vip4.Addr().String() + ":80", "[" + vip6.Addr().String() + "]:80"}

func nodeV4(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}) }
func nodeV6(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("fd00:1::%d", 10+i)) }

// topo is a router namespace with a bridge to n edge nodes and a client namespace behind the router.
type topo struct {
	L      *lab.Lab
	R, C   string
	Nodes  []string // namespaces
	Procs  []*lab.Proc
	FRR    *lab.FRR
	config []string // per node YAML path
}

// newTopo builds the namespaces for nodes edge nodes (no router daemon yet).
func newTopo(t testing.TB, nodes int) *topo {
	l := lab.New(t)
	tp := &topo{L: l, R: l.NS("r"), C: l.NS("c")}
	l.Sysctl(tp.R, "net.ipv4.ip_forward=1")
	l.Sysctl(tp.R, "net.ipv6.conf.all.forwarding=1")
	// Without L4 hashing every test request (same client address) goes to one node.
	l.Sysctl(tp.R, "net.ipv4.fib_multipath_hash_policy=1")
	l.Sysctl(tp.R, "net.ipv6.fib_multipath_hash_policy=1")
	l.Must("ip", "-n", tp.R, "link", "add", "br0", "type", "bridge")
	l.Must("ip", "-n", tp.R, "link", "set", "br0", "up")
	l.Addr(tp.R, "br0", "198.18.1.1/24")
	l.Addr(tp.R, "br0", "fd00:1::1/64")
	l.Veth(tp.R, "c0", tp.C, "eth0")
	l.Addr(tp.R, "c0", "198.18.2.1/24")
	l.Addr(tp.R, "c0", "fd00:2::1/64")
	l.Addr(tp.C, "eth0", "198.18.2.2/24")
	l.Addr(tp.C, "eth0", "fd00:2::2/64")
	l.Must("ip", "-n", tp.C, "route", "add", "default", "via", "198.18.2.1")
	l.Must("ip", "-n", tp.C, "-6", "route", "add", "default", "via", "fd00:2::1")
	for i := 1; i <= nodes; i++ {
		tp.addNode(i)
	}
	return tp
}

func (tp *topo) addNode(i int) string {
	l := tp.L
	ns := l.NS(fmt.Sprintf("n%d", i))
	port := fmt.Sprintf("p%d", i)
	l.Veth(tp.R, port, ns, "eth0")
	l.Must("ip", "-n", tp.R, "link", "set", port, "master", "br0")
	l.Addr(ns, "eth0", nodeV4(i).String()+"/24")
	l.Addr(ns, "eth0", nodeV6(i).String()+"/64")
	l.Must("ip", "-n", ns, "route", "add", "default", "via", "198.18.1.1")
	l.Must("ip", "-n", ns, "-6", "route", "add", "default", "via", "fd00:1::1")
	// The VIPs live on lo (this kernel has no dummy module; lo works the same for a host route).
	l.Addr(ns, "lo", vip4.String())
	l.Addr(ns, "lo", vip6.String())
	tp.Nodes = append(tp.Nodes, ns)
	return ns
}

// frrConf is the router: one peer-group for the edge nodes with fast timers, multipath.
func frrConf(nodes int, password string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `hostname router
log file @DIR@/bgpd.log
router bgp %d
 bgp router-id 198.18.1.1
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor EDGE peer-group
 neighbor EDGE remote-as external
 neighbor EDGE timers 1 3
 neighbor EDGE timers connect 1
`, routerASN)
	for _, e := range extra {
		fmt.Fprintf(&b, " %s\n", e)
	}
	if password != "" {
		fmt.Fprintf(&b, " neighbor EDGE password %s\n", password)
	}
	for i := 1; i <= nodes; i++ {
		fmt.Fprintf(&b, " neighbor %s peer-group EDGE\n", nodeV4(i))
	}
	b.WriteString(` address-family ipv4 unicast
  neighbor EDGE activate
  maximum-paths 8
 exit-address-family
 address-family ipv6 unicast
  neighbor EDGE activate
  maximum-paths 8
 exit-address-family
`)
	return b.String()
}

type nodeOpts struct {
	fit          bool
	passwordFile string
	drainWait    string
	holdTime     string
	gr           bool
	grTime       string // bgp.gracefulRestartTime; default 30s
	noHTTP       bool   // the speaker serves nothing (a separate `serve` process does)
}

func nodeYAML(i int, o nodeOpts) string {
	if o.grTime == "" {
		o.grTime = "30s"
	}
	pw := ""
	if o.passwordFile != "" {
		pw = fmt.Sprintf("  peerOptions:\n  - peer: tor\n    passwordFile: %s\n", o.passwordFile)
	}
	return fmt.Sprintf(`node:
  name: n%[1]d
  labels: {rack: r%[1]d}
fit: %[2]v
vips: ["%[3]s", "%[4]s"]
bgp:
  routerID: %[5]s
  asn: %[6]d
  nextHopIPv6: "%[7]s"
  drainWait: %[8]s
  gracefulRestartTime: %[13]s
  peers:
  - metadata: {name: tor}
    spec:
      myASN: %[6]d
      peerASN: %[9]d
      peerAddress: 198.18.1.1
      holdTime: %[10]s
      keepaliveTime: 1s
      connectTime: 1s
      dualStackAddressFamily: true
      enableGracefulRestart: %[11]v
%[12]s  communities:
  - metadata: {name: aliases}
    spec:
      communities:
      - {name: edge, value: "64512:100"}
      - {name: site, value: "large:4200000001:1:2"}
  advertisements:
  - metadata: {name: vips}
    spec:
      communities: [edge, site]
`, i, o.fit, vip4.Addr(), vip6.Addr(), nodeV4(i), nodeASN, nodeV6(i), o.drainWait, routerASN, o.holdTime, o.gr, pw, o.grTime)
}

// startNode writes node i's config and starts its speaker (serving HTTP on the VIPs).
func (tp *topo) startNode(i int, o nodeOpts) *lab.Proc {
	if o.drainWait == "" {
		o.drainWait = "2s"
	}
	if o.holdTime == "" {
		o.holdTime = "3s"
	}
	cfg := tp.L.WriteFile(fmt.Sprintf("n%d.yaml", i), nodeYAML(i, o))
	var http []string
	if !o.noHTTP {
		http = vipHTTP
	}
	p := tp.L.StartSpeaker(fmt.Sprintf("n%d", i), tp.Nodes[i-1], speakerBin, cfg, http...)
	for len(tp.Procs) < i {
		tp.Procs = append(tp.Procs, nil)
	}
	tp.Procs[i-1] = p
	return p
}

// waitKernel waits until the router's kernel route for p has exactly want next hops.
func waitKernel(ns string, p netip.Prefix, want []netip.Addr, timeout time.Duration) ([]netip.Addr, error) {
	var got []netip.Addr
	err := lab.Eventually(timeout, func() error {
		var err error
		got, err = lab.KernelNextHops(ns, p)
		if err != nil {
			return err
		}
		slices.SortFunc(got, netip.Addr.Compare)
		if !slices.Equal(got, want) {
			return fmt.Errorf("kernel next hops for %s: got %v, want %v", p, got, want)
		}
		return nil
	})
	return got, err
}

func addrs(f func(int) netip.Addr, is ...int) []netip.Addr {
	var out []netip.Addr
	for _, i := range is {
		out = append(out, f(i))
	}
	return out
}

// nhChange is a change of the router's kernel next hops for a prefix.
type nhChange struct {
	At       time.Time
	NextHops []netip.Addr
}

// nhRecorder polls the router's kernel next hops for a prefix and records every change.
type nhRecorder struct {
	stop    chan struct{}
	done    chan struct{}
	changes []nhChange
	errs    int
}

func recordNextHops(ns string, p netip.Prefix, every time.Duration) *nhRecorder {
	r := &nhRecorder{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		var last []netip.Addr
		first := true
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			got, err := lab.KernelNextHops(ns, p)
			now := time.Now()
			slices.SortFunc(got, netip.Addr.Compare)
			switch {
			case err != nil:
				r.errs++
			case first || !slices.Equal(got, last):
				r.changes = append(r.changes, nhChange{At: now, NextHops: got})
				last, first = got, false
			}
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

// Stop ends the recording and returns the changes (the first entry is the initial state).
func (r *nhRecorder) Stop() []nhChange {
	close(r.stop)
	<-r.done
	return r.changes
}
