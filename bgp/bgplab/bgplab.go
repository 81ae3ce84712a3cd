// Package bgplab is the public face of bgp's network-namespace lab (bgp/internal/lab): throwaway
// namespaces, veths, FRR or BIRD as the datacenter router, and readers of the router's BGP table and
// kernel routes. Tests outside bgp/ (the daemon-level tests in the test module) use it; Go's internal
// rule keeps them from importing the lab itself. Everything here is an alias, so the two cannot drift.
// It needs root.
package bgplab

import "github.com/edgegate/edgegate/bgp/internal/lab"

type (
	// Lab is one set of namespaces and router processes, removed on the test's cleanup.
	Lab = lab.Lab
	// FRR is a zebra+bgpd pair in a namespace.
	FRR = lab.FRR
	// FRRBGPPath is one path of FRR's BGP table for a prefix.
	FRRBGPPath = lab.FRRBGPPath
	// FRRNeighbor is one BGP neighbour as FRR sees it.
	FRRNeighbor = lab.FRRNeighbor
	// BIRD is a bird2 daemon in a namespace.
	BIRD = lab.BIRD
)

// FRRBin is where Debian's frr package puts the daemons.
const FRRBin = lab.FRRBin

var (
	// New creates an empty lab whose cleanup is registered on the test.
	New = lab.New
	// Skip skips the test unless it runs as root and the tools exist.
	Skip = lab.Skip
	// Run runs a command and returns its combined output.
	Run = lab.Run
	// In runs a command inside a namespace.
	In = lab.In
	// Eventually polls a condition until it holds or the timeout passes.
	Eventually = lab.Eventually
	// KernelNextHops returns the gateways of the kernel route for a prefix in a namespace.
	KernelNextHops = lab.KernelNextHops
)
