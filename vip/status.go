package vip

import "net/netip"

// Status is a snapshot for `edgegate status` and the admin API. It is a plain value, safe to keep and serialise.
type Status struct {
	// Self is this node's name.
	Self string `json:"self"`
	// Ready: memberlist runs and the first join of the seeds was attempted; before that the node holds nothing.
	Ready bool `json:"ready"`
	// Fit and Reason are this node's own published fitness.
	Fit    bool   `json:"fit"`
	Reason string `json:"reason,omitempty"`
	// Members are the live members as seen here, sorted by name.
	Members []MemberStatus `json:"members"`
	// VIPs are every configured VIP, sorted by address.
	VIPs []VIPStatus `json:"vips"`
}

// MemberStatus is one member of the view.
type MemberStatus struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Fit     bool   `json:"fit"`
	Reason  string `json:"reason,omitempty"`
	Weight  int64  `json:"weight,omitempty"`
	Suspect bool   `json:"suspect,omitempty"`
}

// VIPStatus is one VIP.
type VIPStatus struct {
	Addr netip.Addr `json:"addr"`
	Pool string     `json:"pool"`
	// Owner is the member this node's view elects ("" when no fit member may own it).
	Owner string `json:"owner"`
	// Held: the address is on this node's interfaces (the owner, or an unfit owner handing over).
	Held bool `json:"held"`
	// HandingOff: held while waiting for the new owner's announcement.
	HandingOff bool     `json:"handingOff,omitempty"`
	Interfaces []string `json:"interfaces"`
}
