// Package bgp announces edgegate's VIPs to datacenter routers over BGP with an embedded GoBGP v3 speaker.
//
// Every fit edge node announces each VIP as a host route; routers spread traffic over the nodes by ECMP.
// A node withdraws before it stops serving: on a fitness loss at once, on a planned stop after a graceful
// shutdown phase (RFC 8326: re-announce with the GRACEFUL_SHUTDOWN community 65535:0, wait, withdraw).
//
// The package is split in layers:
//
//   - Config (config.go, validate.go): MetalLB BGPPeer/BGPAdvertisement/Community objects as they are,
//     defaulting and validation.
//   - Plan (plan.go): a pure function from config, node, VIPs and fitness to the desired speaker state.
//   - Speaker (speaker.go, gobgp.go, fake.go): a small interface over GoBGP and a fake for unit tests.
//   - Component (component.go): the one goroutine that owns the speaker and reconciles it with the plan.
//
// See README.md for the operator-facing contract.
package bgp
