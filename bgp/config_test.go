package bgp

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

const baseYAML = `
routerID: 198.18.1.11
asn: 4200000001
nextHopIPv6: "fd00:1::11"
peers:
- metadata: {name: tor}
  spec:
    myASN: 4200000001
    peerASN: 64512
    peerAddress: 198.18.1.1
    holdTime: 3s
    keepaliveTime: 1s
    dualStackAddressFamily: true
peerOptions:
- {peer: tor, passwordFile: /etc/edgegate/tor.pw, ttlSecurityHops: 1}
communities:
- metadata: {name: c}
  spec:
    communities:
    - {name: edge, value: "64512:100"}
    - {name: big, value: "large:4200000001:1:2"}
advertisements:
- metadata: {name: a}
  spec:
    communities: [edge, big, "65000:1"]
    localPref: 200
    aggregationLength: 32
`

func decode(t *testing.T, s string) Config {
	t.Helper()
	var c Config
	if err := yaml.UnmarshalStrict([]byte(s), &c); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return c
}

func TestDecodeStrictRejectsUnknownKeys(t *testing.T) {
	var c Config
	err := yaml.UnmarshalStrict([]byte("routerID: 1.2.3.4\nasn: 1\nbogus: 1\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("got %v, want an unknown field error naming bogus", err)
	}
}

func TestDefaults(t *testing.T) {
	c := decode(t, "routerID: 1.2.3.4\nasn: 65001\npeers:\n- metadata: {name: p}\n  spec: {peerASN: 65000, peerAddress: 10.0.0.1}\n").WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaulted config invalid: %v", err)
	}
	s := c.Peers[0].Spec
	got := []any{*c.ListenPort, s.MyASN, s.Port, s.HoldTime.Duration, s.KeepaliveTime.Duration, s.ConnectTime.Duration, c.DrainWait.Duration}
	want := []any{int32(-1), uint32(65001), uint16(179), DefaultHoldTime, DefaultHoldTime / 3, DefaultConnectTime, DefaultDrainWait}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}

func TestValidate(t *testing.T) {
	if err := decode(t, baseYAML).WithDefaults().Validate(); err != nil {
		t.Fatalf("base config: %v", err)
	}
	tests := []struct {
		name     string
		from, to string // replaced in baseYAML
		path     string
		sentinel error
	}{
		{"router id missing", "routerID: 198.18.1.11", "routerID: ''", "bgp.routerID", ErrRequired},
		{"router id ipv6", "routerID: 198.18.1.11", "routerID: 'fd00::1'", "bgp.routerID", ErrInvalid},
		{"asn zero", "asn: 4200000001\n", "asn: 0\n", "bgp.asn", ErrRequired},
		{"asn reserved", "asn: 4200000001\n", "asn: 4294967295\n", "bgp.asn", ErrInvalid},
		{"as_trans", "peerASN: 64512", "peerASN: 23456", "bgp.peers[0].spec.peerASN", ErrInvalid},
		{"peer address", "peerAddress: 198.18.1.1", "peerAddress: 198.18.1", "bgp.peers[0].spec.peerAddress", ErrInvalid},
		{"source family", "dualStackAddressFamily: true", "dualStackAddressFamily: true\n    sourceAddress: 'fd00::1'", "bgp.peers[0].spec.sourceAddress", ErrConflict},
		{"hold too short", "holdTime: 3s", "holdTime: 2s", "bgp.peers[0].spec.holdTime", ErrInvalid},
		{"keepalive above hold", "keepaliveTime: 1s", "keepaliveTime: 5s", "bgp.peers[0].spec.keepaliveTime", ErrInvalid},
		{"connect time fraction", "keepaliveTime: 1s", "keepaliveTime: 1s\n    connectTime: 1500ms", "bgp.peers[0].spec.connectTime", ErrInvalid},
		{"bfd", "keepaliveTime: 1s", "keepaliveTime: 1s\n    bfdProfile: fast", "bgp.peers[0].spec.bfdProfile", ErrUnsupported},
		{"password secret", "keepaliveTime: 1s", "keepaliveTime: 1s\n    passwordSecret: {name: s}", "bgp.peers[0].spec.passwordSecret", ErrUnsupported},
		{"gtsm with multihop", "keepaliveTime: 1s", "keepaliveTime: 1s\n    ebgpMultiHop: true", "bgp.peerOptions[0].ttlSecurityHops", ErrConflict},
		{"password file relative", "/etc/edgegate/tor.pw", "tor.pw", "bgp.peerOptions[0].passwordFile", ErrInvalid},
		{"options for unknown peer", "peer: tor,", "peer: nope,", "bgp.peerOptions[0].peer", ErrUnknownRef},
		{"per-peer router id", "keepaliveTime: 1s", "keepaliveTime: 1s\n    routerID: 1.1.1.1", "bgp.peers[0].spec.routerID", ErrUnsupported},
		{"dual stack needs v6 next hop", `nextHopIPv6: "fd00:1::11"`, "", "bgp.peers[0].spec.dualStackAddressFamily", ErrRequired},
		{"link-local next hop", `nextHopIPv6: "fd00:1::11"`, `nextHopIPv6: "fe80::1"`, "bgp.nextHopIPv6", ErrInvalid},
		{"node selector", "keepaliveTime: 1s", "keepaliveTime: 1s\n    nodeSelectors: [{matchExpressions: [{key: a, operator: Bogus}]}]", "bgp.peers[0].spec.nodeSelectors[0]", ErrInvalid},
		{"unknown alias", "[edge, big,", "[edgy, big,", "bgp.advertisements[0].spec.communities[0]", ErrUnknownRef},
		{"bad community value", `value: "64512:100"`, `value: "64512:70000"`, "bgp.communities[0].spec.communities[0].value", ErrInvalid},
		{"aggregation", "aggregationLength: 32", "aggregationLength: 33", "bgp.advertisements[0].spec.aggregationLength", ErrInvalid},
		{"aggregation v6", "aggregationLength: 32", "aggregationLengthV6: 129", "bgp.advertisements[0].spec.aggregationLengthV6", ErrInvalid},
		{"unknown peer in adv", "localPref: 200", "localPref: 200\n    peers: [nope]", "bgp.advertisements[0].spec.peers[0]", ErrUnknownRef},
		{"service selectors", "localPref: 200", "localPref: 200\n    serviceSelectors: [{matchLabels: {a: b}}]", "bgp.advertisements[0].spec.serviceSelectors", ErrUnsupported},
		{"listen port", "asn: 4200000001\n", "asn: 4200000001\nlistenPort: 0\n", "bgp.listenPort", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(baseYAML, tt.from) {
				t.Fatalf("test bug: %q not in base", tt.from)
			}
			err := decode(t, strings.Replace(baseYAML, tt.from, tt.to, 1)).WithDefaults().Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FieldError", err)
			}
			var paths []string
			found := false
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				errors.As(e, &fe)
				paths = append(paths, fe.Path)
				if fe.Path == tt.path && errors.Is(e, tt.sentinel) {
					found = true
				}
			}
			if !found {
				t.Errorf("got %v (paths %v), want %s with %v", err, paths, tt.path, tt.sentinel)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := decode(t, "routerID: ''\nasn: 0\npeers:\n- metadata: {name: p}\n  spec: {peerAddress: x, bfdProfile: b}\n").WithDefaults()
	err := c.Validate()
	n := len(err.(interface{ Unwrap() []error }).Unwrap())
	if n < 5 { // routerID, asn, myASN, peerASN, peerAddress, bfdProfile
		t.Errorf("got %d problems (%v), want all of them", n, err)
	}
}

func TestWarnings(t *testing.T) {
	c := decode(t, strings.Replace(baseYAML, "keepaliveTime: 1s", "keepaliveTime: 1s\n    password: inline", 1))
	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "passwordFile is used") {
		t.Errorf("got %q, want one warning that the file wins", w)
	}
	c.PeerOptions = nil
	w = c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "prefer peerOptions passwordFile") {
		t.Errorf("got %q, want one warning about the inline password", w)
	}
}
