package bgp

import (
	"maps"
	"net/netip"
	"slices"
)

// PeerDiff is what changes between two peer sets, keyed by neighbour address (a peer whose address
// changed is removed and added).
type PeerDiff struct {
	Add    []PeerConfig
	Update []PeerConfig
	Remove []netip.Addr
}

// Empty reports whether nothing changes.
func (d PeerDiff) Empty() bool { return len(d.Add)+len(d.Update)+len(d.Remove) == 0 }

// DiffPeers compares the applied peers with the desired ones. Results are sorted by address.
func DiffPeers(applied, desired map[netip.Addr]PeerConfig) PeerDiff {
	var d PeerDiff
	for _, a := range sortedAddrs(desired) {
		want := desired[a]
		have, ok := applied[a]
		switch {
		case !ok:
			d.Add = append(d.Add, want)
		case have != want:
			d.Update = append(d.Update, want)
		}
	}
	for _, a := range sortedAddrs(applied) {
		if _, ok := desired[a]; !ok {
			d.Remove = append(d.Remove, a)
		}
	}
	return d
}

// RouteDiff is what changes between two route sets.
type RouteDiff struct {
	Announce []Route // new, or attributes changed (re-announced: an implicit replace on the wire)
	Withdraw []netip.Prefix
}

// DiffRoutes compares the applied routes with the desired ones. Results are sorted by prefix.
func DiffRoutes(applied, desired map[netip.Prefix]Route) RouteDiff {
	var d RouteDiff
	for _, p := range sortedPrefixes(desired) {
		want := desired[p]
		if have, ok := applied[p]; !ok || !sameRoute(have, want) {
			d.Announce = append(d.Announce, want)
		}
	}
	for _, p := range sortedPrefixes(applied) {
		if _, ok := desired[p]; !ok {
			d.Withdraw = append(d.Withdraw, p)
		}
	}
	return d
}

func sameRoute(a, b Route) bool {
	lpEq := (a.LocalPref == nil) == (b.LocalPref == nil) && (a.LocalPref == nil || *a.LocalPref == *b.LocalPref)
	return a.Prefix == b.Prefix && a.NextHop == b.NextHop && a.ASPathPrepend == b.ASPathPrepend && lpEq &&
		slices.Equal(a.Communities, b.Communities) && slices.Equal(a.LargeCommunities, b.LargeCommunities)
}

func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	return slices.SortedFunc(maps.Keys(m), netip.Addr.Compare)
}

func sortedPrefixes[V any](m map[netip.Prefix]V) []netip.Prefix {
	return slices.SortedFunc(maps.Keys(m), comparePrefix)
}
