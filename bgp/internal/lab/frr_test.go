package lab

import (
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testdata/frr holds real FRR 8.4 output captured in a lab with three nodes after n3 was drained.

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/frr/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFRRRoute(t *testing.T) {
	tests := map[string][]string{
		"route-v4.json":   {"198.18.1.11", "198.18.1.12"},
		"route-v6.json":   {"fd00:1::11", "fd00:1::12"},
		"route-none.json": nil,
	}
	for file, want := range tests {
		got, err := ParseFRRRoute(read(t, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var gs []string
		for _, a := range got {
			gs = append(gs, a.String())
		}
		slices.Sort(gs)
		if d := cmp.Diff(want, gs); d != "" {
			t.Errorf("%s (-want +got):\n%s", file, d)
		}
	}
	if _, err := ParseFRRRoute([]byte("not json")); err == nil {
		t.Error("garbage parsed without error")
	}
}

func TestParseFRRBGPPrefix(t *testing.T) {
	for _, file := range []string{"bgp-v4.json", "bgp-v6.json"} {
		paths, err := ParseFRRBGPPrefix(read(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 2 {
			t.Fatalf("%s: %d paths, want 2", file, len(paths))
		}
		for _, p := range paths {
			if p.ASPath.String != "4200000001" || p.Community == nil || p.Community.String != "64512:100" ||
				p.LargeCommunity == nil || p.LargeCommunity.String != "4200000001:1:2" || !p.Valid || len(p.NextHops) == 0 {
				t.Errorf("%s: path %+v", file, p)
			}
		}
	}
	paths, err := ParseFRRBGPPrefix([]byte("{}"))
	if err != nil || len(paths) != 0 {
		t.Errorf("empty answer: %v %v", paths, err)
	}
}

func TestParseFRRNeighbors(t *testing.T) {
	m, err := ParseFRRNeighbors(read(t, "neighbors.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"198.18.1.11", "198.18.1.12", "198.18.1.13"} {
		if n := m[a]; n.State != "Established" || n.RemoteAs != 4200000001 {
			t.Errorf("%s: %+v, want established AS 4200000001 (a drain keeps the session)", a, n)
		}
	}
}

func TestParseBIRDProtocols(t *testing.T) {
	out := `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     06:10:01.123
kernel1    Kernel     master4    up     06:10:01.123
n1         BGP        ---        up     06:10:02.456  Established
n2         BGP        ---        start  06:10:01.123  Active        Socket: Connection refused
`
	got := ParseBIRDProtocols(out)
	want := map[string]string{"n1": "Established", "n2": "Active"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
