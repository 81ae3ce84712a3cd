package bgp

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiffPeers(t *testing.T) {
	a := PeerConfig{Name: "a", Address: netip.MustParseAddr("10.0.0.1"), PeerASN: 1}
	b := PeerConfig{Name: "b", Address: netip.MustParseAddr("10.0.0.2"), PeerASN: 1}
	b2 := b
	b2.HoldTime = 3e9
	c := PeerConfig{Name: "c", Address: netip.MustParseAddr("10.0.0.3"), PeerASN: 1}
	got := DiffPeers(
		map[netip.Addr]PeerConfig{a.Address: a, b.Address: b},
		map[netip.Addr]PeerConfig{b.Address: b2, c.Address: c},
	)
	want := PeerDiff{Add: []PeerConfig{c}, Update: []PeerConfig{b2}, Remove: []netip.Addr{a.Address}}
	if d := cmp.Diff(want, got, netipCmp); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if !DiffPeers(map[netip.Addr]PeerConfig{a.Address: a}, map[netip.Addr]PeerConfig{a.Address: a}).Empty() {
		t.Error("same peers: want empty diff")
	}
}

func TestDiffRoutes(t *testing.T) {
	lp := uint32(0)
	r1 := Route{Prefix: vipA}
	r2 := Route{Prefix: vipB}
	r2g := Route{Prefix: vipB, Communities: []uint32{GracefulShutdownCommunity}, LocalPref: &lp}
	got := DiffRoutes(map[netip.Prefix]Route{vipA: r1, vipB: r2}, map[netip.Prefix]Route{vipB: r2g, vip6: {Prefix: vip6}})
	want := RouteDiff{Announce: []Route{r2g, {Prefix: vip6}}, Withdraw: []netip.Prefix{vipA}}
	if d := cmp.Diff(want, got, netipCmp); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
