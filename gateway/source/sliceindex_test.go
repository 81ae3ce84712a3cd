package source

import (
	"slices"
	"testing"

	"k8s.io/client-go/tools/cache"
)

func TestSliceIndex(t *testing.T) {
	x := newSliceIndex()
	slice := func(name, service string) *cachedSlice {
		return &cachedSlice{cachedMeta: cachedMeta{namespace: "ns", name: name}, service: service}
	}
	get := func(service string) []string {
		out := slices.Clone(x.get("ns", service))
		slices.Sort(out)
		return out
	}
	a, b := slice("web-a", "web"), slice("web-b", "web")
	x.add(nil, a)
	x.add(nil, b)
	x.add(a, a)                     // an update: no duplicate
	x.add(nil, slice("orphan", "")) // no service label: not indexed
	if got := get("web"); !slices.Equal(got, []string{"web-a", "web-b"}) {
		t.Fatalf("web: %v", got)
	}
	held := x.get("ns", "web") // a reader's slice must not change under it
	moved := slice("web-b", "api")
	x.track(b, moved, false)
	if got, api := get("web"), get("api"); !slices.Equal(got, []string{"web-a"}) || !slices.Equal(api, []string{"web-b"}) {
		t.Fatalf("after relabelling web-b to api: web %v, api %v", got, api)
	}
	if len(held) != 2 {
		t.Fatalf("a reader's names changed under it: %v", held)
	}
	x.track(nil, a, true)
	x.track(nil, cache.DeletedFinalStateUnknown{Key: "ns/web-b", Obj: moved}, true) // deleted during a relist
	x.remove(moved)                                                                 // a second delete is harmless
	if len(x.names) != 0 {
		t.Fatalf("entries left after every slice was deleted: %v", x.names)
	}
}
