package bgp

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readFiles(files map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
}

var (
	vipA = netip.MustParsePrefix("198.19.0.10/32")
	vipB = netip.MustParsePrefix("198.19.0.11/32")
	vip6 = netip.MustParsePrefix("fd00:99::10/128")
	tor  = netip.MustParseAddr("198.18.1.1")
	tor2 = netip.MustParseAddr("198.18.1.2")
)

func TestPlanBase(t *testing.T) {
	cfg := decode(t, baseYAML).WithDefaults()
	d, err := Plan(cfg, Inputs{
		Node: Node{Name: "n1"}, Announce: true, ReadFile: readFiles(map[string]string{"/etc/edgegate/tor.pw": "s3cret\n"}),
		VIPs: append(VIPsFromAddrs("pool", vipA.Addr()), VIP{Prefix: vip6}),
	})
	if err != nil {
		t.Fatal(err)
	}
	lp := uint32(200)
	want := Desired{
		Peers: map[netip.Addr]PeerConfig{tor: {
			Name: "tor", Address: tor, Port: 179, PeerASN: 64512, LocalASN: 4200000001,
			HoldTime: 3e9, KeepaliveTime: 1e9, ConnectRetry: DefaultConnectTime, IdleHoldTime: DefaultIdleHoldTimeAfterReset,
			Password: "s3cret", TTLSecurityHops: 1, IPv4: true, IPv6: true,
		}},
		Routes: map[netip.Prefix]Route{
			vipA: {Prefix: vipA, Communities: []uint32{64512<<16 | 100, 65000<<16 | 1}, LargeCommunities: []LargeCommunity{{4200000001, 1, 2}}, LocalPref: &lp},
			vip6: {Prefix: vip6, NextHop: netip.MustParseAddr("fd00:1::11"), Communities: []uint32{64512<<16 | 100, 65000<<16 | 1}, LargeCommunities: []LargeCommunity{{4200000001, 1, 2}}, LocalPref: &lp},
		},
		Export: map[netip.Addr][]netip.Prefix{tor: {vipA, vip6}},
	}
	if diff := cmp.Diff(want, d, netipCmp); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func TestPlanDrainingAndUnfit(t *testing.T) {
	cfg := decode(t, baseYAML).WithDefaults()
	in := Inputs{Node: Node{Name: "n1"}, Announce: true, Draining: true, VIPs: VIPsFromAddrs("", vipA.Addr()),
		ReadFile: readFiles(map[string]string{"/etc/edgegate/tor.pw": "x"})}
	d, _ := Plan(cfg, in)
	r := d.Routes[vipA]
	if !strings.Contains(formatAll(r.Communities), "65535:0") || r.LocalPref == nil || *r.LocalPref != 0 {
		t.Errorf("draining route %+v: want 65535:0 and local-pref 0", r)
	}
	in.Announce = false
	d, _ = Plan(cfg, in)
	if len(d.Routes) != 0 || len(d.Export[tor]) != 1 {
		t.Errorf("unfit: routes %v export %v, want no routes but the export kept", d.Routes, d.Export)
	}
}

func formatAll(cs []uint32) string {
	var s []string
	for _, c := range cs {
		s = append(s, formatStandard(c))
	}
	return strings.Join(s, ",")
}

const selectorsYAML = `
routerID: 10.0.0.1
asn: 65001
peers:
- metadata: {name: tor1}
  spec: {peerASN: 65000, peerAddress: 198.18.1.1, nodeSelectors: [{matchLabels: {rack: r1}}]}
- metadata: {name: tor2}
  spec: {peerASN: 65000, peerAddress: 198.18.1.2}
advertisements:
- metadata: {name: public-to-tor2}
  spec: {ipAddressPools: [public], peers: [tor2], aggregationLength: 24}
- metadata: {name: labelled-everywhere}
  spec:
    ipAddressPoolSelectors: [{matchLabels: {tier: gold}}]
    nodeSelectors: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [n1]}]}]
`

func TestPlanSelectors(t *testing.T) {
	cfg := decode(t, selectorsYAML).WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	vips := []VIP{
		{Prefix: vipA, Pool: "public"},
		{Prefix: vipB, Pool: "gold", PoolLabels: map[string]string{"tier": "gold"}},
		{Prefix: netip.MustParsePrefix("198.19.1.1/32"), Pool: "other"},
	}
	tests := []struct {
		name   string
		node   Node
		export map[netip.Addr][]netip.Prefix
	}{
		{"n1 in rack r1: both peers, gold by hostname", Node{Name: "n1", Labels: map[string]string{"rack": "r1"}},
			map[netip.Addr][]netip.Prefix{tor: {vipB}, tor2: {netip.MustParsePrefix("198.19.0.0/24"), vipB}}},
		{"n2 elsewhere: only tor2, no gold", Node{Name: "n2", Labels: map[string]string{"rack": "r2"}},
			map[netip.Addr][]netip.Prefix{tor2: {netip.MustParsePrefix("198.19.0.0/24")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Plan(cfg, Inputs{Node: tt.node, VIPs: vips, Announce: true})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.export, d.Export, netipCmp); diff != "" {
				t.Errorf("export (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanReportsConflictsAndMissingPassword(t *testing.T) {
	cfg := decode(t, baseYAML+`- metadata: {name: b}
  spec: {localPref: 300}
`).WithDefaults()
	d, err := Plan(cfg, Inputs{Node: Node{Name: "n"}, Announce: true, VIPs: VIPsFromAddrs("", vipA.Addr()), ReadFile: readFiles(nil)})
	if !errors.Is(err, ErrPlan) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want ErrPlan wrapping the missing password file", err)
	}
	if len(d.Peers) != 0 {
		t.Errorf("peer without its password file planned: %v", d.Peers)
	}
	d, err = Plan(cfg, Inputs{Node: Node{Name: "n"}, Announce: true, VIPs: VIPsFromAddrs("", vipA.Addr()),
		ReadFile: readFiles(map[string]string{"/etc/edgegate/tor.pw": "x"})})
	if !errors.Is(err, errAttrConflict) {
		t.Errorf("got %v, want a localPref conflict", err)
	}
	if lp := d.Routes[vipA].LocalPref; lp == nil || *lp != 200 {
		t.Errorf("conflict: local pref %v, want the first (200) kept", lp)
	}
}

func TestParseCommunity(t *testing.T) {
	tests := map[string]struct {
		want community
		ok   bool
	}{
		"65535:0":      {community{standard: 0xFFFF0000}, true},
		"large:1:2:3":  {community{large: true, lc: LargeCommunity{1, 2, 3}}, true},
		"65536:0":      {community{}, false},
		"1:2:3":        {community{}, false},
		"large:1:2":    {community{}, false},
		"large:1:2:-3": {community{}, false},
		"no-export":    {community{}, false},
	}
	for in, tt := range tests {
		got, err := parseCommunity(in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseCommunity(%q) = %+v, %v; want %+v ok=%v", in, got, err, tt.want, tt.ok)
		}
	}
}
