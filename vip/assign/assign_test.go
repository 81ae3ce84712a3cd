package assign

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func vips(n int) []VIP {
	out := make([]VIP, n)
	a := netip.MustParseAddr("198.18.0.1")
	for i := range out {
		out[i] = VIP{Addr: a, Ads: []string{"l2"}}
		a = a.Next()
	}
	return out
}

func members(n int) []Member {
	out := make([]Member, n)
	for i := range out {
		out[i] = Member{Name: fmt.Sprintf("edge-%d", i), Fit: true, Ads: map[string]int64{"l2": 0}}
	}
	return out
}

// MetalLB's ordering: the member whose sha256(name#ip) is smallest wins. The owners below are literal, computed
// with coreutils (for n in edge-a edge-b edge-c; do printf '%s#%s' $n 198.18.0.3 | sha256sum; done, lowest wins),
// so a change of the hash input (separator, address form) is caught.
func TestOwnersKnownVector(t *testing.T) {
	var ms []Member
	for _, n := range []string{"edge-a", "edge-b", "edge-c"} {
		ms = append(ms, Member{Name: n, Fit: true, Ads: map[string]int64{"l2": 0}})
	}
	want := map[netip.Addr]string{
		netip.MustParseAddr("198.18.0.1"): "edge-a",
		netip.MustParseAddr("198.18.0.3"): "edge-b",
		netip.MustParseAddr("198.18.0.4"): "edge-b",
		netip.MustParseAddr("198.18.0.5"): "edge-c",
		netip.MustParseAddr("fd00::2"):    "edge-a",
		netip.MustParseAddr("fd00::3"):    "edge-c",
	}
	var vs []VIP
	for a := range want {
		vs = append(vs, VIP{Addr: a, Ads: []string{"l2"}})
	}
	if diff := cmp.Diff(want, Owners(vs, ms)); diff != "" {
		t.Errorf("owners (-want +got):\n%s", diff)
	}
}

func TestRankWeightsAndEligibility(t *testing.T) {
	v := VIP{Addr: netip.MustParseAddr("198.18.0.7"), Ads: []string{"a", "b"}}
	tests := map[string]struct {
		members []Member
		want    []string
	}{
		"unfit excluded": {
			members: []Member{{Name: "x", Fit: false, Ads: map[string]int64{"a": 0}}, {Name: "y", Fit: true, Ads: map[string]int64{"a": 0}}},
			want:    []string{"y"},
		},
		"ineligible excluded": {
			members: []Member{{Name: "x", Fit: true, Ads: map[string]int64{"other": 0}}, {Name: "y", Fit: true, Ads: map[string]int64{"b": 0}}},
			want:    []string{"y"},
		},
		"weight beats hash": {
			members: []Member{{Name: "x", Fit: true, Weight: 0, Ads: map[string]int64{"a": 0}}, {Name: "y", Fit: true, Weight: 1, Ads: map[string]int64{"a": 0}}, {Name: "z", Fit: true, Weight: 0, Ads: map[string]int64{"a": 0}}},
			want:    append([]string{"y"}, hashOrder(v, "x", "z")...),
		},
		"preference scores of all ads sum": {
			members: []Member{{Name: "x", Fit: true, Ads: map[string]int64{"a": 30}}, {Name: "y", Fit: true, Ads: map[string]int64{"a": 20, "b": 20}}},
			want:    []string{"y", "x"},
		},
		"nobody fit": {
			members: []Member{{Name: "x", Fit: false, Ads: map[string]int64{"a": 0}}},
			want:    []string{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Rank(v, tc.members)); diff != "" {
				t.Errorf("rank (-want +got):\n%s", diff)
			}
		})
	}
}

// Property: all nodes holding the same view (in any order) agree, so every VIP has exactly one owner, and that
// owner is a fit, eligible member.
func TestPropertyEqualViewsOneOwner(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		ms := members(1 + r.IntN(7))
		for i := range ms {
			ms[i].Fit = r.IntN(4) != 0
			ms[i].Weight = int64(r.IntN(3))
		}
		vs := vips(1 + r.IntN(40))
		ref := Owners(vs, ms)
		for range 3 { // the same view as seen by other nodes: other member order
			shuffled := append([]Member(nil), ms...)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if diff := cmp.Diff(ref, Owners(vs, shuffled)); diff != "" {
				t.Fatalf("trial %d: views equal but owners differ (-ref +got):\n%s", trial, diff)
			}
		}
		anyFit := false
		fit := map[string]bool{}
		for _, m := range ms {
			fit[m.Name] = m.Fit
			anyFit = anyFit || m.Fit
		}
		for _, v := range vs {
			o, ok := ref[v.Addr]
			if ok != anyFit {
				t.Fatalf("trial %d: vip %s owned=%v, any fit member=%v", trial, v.Addr, ok, anyFit)
			}
			if ok && !fit[o] {
				t.Fatalf("trial %d: vip %s owned by unfit %s", trial, v.Addr, o)
			}
		}
	}
}

// Property: removing one member (or marking it unfit) moves only the VIPs it owned; adding it back restores the
// original owners (no flapping of unrelated VIPs).
func TestPropertyRemovalMovesOnlyItsVIPs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		ms := members(2 + r.IntN(6))
		for i := range ms {
			ms[i].Weight = int64(r.IntN(2))
		}
		vs := vips(1 + r.IntN(64))
		before := Owners(vs, ms)
		victim := r.IntN(len(ms))
		gone := ms[victim].Name
		rest := append(append([]Member(nil), ms[:victim]...), ms[victim+1:]...)
		unfit := append([]Member(nil), ms...)
		unfit[victim].Fit = false
		for label, view := range map[string][]Member{"removed": rest, "unfit": unfit} {
			after := Owners(vs, view)
			for _, v := range vs {
				b, a := before[v.Addr], after[v.Addr]
				if b != gone && a != b {
					t.Fatalf("trial %d (%s): vip %s moved from %s to %s although %s left", trial, label, v.Addr, b, a, gone)
				}
				if b == gone && a == gone {
					t.Fatalf("trial %d (%s): vip %s still owned by departed %s", trial, label, v.Addr, gone)
				}
			}
		}
		if diff := cmp.Diff(before, Owners(vs, ms)); diff != "" {
			t.Fatalf("trial %d: re-adding changed owners:\n%s", trial, diff)
		}
	}
}

// Spread: with equal weights the hash ordering spreads VIPs over members (not all on one node).
func TestSpread(t *testing.T) {
	counts := map[string]int{}
	for _, o := range Owners(vips(300), members(3)) {
		counts[o]++
	}
	for name, n := range counts {
		if n < 60 {
			t.Errorf("%s owns %d of 300 VIPs, want a rough third", name, n)
		}
	}
	if len(counts) != 3 {
		t.Errorf("owners %v, want 3 distinct", counts)
	}
}
