package edge

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/test/harness"
)

// L2 lab: one switched segment (a bridge in its own namespace) with the nodes and the client.
var (
	l2VIP     = netip.MustParseAddr("198.18.0.100")
	l2Client  = netip.MustParseAddr("198.18.0.2")
	l2Backend = netip.MustParseAddr("198.18.0.3")
)

func l2NodeAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}) }

// l2Lab builds the segment, the backend and the Ingress, and creates (but does not start) nodes
// n1..nN; the last one, when deadLast, watches a cluster that never answers and is the preferred
// owner of the VIP (weight 50), so it would take the VIP the moment it were fit.
func l2Lab(t *testing.T, nodes int, deadLast bool) *lab {
	l := newLab(t, l2VIP)
	sw := l.L.NS("sw")
	l.L.Must("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	l.L.Must("ip", "-n", sw, "link", "set", "br0", "up")
	attach := func(ns, name string, addrs ...netip.Addr) {
		port := "p" + name
		l.L.Veth(sw, port, ns, "eth0")
		l.L.Must("ip", "-n", sw, "link", "set", port, "master", "br0")
		for _, a := range addrs {
			l.L.Addr(ns, "eth0", netip.PrefixFrom(a, 24).String())
		}
	}
	l.client = l.L.NS("c")
	attach(l.client, "c", l2Client, l2Backend)
	l.serveBackend(l2Backend)

	var seeds []string
	for i := 1; i <= nodes; i++ {
		seeds = append(seeds, fmt.Sprintf("%q", netip.AddrPortFrom(l2NodeAddr(i), gossipPort).String()))
	}
	for i := 1; i <= nodes; i++ {
		n := l.addNode(fmt.Sprintf("n%d", i))
		n.addr = l2NodeAddr(i)
		attach(n.ns, n.name, n.addr)
		dir := filepath.Join(l.L.Dir, n.name)
		cfg := l.baseConfig(n, mkdir(t, dir))
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
l2Advertisements:
- metadata: {name: l2}
  spec:
    ipAddressPools: [public]
    preferredNodeSelectors:
    - weight: 50
      preference: {matchLabels: {edge.test/preferred: "yes"}}
`, n.addr, gossipPort, strings.Join(seeds, ", "), gossipSecret, l.L.Tag, l2VIP))
		if deadLast && i == nodes {
			cfg.Node.Labels["edge.test/preferred"] = "yes"
			l.withDeadCluster(&cfg, dir)
		}
		n.write(t, cfg, dir)
	}
	return l
}

// waitOwner waits until the VIP has settled and returns its owner: exactly one node holds it on
// eth0 and every running daemon's /status names that node as the owner (their gossip views agree).
// want, when not nil, must be that node.
func (l *lab) waitOwner(t *testing.T, timeout time.Duration, want *node) *node {
	t.Helper()
	var owner *node
	harness.Eventually(t, timeout, "the VIP settled on one owner", func() error {
		h, err := l.holders("eth0")
		if err != nil {
			return err
		}
		if len(h) != 1 {
			return fmt.Errorf("VIP %s held by %v, want exactly one node", l.vip, names(h))
		}
		if want != nil && h[0] != want {
			return fmt.Errorf("VIP %s held by %s, want %s", l.vip, h[0].name, want.name)
		}
		for _, n := range l.nodes {
			if !n.running() {
				continue
			}
			st, err := n.status()
			if err != nil {
				return err
			}
			if st.Edge.VIP == nil || len(st.Edge.VIP.VIPs) != 1 {
				return fmt.Errorf("%s: /status has no VIP: %+v", n.name, st.Edge.VIP)
			}
			v := st.Edge.VIP.VIPs[0]
			if v.Owner != h[0].name || v.Held != (n == h[0]) {
				return fmt.Errorf("%s holds the VIP but %s's view says owner %q, held %v", h[0].name, n.name, v.Owner, v.Held)
			}
		}
		owner = h[0]
		return nil
	})
	return owner
}

// watchNeverHolds samples, until stop is called, whether n ever holds the VIP on eth0.
func (l *lab) watchNeverHolds(n *node) (stop func() error) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var seen error
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			ok, err := hasAddr(n.ns, "eth0", l.vip)
			if err == nil && ok && seen == nil {
				seen = fmt.Errorf("unfit node %s held the VIP at %s", n.name, time.Now().Format("15:04:05.000"))
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() error { close(done); wg.Wait(); return seen }
}

func others(all []*node, n *node) []*node {
	var out []*node
	for _, x := range all {
		if x != n {
			out = append(out, x)
		}
	}
	return out
}

// TestL2 runs three daemons with gossip VIPs: n1 and n2 fit, n3 preferred but never configured.
func TestL2(t *testing.T) {
	l := l2Lab(t, 3, true)
	n3 := l.nodes[2]
	fit := l.nodes[:2]
	for _, n := range l.nodes {
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
	}
	neverN3 := l.watchNeverHolds(n3)
	for _, n := range fit {
		if err := n.waitReady(); err != nil {
			t.Fatal(err)
		}
	}
	owner := l.waitOwner(t, 30*time.Second, nil)
	l.waitServed(t, 30*time.Second)
	t.Logf("VIP %s owned by %s; served through it", l.vip, owner.name)

	t.Run("unfit node never takes the VIP", func(t *testing.T) {
		// n3 ranks first (weight 50) but has no complete configuration: every member sees it unfit,
		// and its own /readyz says why.
		harness.Eventually(t, 30*time.Second, "n3 unfit in every view", func() error {
			for _, n := range l.nodes {
				st, err := n.status()
				if err != nil {
					return err
				}
				if st.Edge.VIP == nil {
					return fmt.Errorf("%s: no vip status", n.name)
				}
				found := false
				for _, m := range st.Edge.VIP.Members {
					if m.Name == n3.name {
						found = true
						if m.Fit || !strings.Contains(m.Reason, "configuration") {
							return fmt.Errorf("%s sees %s fit=%v reason %q, want unfit waiting for configuration", n.name, n3.name, m.Fit, m.Reason)
						}
					}
				}
				if !found {
					return fmt.Errorf("%s does not see %s as a member", n.name, n3.name)
				}
			}
			return nil
		})
		if _, code, err := n3.get(nodeAdmin, "/readyz"); err != nil || code == 200 {
			t.Errorf("n3 /readyz = %d, %v; want 503", code, err)
		}
	})

	t.Run("owner whose Envoy stops answering hands the VIP over", func(t *testing.T) {
		// Fitness follows Envoy's readiness: a frozen Envoy (SIGSTOP) fails the daemon's /ready
		// probe, the node turns unfit and the other fit node takes the VIP (never unfit n3).
		owner := l.waitOwner(t, 30*time.Second, nil)
		next := others(fit, owner)[0]
		pids := owner.envoyAlive()
		if len(pids) != 1 {
			t.Fatalf("%s: envoy pids %v, want one", owner.name, pids)
		}
		if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		frozen := time.Now()
		defer syscall.Kill(pids[0], syscall.SIGCONT)
		l.waitOwner(t, 15*time.Second, next)
		t.Logf("Envoy of %s frozen: VIP on %s after %s", owner.name, next.name, time.Since(frozen).Round(time.Millisecond))
		st, err := owner.status()
		if err != nil {
			t.Fatal(err)
		}
		if st.Edge.VIP == nil || st.Edge.VIP.Fit || !strings.Contains(st.Edge.VIP.Reason, "envoy") {
			t.Errorf("%s with a frozen Envoy: vip status %+v, want unfit because of envoy", owner.name, st.Edge.VIP)
		}
		l.waitServed(t, 10*time.Second)
		if err := syscall.Kill(pids[0], syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		if err := owner.waitReady(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("graceful stop hands over without failed requests", func(t *testing.T) {
		owner := l.waitOwner(t, 30*time.Second, nil)
		next := others(fit, owner)[0]
		run := l.startLoad(loadOpts{count: 4000, interval: 5 * time.Millisecond, maxTime: 30 * time.Second,
			timeout: 2 * time.Second, retryReset: true})
		if err := run.waitOK(time.Time{}, 20, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		stopAt := time.Now()
		if err := owner.stop(); err != nil {
			t.Fatalf("SIGTERM %s: %v", owner.name, err)
		}
		stopped := time.Since(stopAt)
		t.Logf("%s exited %s after SIGTERM", owner.name, stopped.Round(time.Millisecond))
		l.waitOwner(t, 10*time.Second, next)
		out := run.stopAfter(time.Now(), 50, 20*time.Second)
		s := summarize(out)
		t.Logf("graceful stop of %s: %d requests, %d failed, %d retried once after a reset before any response byte",
			owner.name, s.sent, s.failed, s.retried)
		if s.failed > 0 {
			t.Errorf("%d of %d requests failed during the planned handoff: %v", s.failed, s.sent, s.errs)
		}
		if s.ok < 100 {
			t.Errorf("only %d successful requests: the loop did not cover the handoff", s.ok)
		}
		if ok, err := hasAddr(owner.ns, "eth0", l.vip); err != nil || ok {
			t.Errorf("stopped %s still has the VIP (%v)", owner.name, err)
		}
		// Back to two fit nodes for the next subtest.
		owner.restart(t)
	})

	t.Run("SIGKILL fails over; cleanup removes the stale VIP", func(t *testing.T) {
		owner := l.waitOwner(t, 30*time.Second, nil)
		survivor := others(fit, owner)[0]
		run := l.startLoad(loadOpts{count: 3000, interval: 10 * time.Millisecond, maxTime: 30 * time.Second,
			timeout: 300 * time.Millisecond})
		if err := run.waitOK(time.Time{}, 20, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		killAt := time.Now()
		if err := owner.kill(); err != nil {
			t.Fatal(err)
		}
		// A killed daemon cannot release its VIP: it stays on the interface until ExecStopPost.
		if ok, err := hasAddr(owner.ns, "eth0", l.vip); err != nil || !ok {
			t.Errorf("right after SIGKILL, %s's VIP is gone (%v): nothing left for cleanup to prove", owner.name, err)
		}
		// The supervised Envoy dies with its daemon (parent-death signal), as it would in a
		// unit whose KillMode leaves it behind.
		if err := harness.Poll(10*time.Second, func() error {
			if pids := owner.envoyAlive(); len(pids) > 0 {
				return fmt.Errorf("envoy %v of killed %s still runs", pids, owner.name)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
		if err := owner.systemdStopPost(); err != nil {
			t.Fatal(err)
		}
		for _, ifname := range []string{"eth0", "lo"} {
			if ok, err := hasAddr(owner.ns, ifname, l.vip); err != nil || ok {
				t.Errorf("after edgegate cleanup the VIP is still on %s of %s (%v)", ifname, owner.name, err)
			}
		}
		l.waitOwner(t, 10*time.Second, survivor)
		out := run.stopAfter(time.Now(), 50, 20*time.Second)
		s := summarize(out)
		firstFail, back, ok := interruption(out, killAt)
		if !ok {
			t.Fatalf("no successful request after the first failure following SIGKILL of %s: %v", owner.name, s.errs)
		}
		if firstFail.IsZero() {
			t.Logf("SIGKILL of %s: no failed request (%d sent)", owner.name, s.sent)
			return
		}
		gap := back.Sub(firstFail)
		t.Logf("SIGKILL of %s: interruption %s (first failed request to first success after it), SIGKILL to that success %s; %d requests, %d failed",
			owner.name, gap.Round(time.Millisecond), back.Sub(killAt).Round(time.Millisecond), s.sent, s.failed)
		// Generous sanity bound: memberlist declares a node dead in ~1 s (vip/README.md).
		if gap > 10*time.Second {
			t.Errorf("interruption %s after SIGKILL, want well under 10s", gap)
		}
	})

	if err := neverN3(); err != nil {
		t.Error(err)
	}

	t.Run("preferred node takes the VIP once fit", func(t *testing.T) {
		// The same n3 with a reachable cluster only: proves the preference would have given it the
		// VIP, so its absence above was its unfitness.
		if err := n3.stop(); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Dir(n3.eg.ConfigPath)
		cfg := n3.eg.Config
		cfg.Clusters = cfg.Clusters[:1]
		cfg.Ingress.StartupGrace = harness.EdgegateConfig{}.Ingress.StartupGrace
		n3.write(t, cfg, dir)
		n3.restart(t)
		l.waitOwner(t, 30*time.Second, n3)
		l.waitServed(t, 10*time.Second)
	})

	t.Run("no VIP left after every daemon stopped", func(t *testing.T) {
		l.stopAll(t)
		if err := l.noVIPLeft(); err != nil {
			t.Error(err)
		}
	})
}
