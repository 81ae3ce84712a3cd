package vip

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/vip/membership"
	"github.com/edgegate/edgegate/vip/pool"
	"sigs.k8s.io/yaml"
)

// appliance mimics how the appliance embeds the component's configuration.
type appliance struct {
	VIP Config `json:"vip"`
}

const validYAML = `
vip:
  memberlist:
    bindAddress: 198.18.0.11
    seeds: ["198.18.0.11:7946", "198.18.0.12:7946"]
    secret: a-secret-of-enough-length
  interfaces: [eth0]
  ipAddressPools:
  - apiVersion: metallb.io/v1beta1
    kind: IPAddressPool
    metadata: {name: public, namespace: metallb-system, labels: {tier: edge}}
    spec:
      addresses: [198.18.0.0/30, "198.18.0.10-198.18.0.11", "fd00::10/127"]
      avoidBuggyIPs: true
  l2Advertisements:
  - apiVersion: metallb.io/v1beta1
    kind: L2Advertisement
    metadata: {name: l2, namespace: metallb-system}
    spec:
      ipAddressPoolSelectors: [{matchLabels: {tier: edge}}]
      nodeSelectors: [{matchLabels: {role: edge}}]
      preferredNodeSelectors: [{weight: 50, preference: {matchLabels: {zone: a}}}]
`

func decode(t *testing.T, s string) (Config, error) {
	t.Helper()
	var a appliance
	if err := yaml.UnmarshalStrict([]byte(s), &a); err != nil {
		return Config{}, err
	}
	c := a.VIP.WithDefaults()
	return c, c.Validate()
}

func TestConfigValidAndDefaults(t *testing.T) {
	c, err := decode(t, validYAML)
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if got := c.Memberlist.Timings.ProbeInterval.Duration; got != 100*time.Millisecond {
		t.Errorf("probeInterval default %v, want 100ms", got)
	}
	if c.Memberlist.AdvertiseAddress != "198.18.0.11" || c.Memberlist.BindPort != 7946 || c.ARPSysctls != SysctlSet {
		t.Errorf("defaults not applied: %+v", c)
	}
	set, err := pool.Expand(c.IPAddressPools, c.L2Advertisements, c.Interfaces, "vip")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range set.VIPs {
		got = append(got, v.Addr.String())
	}
	// 198.18.0.0/30 minus .0 (avoidBuggyIPs), the range, and a /127.
	want := "198.18.0.1 198.18.0.2 198.18.0.3 198.18.0.10 198.18.0.11 fd00::10 fd00::11"
	if strings.Join(got, " ") != want {
		t.Errorf("VIPs %v, want %s", got, want)
	}
	if el := pool.Eligibility(c.L2Advertisements, map[string]string{"role": "edge", "zone": "a"}); el["l2"] != 50 {
		t.Errorf("eligibility %v, want l2: 50", el)
	}
	if el := pool.Eligibility(c.L2Advertisements, map[string]string{"role": "worker"}); len(el) != 0 {
		t.Errorf("a non-edge node is eligible: %v", el)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := map[string]struct {
		replace [2]string // in validYAML
		want    []error
		paths   []string
	}{
		"unknown key (strict)": {
			replace: [2]string{"interfaces: [eth0]", "interfaces: [eth0]\n  interfacez: [eth1]"},
			paths:   []string{"interfacez"},
		},
		"no bind address": {
			replace: [2]string{"bindAddress: 198.18.0.11", "bindPort: 7946"},
			want:    []error{membership.ErrRequired},
			paths:   []string{"vip.memberlist.bindAddress", "vip.memberlist.advertiseAddress"},
		},
		"seed without port and no secret": {
			replace: [2]string{`seeds: ["198.18.0.11:7946", "198.18.0.12:7946"]
    secret: a-secret-of-enough-length`, `seeds: ["198.18.0.11"]`},
			want:  []error{membership.ErrInvalid, membership.ErrRequired},
			paths: []string{"vip.memberlist.seeds[0]", "vip.memberlist.secret"},
		},
		"probe timeout not below interval": {
			replace: [2]string{"secret: a-secret-of-enough-length", "secret: a-secret-of-enough-length\n    timings: {probeInterval: 100ms, probeTimeout: 100ms}"},
			want:    []error{membership.ErrRange},
			paths:   []string{"vip.memberlist.timings.probeTimeout"},
		},
		"kubernetes-only pool fields": {
			replace: [2]string{"avoidBuggyIPs: true", "avoidBuggyIPs: true\n      autoAssign: false\n      serviceAllocation: {namespaces: [a]}"},
			want:    []error{pool.ErrUnsupported},
			paths:   []string{"vip.ipAddressPools[0].spec.serviceAllocation", "vip.ipAddressPools[0].spec.autoAssign"},
		},
		"bad ranges": {
			replace: [2]string{`"198.18.0.10-198.18.0.11"`, `"198.18.0.11-198.18.0.10", 198.18.0.1/24, "198.18.0.1-fd00::1", 10.0.0.0/8`},
			want:    []error{pool.ErrInvalid, pool.ErrTooMany},
			paths:   []string{"addresses[1]", "addresses[2]", "addresses[3]", "addresses[4]"},
		},
		"overlapping pools": {
			replace: [2]string{"  l2Advertisements:", "  - metadata: {name: other}\n    spec: {addresses: [198.18.0.1/32]}\n  l2Advertisements:"},
			want:    []error{pool.ErrDuplicate},
			paths:   []string{"vip.ipAddressPools[1].spec.addresses[0]"},
		},
		"advertisement interface not configured, bad weight, service selectors": {
			replace: [2]string{"nodeSelectors: [{matchLabels: {role: edge}}]", "nodeSelectors: [{matchLabels: {role: edge}}]\n      interfaces: [eth9]\n      serviceSelectors: [{matchLabels: {a: b}}]"},
			want:    []error{pool.ErrUnknownIfname, pool.ErrUnsupported},
			paths:   []string{"vip.l2Advertisements[0].spec.interfaces[0]", "vip.l2Advertisements[0].spec.serviceSelectors"},
		},
		"preference weight out of MetalLB's range": {
			replace: [2]string{"weight: 50", "weight: 101"},
			want:    []error{pool.ErrInvalid},
			paths:   []string{"preferredNodeSelectors[0].weight"},
		},
		"server-written metadata": {
			replace: [2]string{"metadata: {name: l2, namespace: metallb-system}", "metadata: {name: l2, uid: 1234, resourceVersion: '7'}"},
			want:    []error{pool.ErrUnsupported},
			paths:   []string{"vip.l2Advertisements[0].metadata"},
		},
		"component knobs": {
			replace: [2]string{"interfaces: [eth0]", "interfaces: [eth0, eth0]\n  arpSysctls: maybe\n  minMembers: -1\n  announce: {burstCount: 50, burstSpacing: 10ms}\n  drain: {timeout: 1h}"},
			want:    []error{ErrInvalid, ErrRange},
			paths:   []string{"vip.interfaces[1]", "vip.arpSysctls", "vip.minMembers", "vip.announce.burstCount", "vip.announce.burstSpacing", "vip.drain.timeout"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := strings.Replace(validYAML, tc.replace[0], tc.replace[1], 1)
			if in == validYAML {
				t.Fatalf("replacement %q not found", tc.replace[0])
			}
			_, err := decode(t, in)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error does not wrap %v:\n%v", w, err)
				}
			}
			for _, p := range tc.paths {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error does not name %s:\n%v", p, err)
				}
			}
		})
	}
}
