package pool

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	metallbv1beta1 "go.universe.tf/metallb/api/v1beta1"
	"sigs.k8s.io/yaml"
)

func decode(t *testing.T, pools, ads string) ([]metallbv1beta1.IPAddressPool, []metallbv1beta1.L2Advertisement) {
	t.Helper()
	var p []metallbv1beta1.IPAddressPool
	var a []metallbv1beta1.L2Advertisement
	if err := yaml.UnmarshalStrict([]byte(pools), &p); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(ads), &a); err != nil {
		t.Fatal(err)
	}
	return p, a
}

type flat struct {
	Addr       string
	Pool       string
	Ads        []string
	Interfaces []string
}

func flatten(s Set) []flat {
	var out []flat
	for _, v := range s.VIPs {
		out = append(out, flat{v.Addr.String(), v.Pool, v.Ads, v.Interfaces})
	}
	return out
}

func TestExpandSelection(t *testing.T) {
	pools := `
- metadata: {name: a, labels: {tier: public}}
  spec: {addresses: ["192.0.2.255-192.0.3.0"], avoidBuggyIPs: false}
- metadata: {name: b}
  spec: {addresses: [2001:db8::ffff/127]}
- metadata: {name: unannounced}
  spec: {addresses: [198.51.100.1/32]}
`
	tests := map[string]struct {
		ads  string
		want []flat
	}{
		"by name and by label, interfaces merged": {
			ads: `
- metadata: {name: by-label}
  spec: {ipAddressPoolSelectors: [{matchLabels: {tier: public}}], interfaces: [eth1]}
- metadata: {name: by-name}
  spec: {ipAddressPools: [a, b]}
`,
			want: []flat{
				{"192.0.2.255", "a", []string{"by-label", "by-name"}, []string{"eth0", "eth1"}},
				{"192.0.3.0", "a", []string{"by-label", "by-name"}, []string{"eth0", "eth1"}},
				{"2001:db8::fffe", "b", []string{"by-name"}, []string{"eth0", "eth1"}},
				{"2001:db8::ffff", "b", []string{"by-name"}, []string{"eth0", "eth1"}},
			},
		},
		"an advertisement without selection selects every pool": {
			ads: `[{metadata: {name: all}, spec: {interfaces: [eth1]}}]`,
			want: []flat{
				{"192.0.2.255", "a", []string{"all"}, []string{"eth1"}},
				{"192.0.3.0", "a", []string{"all"}, []string{"eth1"}},
				{"198.51.100.1", "unannounced", []string{"all"}, []string{"eth1"}},
				{"2001:db8::fffe", "b", []string{"all"}, []string{"eth1"}},
				{"2001:db8::ffff", "b", []string{"all"}, []string{"eth1"}},
			},
		},
		"no advertisement, nothing announced": {ads: `[]`, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, a := decode(t, pools, tc.ads)
			set, err := Expand(p, a, []string{"eth0", "eth1"}, "vip")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, flatten(set)); diff != "" {
				t.Errorf("VIPs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAvoidBuggyIPs(t *testing.T) {
	p, a := decode(t, `[{metadata: {name: a}, spec: {addresses: ["192.0.2.254-192.0.3.1"], avoidBuggyIPs: true}}]`, `[{metadata: {name: l2}}]`)
	set, err := Expand(p, a, []string{"eth0"}, "vip")
	if err != nil {
		t.Fatal(err)
	}
	var got []netip.Addr
	for _, v := range set.VIPs {
		got = append(got, v.Addr)
	}
	want := []netip.Addr{netip.MustParseAddr("192.0.2.254"), netip.MustParseAddr("192.0.3.1")}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestExpandLimits(t *testing.T) {
	p, a := decode(t, `[{metadata: {name: a}, spec: {addresses: ["2001:db8::/64"]}}]`, `[]`)
	if _, err := Expand(p, a, []string{"eth0"}, "vip"); !errors.Is(err, ErrTooMany) {
		t.Errorf("a /64 pool: %v, want ErrTooMany (and no attempt to enumerate it)", err)
	}
	p, a = decode(t, `[{metadata: {name: a}, spec: {addresses: ["fe80::1%eth0-fe80::2%eth0"]}}]`, `[]`)
	if _, err := Expand(p, a, []string{"eth0"}, "vip"); !errors.Is(err, ErrInvalid) {
		t.Errorf("zoned range: %v, want ErrInvalid", err)
	}
}
