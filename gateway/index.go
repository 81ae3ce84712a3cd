package gateway

import (
	"iter"
	"slices"
)

// index maps a key to a set of values: the pipeline's reverse indexes (Ingresses per host, per
// Service, per Secret, per namespace and tenant; hosts per certificate). Nearly every set holds one
// value, and a Go map costs hundreds of bytes even for one entry, so a set is a slice until it
// outgrows smallSet values and a map after that (removal stays cheap in a namespace with thousands
// of Ingresses). At 50k Ingresses this took the indexes from 117 to ~35 MB and the pipeline's
// whole state from 254 to 181 MiB (live heap after TranslateAll over benchObjects).
type index[K, V comparable] map[K]valueSet[V]

// valueSet holds few values in a slice, many in a map; exactly one of them is used.
type valueSet[V comparable] struct {
	few  []V
	many map[V]struct{}
}

// smallSet is where a set switches to a map: linear scans of up to 8 values beat hashing.
const smallSet = 8

func (ix index[K, V]) add(k K, v V) {
	s := ix[k]
	switch {
	case s.has(v):
	case s.many != nil:
		s.many[v] = struct{}{}
	case len(s.few) < smallSet:
		s.few = append(s.few, v)
		ix[k] = s
	default:
		s.many = make(map[V]struct{}, 2*smallSet)
		for _, x := range s.few {
			s.many[x] = struct{}{}
		}
		s.many[v] = struct{}{}
		s.few = nil
		ix[k] = s
	}
}

func (ix index[K, V]) remove(k K, v V) {
	s, ok := ix[k]
	if !ok {
		return
	}
	if s.many != nil {
		delete(s.many, v)
	} else if i := slices.Index(s.few, v); i >= 0 {
		s.few = slices.Delete(s.few, i, i+1)
	}
	if s.len() == 0 {
		delete(ix, k)
		return
	}
	ix[k] = s
}

func (ix index[K, V]) has(k K, v V) bool { return ix[k].has(v) }

// count returns how many values k has.
func (ix index[K, V]) count(k K) int { return ix[k].len() }

// values iterates k's values in no particular order. The caller must not change k's set meanwhile.
func (ix index[K, V]) values(k K) iter.Seq[V] {
	s := ix[k]
	return func(yield func(V) bool) {
		if s.many != nil {
			for v := range s.many {
				if !yield(v) {
					return
				}
			}
			return
		}
		for _, v := range s.few {
			if !yield(v) {
				return
			}
		}
	}
}

// sorted returns k's values sorted by less.
func (ix index[K, V]) sorted(k K, less func(a, b V) bool) []V {
	out := make([]V, 0, ix.count(k))
	for v := range ix.values(k) {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b V) int {
		switch {
		case less(a, b):
			return -1
		case less(b, a):
			return 1
		}
		return 0
	})
	return out
}

func (s valueSet[V]) has(v V) bool {
	if s.many != nil {
		_, ok := s.many[v]
		return ok
	}
	return slices.Contains(s.few, v)
}

func (s valueSet[V]) len() int {
	if s.many != nil {
		return len(s.many)
	}
	return len(s.few)
}
