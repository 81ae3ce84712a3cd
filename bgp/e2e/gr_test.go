package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/bgp/internal/lab"
)

// frrGR is FRR's graceful-restart configuration (FRR 8.4): restarting-speaker mode for itself (it also
// helps by default) with the forwarding state preserved, so zebra keeps bgpd's kernel routes while bgpd
// restarts. select-defer-time stays at its default (360 s) on purpose: if our speaker did not send
// End-of-RIB after FRR restarted, FRR would defer best-path selection for minutes and the helper test
// would fail. stalepath-time bounds how long FRR waits for our End-of-RIB after we reconnect.
var frrGR = []string{
	"bgp graceful-restart",
	"bgp graceful-restart preserve-fw-state",
	"bgp graceful-restart stalepath-time 30",
}

// grTopo is one edge node whose service runs as its own process (`bgpspeaker serve`, standing in for
// Envoy), so the speaker can be killed while the node keeps serving, and FRR with graceful restart.
func grTopo(t *testing.T, gr bool, grTime string) *topo {
	tp := newTopo(t, 1)
	tp.FRR = tp.L.StartFRR(tp.R, frrConf(1, "", frrGR...))
	tp.L.StartServer("n1-serve", tp.Nodes[0], speakerBin, "n1", vipHTTP...)
	tp.startNode(1, nodeOpts{fit: true, gr: gr, grTime: grTime, noHTTP: true})
	if _, err := waitKernel(tp.R, vip4, addrs(nodeV4, 1), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := waitKernel(tp.R, vip6, addrs(nodeV6, 1), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return tp
}

// frrGRInfo is the part of FRR's `show bgp neighbors json` about graceful restart.
type frrGRInfo struct {
	State  string `json:"bgpState"`
	GRInfo struct {
		LocalGrMode  string          `json:"localGrMode"`
		RemoteGrMode string          `json:"remoteGrMode"`
		RBit         bool            `json:"rBit"`
		EORSend      map[string]bool `json:"endOfRibSend"`
		EORRecv      map[string]bool `json:"endOfRibRecv"`
	} `json:"gracefulRestartInfo"`
}

func grInfo(t *testing.T, f *lab.FRR, peer netip.Addr) frrGRInfo {
	t.Helper()
	b, err := f.VTY("show bgp neighbors " + peer.String() + " json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]frrGRInfo
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	return m[peer.String()]
}

// stale reports whether FRR's BGP table holds exactly one path for p from addr, and whether it is stale.
func stale(f *lab.FRR, p netip.Prefix, addr netip.Addr) (bool, error) {
	paths, err := f.BGPPaths(p)
	if err != nil {
		return false, err
	}
	if len(paths) != 1 || len(paths[0].NextHops) == 0 {
		return false, fmt.Errorf("%s: paths %+v, want one", p, paths)
	}
	if nh := paths[0].NextHops[0].IP; nh != addr.String() {
		return false, fmt.Errorf("%s: next hop %s, want %s", p, nh, addr)
	}
	return paths[0].Stale, nil
}

// kernelWatch samples the router's kernel route for vip4 every 10 ms and counts samples without addr.
type kernelWatch struct {
	stop    chan struct{}
	done    chan struct{}
	samples int
	missing int
	errs    int
}

func watchKernel(ns string, addr netip.Addr) *kernelWatch {
	w := &kernelWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			got, err := lab.KernelNextHops(ns, vip4)
			w.samples++
			switch {
			case err != nil:
				w.errs++
			case !slices.Contains(got, addr):
				w.missing++
			}
		}
	}()
	return w
}

func (w *kernelWatch) Stop() { close(w.stop); <-w.done }

// TestFRRGracefulRestart checks RFC 4724 against FRR 8.4: with enableGracefulRestart, a speaker that dies
// without a drain (SIGKILL, or Run returning without Drain) leaves its routes at the router as stale while
// the node keeps serving; a restarted speaker refreshes them (End-of-RIB); one that stays away loses them
// after gracefulRestartTime. Without graceful restart the route goes at once (the control). When FRR
// restarts, the speaker re-establishes and re-announces (helper mode means nothing more for us: edgegate
// imports no routes).
func TestFRRGracefulRestart(t *testing.T) {
	lab.Skip(t, lab.FRRBin+"/bgpd", "vtysh")
	t.Parallel()

	t.Run("SIGKILL keeps the route stale, a restart refreshes it", func(t *testing.T) {
		t.Parallel()
		const grTime = 15 * time.Second
		tp := grTopo(t, true, grTime.String())
		n1 := nodeV4(1)
		if gi := grInfo(t, tp.FRR, n1); gi.GRInfo.RemoteGrMode != "Restart" {
			t.Fatalf("FRR sees the speaker's GR mode %q (%+v), want Restart", gi.GRInfo.RemoteGrMode, gi)
		}
		kw := watchKernel(tp.R, n1)
		done := make(chan loadResult, 1)
		go func() { done <- load(t, tp.C, "http://198.19.0.10/", 100000, 2, 3*time.Second) }()
		time.Sleep(300 * time.Millisecond) // the loop runs before, during and after the kill
		killed := time.Now()
		if err := tp.Procs[0].Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		tp.Procs[0].Wait(5 * time.Second)
		if err := lab.Eventually(3*time.Second, func() error {
			for _, p := range []netip.Prefix{vip4, vip6} {
				nh := n1
				if p == vip6 {
					nh = nodeV6(1)
				}
				s, err := stale(tp.FRR, p, nh)
				if err != nil {
					return err
				}
				if !s {
					return fmt.Errorf("%s not stale yet", p)
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("after SIGKILL: %v", err)
		}
		t.Logf("stale in FRR's BGP table %v after SIGKILL", time.Since(killed))
		r := <-done
		t.Logf("client loop across the kill: %+v", r)
		if r.Failed != 0 || r.OK < 100 || r.Backends["n1"] != r.OK {
			t.Errorf("client loop across the kill: %+v, want every request answered by n1", r)
		}

		// The restarted speaker starts unfit, like edgegate before its first sync: the router must keep
		// the stale routes (no End-of-RIB yet) until the node is fit, then take the fresh ones.
		restarted := time.Now()
		cfg := tp.L.WriteFile("n1-restart.yaml", nodeYAML(1, nodeOpts{fit: false, gr: true, grTime: grTime.String(), drainWait: "2s", holdTime: "3s"}))
		p := tp.L.StartSpeaker("n1-restarted", tp.Nodes[0], speakerBin, cfg)
		time.Sleep(3 * time.Second) // a window for the session to come up (connect retry 1-2 s) and End-of-RIB to purge
		if s, err := stale(tp.FRR, vip4, n1); err != nil || !s {
			t.Errorf("restarted speaker, still unfit: stale %v, %v; want the stale route kept", s, err)
		}
		if _, err := p.Do("fit"); err != nil {
			t.Fatal(err)
		}
		fit := time.Now()
		if err := lab.Eventually(15*time.Second, func() error {
			for _, pfx := range []netip.Prefix{vip4, vip6} {
				nh := n1
				if pfx == vip6 {
					nh = nodeV6(1)
				}
				s, err := stale(tp.FRR, pfx, nh)
				if err != nil {
					return err
				}
				if s {
					return fmt.Errorf("%s still stale", pfx)
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("after restart: %v", err)
		}
		t.Logf("refreshed (no longer stale) %v after the restarted speaker became fit, %v after the restart, %v after the kill", time.Since(fit), time.Since(restarted), time.Since(killed))
		gi := grInfo(t, tp.FRR, n1)
		if gi.State != "Established" || !gi.GRInfo.EORRecv["ipv4Unicast"] || !gi.GRInfo.EORRecv["ipv6Unicast"] || !gi.GRInfo.RBit {
			t.Errorf("after restart FRR reports %+v: want Established, End-of-RIB received for both families, R bit", gi)
		}
		// Past the restart time the route is still there: it was refreshed, not left to the stale timer.
		time.Sleep(time.Until(killed.Add(grTime + 2*time.Second)))
		kw.Stop()
		if kw.missing != 0 || kw.errs != 0 || kw.samples < 100 {
			t.Errorf("router kernel route: %d of %d samples without n1 (%d errors) from the kill to past the restart time, want none", kw.missing, kw.samples, kw.errs)
		}
		if s, err := stale(tp.FRR, vip4, n1); err != nil || s {
			t.Errorf("past the restart time: stale %v, %v", s, err)
		}
		st, err := p.Status()
		if err != nil || len(st.Peers) != 1 || st.Peers[0].State != "established" || st.Peers[0].RoutesAdvertised != 2 {
			t.Errorf("restarted speaker status %+v, %v: want one established peer with 2 routes", st, err)
		}
	})

	t.Run("speaker that stays away loses its routes after the restart time", func(t *testing.T) {
		t.Parallel()
		const grTime = 5 * time.Second
		tp := grTopo(t, true, grTime.String())
		// The other undrained path: Run returns without Drain and the process exits.
		stopped := time.Now()
		if _, err := tp.Procs[0].Do("exit"); err != nil {
			t.Fatal(err)
		}
		if err := tp.Procs[0].Wait(5 * time.Second); err != nil {
			t.Fatalf("exit: %v", err)
		}
		if err := lab.Eventually(3*time.Second, func() error {
			s, err := stale(tp.FRR, vip4, nodeV4(1))
			if err == nil && !s {
				err = fmt.Errorf("not stale")
			}
			return err
		}); err != nil {
			t.Fatalf("after exit without drain: %v", err)
		}
		r := load(t, tp.C, "http://198.19.0.10/", 200, 2, 2*time.Second)
		if r.Failed != 0 || r.OK != 200 {
			t.Errorf("while stale: %+v, want 200 ok", r)
		}
		d := waitGone(t, tp.R, vip4, nodeV4(1), stopped, grTime+10*time.Second)
		t.Logf("exit without drain -> route removed from the router's kernel after %v (gracefulRestartTime %v)", d, grTime)
		if d < grTime-time.Second {
			t.Errorf("route removed after %v, before the restart time %v", d, grTime)
		}
	})

	t.Run("without graceful restart SIGKILL removes the route at once", func(t *testing.T) {
		t.Parallel()
		tp := grTopo(t, false, "")
		if gi := grInfo(t, tp.FRR, nodeV4(1)); gi.GRInfo.RemoteGrMode == "Restart" {
			t.Fatalf("FRR sees GR from a speaker without it: %+v", gi)
		}
		killed := time.Now()
		if err := tp.Procs[0].Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		d := waitGone(t, tp.R, vip4, nodeV4(1), killed, 5*time.Second)
		t.Logf("SIGKILL without GR -> route removed from the router's kernel after %v", d)
		if d > 2*time.Second {
			t.Errorf("route removed only after %v: something kept it", d)
		}
	})

	t.Run("FRR restart: the speaker re-announces", func(t *testing.T) {
		t.Parallel()
		tp := grTopo(t, true, "10s")
		killed := time.Now()
		if err := tp.FRR.KillDaemon("bgpd"); err != nil {
			t.Fatal(err)
		}
		if err := lab.Eventually(5*time.Second, func() error {
			st, err := tp.Procs[0].Status()
			if err != nil {
				return err
			}
			if len(st.Peers) != 1 || st.Peers[0].State == "established" {
				return fmt.Errorf("speaker still reports %+v", st.Peers)
			}
			return nil
		}); err != nil {
			t.Fatalf("bgpd killed: %v", err)
		}
		nh, _ := lab.KernelNextHops(tp.R, vip4)
		t.Logf("bgpd down %v: kernel next hops %v (zebra keeps them with preserve-fw-state)", time.Since(killed), nh)
		restarted := time.Now()
		if err := tp.FRR.StartDaemon("bgpd"); err != nil {
			t.Fatal(err)
		}
		if err := lab.Eventually(20*time.Second, func() error {
			s, err := stale(tp.FRR, vip4, nodeV4(1))
			if err != nil {
				return err
			}
			if s {
				return fmt.Errorf("stale")
			}
			return nil
		}); err != nil {
			t.Fatalf("after bgpd restart: %v", err)
		}
		back := time.Since(restarted)
		t.Logf("bgpd restarted -> route back in FRR's BGP table after %v", back)
		// GoBGP alone holds a lost session idle for 5 s, then connects within 1-2 s; the speaker re-adds
		// the peer after idleHoldTimeAfterReset (1 s) instead. A sanity bound that catches the 5 s hold.
		if back > 5*time.Second {
			t.Errorf("route back only %v after bgpd restarted: the speaker waited in idle", back)
		}
		if _, err := waitKernel(tp.R, vip4, addrs(nodeV4, 1), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := waitKernel(tp.R, vip6, addrs(nodeV6, 1), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("bgpd restarted -> route in the router's kernel after %v", time.Since(restarted))
		gi := grInfo(t, tp.FRR, nodeV4(1))
		if !gi.GRInfo.EORRecv["ipv4Unicast"] {
			t.Errorf("FRR got no End-of-RIB from the speaker after its restart: %+v", gi)
		}
		r := load(t, tp.C, "http://198.19.0.10/", 200, 2, 5*time.Second)
		if r.Failed != 0 || r.OK != 200 {
			t.Errorf("after FRR restart: %+v", r)
		}
	})
}
