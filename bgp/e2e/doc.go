// Package e2e holds bgp's integration tests and benchmarks against real routers (FRR, BIRD) in network
// namespaces, with cmd/bgpspeaker as the edge nodes. They skip when not run as root.
package e2e
