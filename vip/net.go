package vip

import (
	"context"
	"net/netip"

	"github.com/edgegate/edgegate/vip/announce"
)

// Net is everything the component does to the host's network. The default (Options.Net nil) is the real one in
// package announce; tests inject a fake to run several nodes in one process. Implementations must be safe for
// concurrent use: announcements run in their own goroutines.
type Net interface {
	AddAddr(ifname string, vip netip.Addr) error
	DelAddr(ifname string, vip netip.Addr) error
	HeldAddrs(ifname string, vips map[netip.Addr]bool) ([]netip.Addr, error)
	Announce(ifname string, vip netip.Addr) error
	// Watch reports VIPs another node announces on ifname; see announce.Watch.
	Watch(ctx context.Context, ifname string, vips map[netip.Addr]bool) (<-chan netip.Addr, error)
	EnsureARPSysctls(ifname string, set bool) error
}

type hostNet struct{}

func (hostNet) AddAddr(ifname string, vip netip.Addr) error { return announce.AddAddr(ifname, vip) }
func (hostNet) DelAddr(ifname string, vip netip.Addr) error { return announce.DelAddr(ifname, vip) }
func (hostNet) HeldAddrs(ifname string, vips map[netip.Addr]bool) ([]netip.Addr, error) {
	return announce.HeldAddrs(ifname, vips)
}
func (hostNet) Announce(ifname string, vip netip.Addr) error { return announce.Announce(ifname, vip) }
func (hostNet) Watch(ctx context.Context, ifname string, vips map[netip.Addr]bool) (<-chan netip.Addr, error) {
	return announce.Watch(ctx, ifname, vips)
}
func (hostNet) EnsureARPSysctls(ifname string, set bool) error {
	return announce.EnsureARPSysctls(ifname, set)
}

// burstRun is announce.Burst (a variable so that the component's tests can observe bursts).
var burstRun = announce.Burst
