// Package assign decides, without a leader, which member owns each VIP. It is a pure function of the VIP list and
// the membership view: every node that holds the same view computes the same owners.
//
// Ranking follows MetalLB's layer2 controller (speaker/layer2_controller.go, sortL2Candidates): among the fit
// members eligible for the VIP, the highest score wins, ties are broken by sha256(node + "#" + ip) ascending.
// A member's score for a VIP is its own published weight plus, for every L2Advertisement of the VIP, the sum of the
// preferredNodeSelectors weights that matched the member's labels.
package assign

import (
	"bytes"
	"crypto/sha256"
	"net/netip"
	"slices"
)

// Member is one node as seen through gossip.
type Member struct {
	Name string
	// Fit: the node publishes that it can take traffic (Envoy ready, config synced, not draining).
	Fit bool
	// Weight is the node's own preference, added to its score for every VIP.
	Weight int64
	// Ads maps every L2Advertisement name the node is eligible for to its preference score for that ad.
	Ads map[string]int64
}

// VIP is one address and the advertisements that announce it.
type VIP struct {
	Addr netip.Addr
	Ads  []string
}

// Owners returns, for every VIP with at least one eligible fit member, the name of its owner. VIPs no member may
// own are absent.
func Owners(vips []VIP, members []Member) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(vips))
	for _, v := range vips {
		if r := Rank(v, members); len(r) > 0 {
			out[v.Addr] = r[0]
		}
	}
	return out
}

// Rank returns the names of the fit members eligible for v, best first.
func Rank(v VIP, members []Member) []string {
	type cand struct {
		name  string
		score int64
		hash  [sha256.Size]byte
	}
	ip := v.Addr.String()
	var cs []cand
	for _, m := range members {
		if !m.Fit {
			continue
		}
		eligible := false
		score := m.Weight
		for _, ad := range v.Ads {
			if s, ok := m.Ads[ad]; ok {
				eligible = true
				score += s
			}
		}
		if !eligible {
			continue
		}
		cs = append(cs, cand{name: m.Name, score: score, hash: sha256.Sum256([]byte(m.Name + "#" + ip))})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		if c := bytes.Compare(a.hash[:], b.hash[:]); c != 0 {
			return c
		}
		return 0
	})
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.name
	}
	return names
}
