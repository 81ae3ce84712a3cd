package edge

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/bgp/bgplab"
	"github.com/edgegate/edgegate/test/harness"
)

// BGP lab: the nodes on a bridge in the router namespace (198.18.1.0/24), the client and the
// backend behind the router (198.18.2.0/24), the VIP routed to the nodes by BGP.
var (
	bgpVIP     = netip.MustParseAddr("198.18.3.10")
	bgpRouter  = netip.MustParseAddr("198.18.1.1")
	bgpClient  = netip.MustParseAddr("198.18.2.2")
	bgpBackend = netip.MustParseAddr("198.18.2.3")
)

const (
	// bgpDrainWait is the daemons' BGP drainWait: how long a stopping node keeps its routes marked
	// graceful-shutdown before it withdraws them.
	bgpDrainWait = 2 * time.Second
	routerASN    = 64512
	nodeASN      = 4200000001 // 4-byte on purpose
)

func bgpNodeAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}) }

// frrConf: one peer group for the nodes, fast timers, ECMP over up to 8 paths (as bgp/e2e).
func frrConf(nodes int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `hostname router
log file @DIR@/bgpd.log
router bgp %d
 bgp router-id %s
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor EDGE peer-group
 neighbor EDGE remote-as external
 neighbor EDGE timers 1 3
 neighbor EDGE timers connect 1
`, routerASN, bgpRouter)
	for i := 1; i <= nodes; i++ {
		fmt.Fprintf(&b, " neighbor %s peer-group EDGE\n", bgpNodeAddr(i))
	}
	b.WriteString(` address-family ipv4 unicast
  neighbor EDGE activate
  maximum-paths 8
 exit-address-family
`)
	return b.String()
}

type bgpLab struct {
	*lab
	router string
	frr    *bgplab.FRR
}

// newBGPLab builds the router (FRR, multipath, L4 hashing), the client with the backend, and nodes
// n1..nN (created, not started); the last one, when deadLast, never gets a complete configuration.
func newBGPLab(t *testing.T, nodes int, deadLast bool) *bgpLab {
	bgplab.Skip(t, "vtysh", filepath.Join(bgplab.FRRBin, "bgpd"))
	l := &bgpLab{lab: newLab(t, bgpVIP)}
	L := l.L
	l.router = L.NS("r")
	L.Sysctl(l.router, "net.ipv4.ip_forward=1")
	// Without L4 hashing every request of the one client goes to the same node.
	L.Sysctl(l.router, "net.ipv4.fib_multipath_hash_policy=1")
	L.Must("ip", "-n", l.router, "link", "add", "br0", "type", "bridge")
	L.Must("ip", "-n", l.router, "link", "set", "br0", "up")
	L.Addr(l.router, "br0", netip.PrefixFrom(bgpRouter, 24).String())
	l.client = L.NS("c")
	L.Veth(l.router, "c0", l.client, "eth0")
	L.Addr(l.router, "c0", "198.18.2.1/24")
	L.Addr(l.client, "eth0", netip.PrefixFrom(bgpClient, 24).String())
	L.Addr(l.client, "eth0", netip.PrefixFrom(bgpBackend, 24).String())
	L.Must("ip", "-n", l.client, "route", "add", "default", "via", "198.18.2.1")
	l.serveBackend(bgpBackend)

	var seeds []string
	for i := 1; i <= nodes; i++ {
		seeds = append(seeds, fmt.Sprintf("%q", netip.AddrPortFrom(bgpNodeAddr(i), gossipPort).String()))
	}
	for i := 1; i <= nodes; i++ {
		n := l.addNode(fmt.Sprintf("n%d", i))
		n.addr = bgpNodeAddr(i)
		L.Veth(l.router, "p"+n.name, n.ns, "eth0")
		L.Must("ip", "-n", l.router, "link", "set", "p"+n.name, "master", "br0")
		L.Addr(n.ns, "eth0", netip.PrefixFrom(n.addr, 24).String())
		L.Must("ip", "-n", n.ns, "route", "add", "default", "via", bgpRouter.String())
		dir := mkdir(t, filepath.Join(L.Dir, n.name))
		cfg := l.baseConfig(n, dir)
		// The pool is what BGP announces; no L2 advertisement, so gossip runs but holds no VIP.
		cfg.VIP = vipConfig(t, fmt.Sprintf(`
memberlist:
  bindAddress: %s
  bindPort: %d
  seeds: [%s]
  secret: %s
  clusterLabel: %s
interfaces: [eth0]
ipAddressPools:
- metadata: {name: public}
  spec: {addresses: ["%s/32"]}
`, n.addr, gossipPort, strings.Join(seeds, ", "), gossipSecret, L.Tag, bgpVIP))
		cfg.BGP = bgpConfig(t, fmt.Sprintf(`
routerID: %[1]s
asn: %[2]d
drainWait: %[5]s
peers:
- metadata: {name: tor}
  spec: {myASN: %[2]d, peerASN: %[3]d, peerAddress: %[4]s, holdTime: 3s, keepaliveTime: 1s, connectTime: 1s}
`, n.addr, nodeASN, routerASN, bgpRouter, bgpDrainWait))
		if deadLast && i == nodes {
			l.withDeadCluster(&cfg, dir)
		}
		n.write(t, cfg, dir)
	}
	l.frr = L.StartFRR(l.router, frrConf(nodes))
	return l
}

// nextHops is the router's kernel route for the VIP, sorted.
func (l *bgpLab) nextHops() ([]netip.Addr, error) {
	got, err := bgplab.KernelNextHops(l.router, netip.PrefixFrom(l.vip, 32))
	slices.SortFunc(got, netip.Addr.Compare)
	return got, err
}

func (l *bgpLab) waitNextHops(t *testing.T, timeout time.Duration, want ...*node) {
	t.Helper()
	var addrs []netip.Addr
	for _, n := range want {
		addrs = append(addrs, n.addr)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	harness.Eventually(t, timeout, "router's next hops for the VIP", func() error {
		got, err := l.nextHops()
		if err != nil {
			return err
		}
		if !slices.Equal(got, addrs) {
			return fmt.Errorf("kernel next hops for %s: %v, want %v", l.vip, got, addrs)
		}
		return nil
	})
}

// envoyRequests is how many downstream requests n's Envoy completed on its listeners (its own
// admin interface's requests excluded).
func (n *node) envoyRequests() (int, error) {
	body, code, err := n.get(nodeEnvoyAdmin, "/stats?filter=downstream_rq_completed")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("envoy /stats: %d", code)
	}
	total := 0
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ": ")
		if !ok || !strings.HasPrefix(name, "http.") || strings.HasPrefix(name, "http.admin.") {
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return 0, fmt.Errorf("envoy stat %s: %w", name, err)
		}
		total += v
	}
	return total, nil
}

// hopWatch samples, every 20 ms until stopped, the router's next hops and whether a node's Envoy
// still has its listening socket (Envoy closes it when the daemon drains it, or exits).
type hopWatch struct {
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	sets     [][]netip.Addr // distinct consecutive next-hop sets seen
	goneAt   time.Time      // first sample without the node's next hop
	pathAt   time.Time      // first sample without a BGP path from the node (withdrawn), when watched
	gshutAt  time.Time      // first sample where the node's path carried graceful-shutdown (65535:0)
	downAt   time.Time      // first sample where the node's Envoy had no listening socket
	sawExtra []string       // samples that contained a forbidden next hop
}

func (l *bgpLab) watchHops(n *node, paths bool, forbidden ...*node) *hopWatch {
	w := &hopWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			hops, err := l.nextHops()
			now := time.Now()
			w.mu.Lock()
			if err == nil {
				if len(w.sets) == 0 || !slices.Equal(w.sets[len(w.sets)-1], hops) {
					w.sets = append(w.sets, hops)
				}
				if w.goneAt.IsZero() && !slices.Contains(hops, n.addr) {
					w.goneAt = now
				}
				for _, f := range forbidden {
					if slices.Contains(hops, f.addr) && len(w.sawExtra) < 3 {
						w.sawExtra = append(w.sawExtra, fmt.Sprintf("%s: %v", now.Format("15:04:05.000"), hops))
					}
				}
			}
			if paths && w.pathAt.IsZero() {
				switch has, gshut := l.pathVia(n); {
				case !has:
					w.pathAt = time.Now()
				case gshut && w.gshutAt.IsZero():
					w.gshutAt = time.Now()
				}
			}
			if w.downAt.IsZero() && !n.envoyListening() {
				w.downAt = time.Now()
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *hopWatch) end() {
	close(w.stop)
	<-w.done
}

// TestBGP runs four daemons announcing the VIP to FRR: n1..n3 fit, n4 never configured.
func TestBGP(t *testing.T) {
	l := newBGPLab(t, 4, true)
	fit, n4 := l.nodes[:3], l.nodes[3]
	for _, n := range l.nodes {
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
	}
	watch := l.watchHops(n4, false, n4) // n4 must never be a next hop
	for _, n := range fit {
		if err := n.waitReady(); err != nil {
			t.Fatal(err)
		}
	}
	l.waitNextHops(t, 30*time.Second, fit...)
	l.waitServed(t, 10*time.Second)

	t.Run("every fit daemon is a next hop and serves", func(t *testing.T) {
		before := map[string]int{}
		for _, n := range fit {
			v, err := n.envoyRequests()
			if err != nil {
				t.Fatal(err)
			}
			before[n.name] = v
		}
		run := l.startLoad(loadOpts{count: 300, interval: 2 * time.Millisecond, maxTime: 20 * time.Second, timeout: 2 * time.Second})
		out := run.stopAfter(time.Time{}, 300, 20*time.Second)
		if s := summarize(out); s.failed > 0 {
			t.Errorf("%d of %d requests failed with a stable ECMP set: %v", s.failed, s.sent, s.errs)
		}
		for _, n := range fit {
			v, err := n.envoyRequests()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s's Envoy served %d of %d requests", n.name, v-before[n.name], len(out))
			if v == before[n.name] {
				t.Errorf("%s's Envoy served none of %d requests: ECMP does not reach it", n.name, len(out))
			}
		}
	})

	t.Run("unfit daemon does not announce", func(t *testing.T) {
		// n4 has an established session, so its absence from the routes is its unfitness.
		harness.Eventually(t, 20*time.Second, "n4 established and not announcing", func() error {
			nb, err := l.frr.Neighbors()
			if err != nil {
				return err
			}
			if s := nb[n4.addr.String()].State; s != "Established" {
				return fmt.Errorf("router's session with n4: %q", s)
			}
			st, err := n4.status()
			if err != nil {
				return err
			}
			if st.Ready || st.Edge.BGP == nil || st.Edge.BGP.Fit || len(st.Edge.BGP.Announced) > 0 {
				return fmt.Errorf("n4 /status: ready %v, bgp %+v; want unfit, nothing announced", st.Ready, st.Edge.BGP)
			}
			return nil
		})
		paths, err := l.frr.BGPPaths(netip.PrefixFrom(l.vip, 32))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			for _, nh := range p.NextHops {
				if nh.IP == n4.addr.String() {
					t.Errorf("router has a path for %s via unfit n4", l.vip)
				}
			}
		}
		if len(paths) != len(fit) {
			t.Errorf("router has %d paths for %s, want %d (one per fit node)", len(paths), l.vip, len(fit))
		}
	})

	t.Run("daemon whose Envoy stops answering withdraws", func(t *testing.T) {
		n1 := fit[0]
		pids := n1.envoyAlive()
		if len(pids) != 1 {
			t.Fatalf("n1: envoy pids %v, want one", pids)
		}
		if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		frozen := time.Now()
		defer syscall.Kill(pids[0], syscall.SIGCONT)
		l.waitNextHops(t, 15*time.Second, fit[1:]...)
		t.Logf("Envoy of n1 frozen: next hop withdrawn after %s", time.Since(frozen).Round(time.Millisecond))
		if err := syscall.Kill(pids[0], syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		if err := n1.waitReady(); err != nil {
			t.Fatal(err)
		}
		l.waitNextHops(t, 15*time.Second, fit...)
	})

	t.Run("SIGTERM withdraws before Envoy stops", func(t *testing.T) {
		n3 := fit[2]
		const clients = 2
		var runs []*loadRun
		for range clients {
			runs = append(runs, l.startLoad(loadOpts{count: 4000, interval: 5 * time.Millisecond, maxTime: 30 * time.Second, timeout: 2 * time.Second}))
		}
		for _, r := range runs {
			if err := r.waitOK(time.Time{}, 20, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		w := l.watchHops(n3, true, n4)
		stopAt := time.Now()
		if err := n3.stop(); err != nil {
			t.Fatalf("SIGTERM n3: %v", err)
		}
		exitedAfter := time.Since(stopAt)
		l.waitNextHops(t, 10*time.Second, fit[:2]...)
		after := time.Now()
		var out []outcome
		for _, r := range runs {
			out = append(out, r.stopAfter(after, 50, 20*time.Second)...)
		}
		w.end()
		if w.goneAt.IsZero() || w.downAt.IsZero() {
			t.Fatalf("watch saw next hop gone at %v, Envoy down at %v", w.goneAt, w.downAt)
		}
		t.Logf("SIGTERM n3: next hop gone from the router's FIB after %s (graceful shutdown), marked 65535:0 after %s, route withdrawn from its BGP table after %s, n3's Envoy closed its listener after %s, n3 exited after %s; FIB sets %v",
			w.goneAt.Sub(stopAt).Round(time.Millisecond), w.gshutAt.Sub(stopAt).Round(time.Millisecond), w.pathAt.Sub(stopAt).Round(time.Millisecond), w.downAt.Sub(stopAt).Round(time.Millisecond), exitedAfter.Round(time.Millisecond), w.sets)
		// RFC 8326 drain: the route stays, marked 65535:0, for drainWait (2 s here), then goes.
		if w.gshutAt.IsZero() {
			t.Errorf("the router never saw n3's route with graceful-shutdown 65535:0")
		}
		if w.pathAt.Sub(stopAt) < bgpDrainWait*3/4 {
			t.Errorf("n3's route was withdrawn %s after SIGTERM, before its drainWait %s", w.pathAt.Sub(stopAt).Round(time.Millisecond), bgpDrainWait)
		}
		if w.pathAt.IsZero() || !w.pathAt.Before(w.downAt) {
			t.Errorf("n3's Envoy closed its listener (%s) before its route was withdrawn from the router's BGP table (%s)",
				w.downAt.Format("15:04:05.000"), w.pathAt.Format("15:04:05.000"))
		}
		if !w.goneAt.Before(w.downAt) {
			t.Errorf("n3's Envoy closed its listener (%s) before its next hop left the router (%s)",
				w.downAt.Format("15:04:05.000"), w.goneAt.Format("15:04:05.000"))
		}
		s := summarize(out)
		// Each change of the router's ECMP set may rehash the one connection each client has in
		// flight onto a node without its socket (bgp/README.md "ECMP rehash on withdraw"): that,
		// and nothing else, is allowed.
		changes := max(len(w.sets)-1, 1)
		t.Logf("graceful stop of n3: %d requests from %d clients, %d failed (%d resets; allowed: %d clients x %d ECMP changes)",
			s.sent, clients, s.failed, s.resets, clients, changes)
		if s.failed-s.resets > 0 || s.resets > clients*changes {
			t.Errorf("failed requests beyond ECMP rehash: %v", s.errs)
		}
		if ok, err := hasAddr(n3.ns, "lo", l.vip); err != nil || ok {
			t.Errorf("stopped n3 still has the VIP on lo (%v)", err)
		}
	})

	watch.end()
	if len(watch.sawExtra) > 0 {
		t.Errorf("unfit n4 was a next hop: %v", watch.sawExtra)
	}

	t.Run("unfit daemon announces once fit", func(t *testing.T) {
		// The same n4 with only the reachable cluster: its absence above was its unfitness.
		if err := n4.stop(); err != nil {
			t.Fatal(err)
		}
		cfg := n4.eg.Config
		cfg.Clusters = cfg.Clusters[:1]
		cfg.Ingress.StartupGrace = harness.EdgegateConfig{}.Ingress.StartupGrace
		n4.write(t, cfg, filepath.Dir(n4.eg.ConfigPath))
		n4.restart(t)
		l.waitNextHops(t, 15*time.Second, fit[0], fit[1], n4)
	})

	t.Run("SIGKILL: router withdraws, cleanup removes the loopback VIP", func(t *testing.T) {
		n1 := fit[0]
		killAt := time.Now()
		if err := n1.kill(); err != nil {
			t.Fatal(err)
		}
		// The killed daemon could not remove its VIP from loopback: ExecStopPost must.
		if ok, err := hasAddr(n1.ns, "lo", l.vip); err != nil || !ok {
			t.Errorf("right after SIGKILL, n1's loopback VIP is gone (%v): nothing left for cleanup to prove", err)
		}
		l.waitNextHops(t, 15*time.Second, fit[1], n4)
		t.Logf("SIGKILL n1: next hop out of the router's FIB after %s (session closed by n1's kernel)", time.Since(killAt).Round(time.Millisecond))
		if err := n1.systemdStopPost(); err != nil {
			t.Fatal(err)
		}
		if ok, err := hasAddr(n1.ns, "lo", l.vip); err != nil || ok {
			t.Errorf("after edgegate cleanup the VIP is still on n1's loopback (%v)", err)
		}
		l.waitServed(t, 10*time.Second)
	})

	t.Run("no VIP and no route left after every daemon stopped", func(t *testing.T) {
		l.stopAll(t)
		if err := l.noVIPLeft(); err != nil {
			t.Error(err)
		}
		l.waitNextHops(t, 10*time.Second)
	})
}

// envoyListening: one of n's Envoys has a TCP socket listening on port 80 (read from its
// /proc/<pid>/net/tcp, which shows the sockets of the process's network namespace).
func (n *node) envoyListening() bool {
	for _, pid := range n.envoyAlive() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st ...: local "HEXIP:0050", state 0A = LISTEN.
			if len(f) > 3 && strings.HasSuffix(f[1], ":0050") && f[3] == "0A" {
				return true
			}
		}
	}
	return false
}

// pathVia reports whether the router's BGP table has a path for the VIP via n, and whether that
// path carries the graceful-shutdown community (an error counts as a plain path: only a successful
// read can show the path gone).
func (l *bgpLab) pathVia(n *node) (has, gshut bool) {
	paths, err := l.frr.BGPPaths(netip.PrefixFrom(l.vip, 32))
	if err != nil {
		return true, false
	}
	for _, p := range paths {
		for _, nh := range p.NextHops {
			if nh.IP == n.addr.String() {
				return true, p.Community != nil && strings.Contains(p.Community.String, "graceful-shutdown")
			}
		}
	}
	return false, false
}
