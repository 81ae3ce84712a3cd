package bgp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

const twoPeersYAML = `
routerID: 10.0.0.1
asn: 65001
drainWait: 3s
peers:
- metadata: {name: tor1}
  spec: {peerASN: 65000, peerAddress: 198.18.1.1}
- metadata: {name: tor2}
  spec: {peerASN: 65000, peerAddress: 198.18.1.2}
`

type harness struct {
	c   *Component
	sp  *FakeSpeaker
	reg *prometheus.Registry
	err chan error
}

func start(t *testing.T, ctx context.Context, cfgYAML string) *harness {
	t.Helper()
	sp := NewFakeSpeaker()
	reg := prometheus.NewRegistry()
	c, err := New(decode(t, cfgYAML), Node{Name: "n1"}, sp, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{c: c, sp: sp, reg: reg, err: make(chan error, 1)}
	go func() { h.err <- c.Run(ctx) }()
	return h
}

func routeSet(sp *FakeSpeaker) []string {
	var out []string
	for p, r := range sp.Routes() {
		s := p.String()
		if slices.Contains(r.Communities, GracefulShutdownCommunity) {
			s += " gshut"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestComponentFitnessGatesAnnouncements(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		h := start(t, ctx, twoPeersYAML)
		h.c.SetVIPs(VIPsFromAddrs("", vipA.Addr(), vip6.Addr()))
		synctest.Wait()
		if got := routeSet(h.sp); len(got) != 0 {
			t.Fatalf("announced %v before the first fitness report", got)
		}
		h.c.SetFitness(true, "envoy ready")
		synctest.Wait()
		// vip6 has no IPv6 session (IPv4 peers without dualStackAddressFamily): not announced.
		if d := cmp.Diff([]string{"198.19.0.10/32"}, routeSet(h.sp)); d != "" {
			t.Errorf("fit (-want +got):\n%s", d)
		}
		h.sp.Calls()
		start := time.Now()
		h.c.SetFitness(false, "envoy not ready")
		synctest.Wait()
		if len(routeSet(h.sp)) != 0 || time.Since(start) != 0 {
			t.Errorf("unfit: routes %v after %v, want withdrawn at once", routeSet(h.sp), time.Since(start))
		}
		if d := cmp.Diff([]string{"Withdraw 198.19.0.10/32"}, h.sp.Calls()); d != "" {
			t.Errorf("unfit calls (-want +got):\n%s", d)
		}
		if v := metricValue(h.c.m.fit); v != 0 {
			t.Errorf("edgegate_bgp_fit = %v, want 0", v)
		}
		cancel()
		if err := <-h.err; err != nil {
			t.Errorf("Run: %v", err)
		}
		if !slices.Contains(h.sp.Calls(), "Stop") {
			t.Error("speaker not stopped on shutdown without graceful restart")
		}
	})
}

func TestComponentDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, t.Context(), twoPeersYAML)
		h.c.SetVIPs(VIPsFromAddrs("", vipA.Addr()))
		h.c.SetFitness(true, "ok")
		synctest.Wait()
		begin := time.Now()
		drained := make(chan error, 1)
		go func() { drained <- h.c.Drain(t.Context()) }()
		synctest.Wait()
		if d := cmp.Diff([]string{"198.19.0.10/32 gshut"}, routeSet(h.sp)); d != "" {
			t.Errorf("draining (-want +got):\n%s", d)
		}
		if lp := h.sp.Routes()[vipA].LocalPref; lp == nil || *lp != 0 {
			t.Errorf("draining local pref %v, want 0", lp)
		}
		if err := <-drained; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(begin); d != 3*time.Second {
			t.Errorf("drain took %v, want drainWait 3s", d)
		}
		if len(routeSet(h.sp)) != 0 {
			t.Errorf("after drain: %v, want nothing announced", routeSet(h.sp))
		}
		h.c.SetFitness(true, "still fit")
		synctest.Wait()
		if len(routeSet(h.sp)) != 0 {
			t.Error("drained node re-announced on a fitness report")
		}
		if err := h.c.Drain(t.Context()); err != nil {
			t.Errorf("second drain: %v", err)
		}
		st, _ := h.c.Status(t.Context())
		if st.Phase != PhaseDrained {
			t.Errorf("phase %s, want drained", st.Phase)
		}
	})
}

func TestComponentReconfigurePartialFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		oneYAML := strings.SplitN(twoPeersYAML, "- metadata: {name: tor2}", 2)[0]
		h := start(t, t.Context(), oneYAML)
		h.c.SetVIPs(VIPsFromAddrs("", vipA.Addr()))
		h.c.SetFitness(true, "ok")
		synctest.Wait()
		h.sp.FailOn("AddPeer 198.18.1.2", false)
		err := h.c.Reconfigure(t.Context(), decode(t, twoPeersYAML))
		if !errors.Is(err, ErrFake) || !strings.Contains(err.Error(), "198.18.1.2") {
			t.Fatalf("got %v, want the failed add of 198.18.1.2", err)
		}
		if _, ok := h.sp.PeerConfigs()[tor2]; ok {
			t.Fatal("failed peer recorded as added")
		}
		if got := h.sp.Export()[tor]; !slices.Equal(got, []netip.Prefix{vipA}) {
			t.Errorf("working peer export %v, want %v", got, vipA)
		}
		if v := metricValue(h.c.m.applyErrors.WithLabelValues("add_peer")); v != 1 {
			t.Errorf("apply errors = %v, want 1", v)
		}
		h.sp.FailOn("AddPeer 198.18.1.2", true)
		time.Sleep(retryInterval)
		synctest.Wait()
		if _, ok := h.sp.PeerConfigs()[tor2]; !ok {
			t.Error("failed peer not retried")
		}
		if got := h.sp.Export()[tor2]; !slices.Equal(got, []netip.Prefix{vipA}) {
			t.Errorf("retried peer export %v, want %v", got, vipA)
		}

		// Invalid config: rejected, nothing changes.
		bad := decode(t, twoPeersYAML)
		bad.Peers[1].Spec.BFDProfile = "fast"
		h.sp.Calls()
		if err := h.c.Reconfigure(t.Context(), bad); !errors.Is(err, ErrUnsupported) {
			t.Errorf("got %v, want ErrUnsupported", err)
		}
		if calls := h.sp.Calls(); len(calls) != 0 {
			t.Errorf("invalid config touched the speaker: %v", calls)
		}

		// Removing a peer deletes it and keeps announcing to the other.
		if err := h.c.Reconfigure(t.Context(), decode(t, oneYAML)); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"DeletePeer 198.18.1.2", "SetExport"}, h.sp.Calls()); d != "" {
			t.Errorf("remove peer calls (-want +got):\n%s", d)
		}
	})
}

func TestComponentPeerLosesPrefixIsReannounced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, t.Context(), twoPeersYAML)
		h.c.SetVIPs(VIPsFromAddrs("", vipA.Addr()))
		h.c.SetFitness(true, "ok")
		synctest.Wait()
		h.sp.Calls()
		only1 := decode(t, twoPeersYAML+"advertisements:\n- metadata: {name: a}\n  spec: {peers: [tor1]}\n")
		if err := h.c.Reconfigure(t.Context(), only1); err != nil {
			t.Fatal(err)
		}
		// GoBGP does not withdraw a path its new export policy rejects: withdraw, swap, re-announce.
		want := []string{"Withdraw 198.19.0.10/32", "SetExport", "Announce 198.19.0.10/32"}
		if d := cmp.Diff(want, h.sp.Calls()); d != "" {
			t.Errorf("calls (-want +got):\n%s", d)
		}
		if d := cmp.Diff(map[netip.Addr][]netip.Prefix{tor: {vipA}}, h.sp.Export(), netipCmp); d != "" {
			t.Errorf("export (-want +got):\n%s", d)
		}
	})
}

func TestComponentSessionMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, t.Context(), twoPeersYAML)
		synctest.Wait()
		h.sp.Emit(PeerEvent{Address: tor, State: StateEstablished})
		h.sp.Emit(PeerEvent{Address: tor, State: StateIdle})
		h.sp.Emit(PeerEvent{Address: tor, State: StateEstablished})
		if v := metricValue(h.c.m.stateChanges.WithLabelValues(tor.String(), "established")); v != 2 {
			t.Errorf("state changes = %v, want 2", v)
		}
		if v := metricValue(h.c.m.sessionUp.WithLabelValues(tor.String())); v != 1 {
			t.Errorf("session up = %v, want 1", v)
		}
	})
}

const grPeerYAML = `
routerID: 10.0.0.1
asn: 65001
gracefulRestartTime: 30s
peers:
- metadata: {name: tor1}
  spec: {peerASN: 65000, peerAddress: 198.18.1.1, enableGracefulRestart: true}
- metadata: {name: tor2}
  spec: {peerASN: 65000, peerAddress: 198.18.1.2}
`

func peerNames(sp *FakeSpeaker) []string {
	var out []string
	for _, p := range sp.PeerConfigs() {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// A restarted edgegate is unfit until its first sync: graceful-restart peers wait for fitness (bounded by
// the restart time), so routers keep the stale routes instead of taking an empty End-of-RIB.
func TestComponentHoldsGracefulRestartPeersUntilFit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		h := start(t, ctx, grPeerYAML)
		h.c.SetVIPs(VIPsFromAddrs("", vipA.Addr()))
		synctest.Wait()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if d := cmp.Diff([]string{"tor2"}, peerNames(h.sp)); d != "" {
			t.Errorf("unfit, 20 s after start (-want +got):\n%s", d)
		}
		h.c.SetFitness(true, "synced")
		synctest.Wait()
		if d := cmp.Diff([]string{"tor1", "tor2"}, peerNames(h.sp)); d != "" {
			t.Errorf("fit (-want +got):\n%s", d)
		}
		if got := h.sp.Export()[netip.MustParseAddr("198.18.1.1")]; !slices.Equal(got, []netip.Prefix{vipA}) {
			t.Errorf("export to tor1 once fit: %v, want %v", got, vipA)
		}
		// Unfit again later: the peer stays (it is only held before the first fitness).
		h.c.SetFitness(false, "envoy not ready")
		synctest.Wait()
		if d := cmp.Diff([]string{"tor1", "tor2"}, peerNames(h.sp)); d != "" {
			t.Errorf("unfit after fit (-want +got):\n%s", d)
		}
	})
}

func TestComponentAddsGracefulRestartPeersAfterRestartTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		h := start(t, ctx, grPeerYAML)
		synctest.Wait()
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if d := cmp.Diff([]string{"tor2"}, peerNames(h.sp)); d != "" {
			t.Errorf("29 s, never fit (-want +got):\n%s", d)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if d := cmp.Diff([]string{"tor1", "tor2"}, peerNames(h.sp)); d != "" {
			t.Errorf("restart time over, never fit (-want +got):\n%s", d)
		}
	})
}
