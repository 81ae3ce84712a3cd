package gateway

import (
	"fmt"
	"slices"
	"testing"
)

// TestIndex drives one key's set through the slice and map forms and back, against a plain map.
func TestIndex(t *testing.T) {
	ix := index[string, int]{}
	want := map[int]bool{}
	check := func(step string) {
		t.Helper()
		got := ix.sorted("k", func(a, b int) bool { return a < b })
		var exp []int
		for v := range want {
			exp = append(exp, v)
		}
		slices.Sort(exp)
		if !slices.Equal(got, exp) || ix.count("k") != len(exp) {
			t.Fatalf("%s: values %v (count %d), want %v", step, got, ix.count("k"), exp)
		}
		if _, present := ix["k"]; present != (len(exp) > 0) {
			t.Fatalf("%s: key present = %v with %d values", step, present, len(exp))
		}
		for v := range 3 * smallSet {
			if ix.has("k", v) != want[v] {
				t.Fatalf("%s: has(%d) = %v", step, v, !want[v])
			}
		}
	}
	for v := range 2 * smallSet { // past the switch to a map
		ix.add("k", v)
		ix.add("k", v) // duplicates are ignored
		want[v] = true
		check(fmt.Sprintf("add %d", v))
	}
	for v := range 2 * smallSet {
		ix.remove("k", v)
		ix.remove("k", v+100) // absent values are ignored
		delete(want, v)
		check(fmt.Sprintf("remove %d", v))
	}
	ix.remove("absent", 1)
	for v := range ix.values("absent") {
		t.Fatalf("absent key yields %d", v)
	}
}
