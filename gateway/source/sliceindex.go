package source

import (
	"slices"
	"sync"

	"k8s.io/client-go/tools/cache"
)

// sliceIndex lists the EndpointSlices of each Service by name. client-go's indexer would keep a
// set (a Go map) and a "namespace/service" string per Service: ~330 B per Service, 33 MB of the
// daemon's heap at 100k Services (pprof, test/bench -hold). This index holds the strings the
// cached slices already have: ~100 B per Service.
//
// It is updated by the EndpointSlice informer's event handler, before the handler notifies the
// pipeline, and notifications are delivered in order: when the pipeline reads a Service's slices
// for an event, the index is at least as new as that event. For the first list, the cluster
// counts as synced only once that handler has received every object of it (client-go's
// registration HasSynced), so the first full pass reads a complete index.
type sliceIndex struct {
	mu    sync.RWMutex
	names map[serviceKey][]string
}

type serviceKey struct{ namespace, service string }

func newSliceIndex() *sliceIndex { return &sliceIndex{names: map[serviceKey][]string{}} }

// track is the EndpointSlice informer's handler side of the index: an add (old nil), an update,
// or a deletion (obj possibly a DeletedFinalStateUnknown).
func (x *sliceIndex) track(old, obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, ok := obj.(*cachedSlice)
	switch {
	case !ok:
	case deleted:
		x.remove(s)
	default:
		o, _ := old.(*cachedSlice)
		x.add(o, s)
	}
}

// add records s (an add or an update: old is the previous version, or nil).
func (x *sliceIndex) add(old, s *cachedSlice) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old != nil && old.service != s.service {
		x.removeLocked(old)
	}
	if s.service == "" {
		return
	}
	k := serviceKey{s.namespace, s.service}
	if !slices.Contains(x.names[k], s.name) {
		x.names[k] = append(x.names[k], s.name)
	}
}

func (x *sliceIndex) remove(s *cachedSlice) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(s)
}

func (x *sliceIndex) removeLocked(s *cachedSlice) {
	k := serviceKey{s.namespace, s.service}
	names := x.names[k]
	i := slices.Index(names, s.name)
	switch {
	case i < 0:
	case len(names) == 1:
		delete(x.names, k)
	default:
		x.names[k] = slices.Delete(slices.Clone(names), i, i+1) // readers may hold the old slice
	}
}

// get returns the names of the Service's slices; the caller must not modify them.
func (x *sliceIndex) get(namespace, service string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.names[serviceKey{namespace, service}]
}
