// Package announce puts a VIP on the wire: it adds and removes the address on an interface (netlink), sends
// gratuitous ARP and unsolicited neighbour advertisements, keeps the ARP sysctls that stop non-owners from
// answering, and watches for another node's announcement of a VIP (to end a planned handoff).
//
// The kernel itself answers ARP requests and neighbour solicitations for an address it holds, so "owning" a VIP is
// holding the address: a node that does not hold it never answers for it.
package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddAddr adds vip as a host address (/32 or /128) to ifname. IPv6 addresses are added with IFA_F_NODAD: the
// owner is decided by gossip, and duplicate address detection would keep the address tentative (unusable, never
// answered) for a second or fail outright while the previous owner still holds it during a handoff. Adding an
// address that is already present is not an error.
func AddAddr(ifname string, vip netip.Addr) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("add %s on %s: %w", vip, ifname, err)
	}
	a := hostAddr(vip)
	if vip.Is6() {
		a.Flags = unix.IFA_F_NODAD
		// Deprecated (preferred lifetime 0, valid forever): RFC 6724 source selection then never picks the VIP as
		// the source of this node's own traffic, in particular of its neighbour solicitations, which would teach
		// neighbours the VIP at this MAC (IPv6 has no arp_announce). Incoming connections and NS answers are
		// unaffected by deprecation.
		a.PreferedLft, a.ValidLft = 0, infiniteLifetime
	}
	if err := netlink.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %s on %s: %w", vip, ifname, err)
	}
	return waitLocal(vip)
}

// localWait bounds waitLocal. The kernel installs an IPv6 address's local route from its address work queue after
// the netlink request returned: about 1 ms on an idle host, more when the CPU is saturated. Announcing earlier only
// sends neighbours to a node that drops their packets, so the wait is generous; it ends as soon as the route exists,
// and the VIP is announced regardless after it.
const localWait = time.Second

// waitLocal returns once the kernel routes vip locally. Announcing before that makes neighbours send the first
// packets to this node while it still drops them (observed: a SYN arriving 0.7 ms after the NA was lost and the
// connection waited for the 1 s SYN retransmission).
func waitLocal(vip netip.Addr) error {
	deadline := time.Now().Add(localWait)
	for {
		routes, err := netlink.RouteGet(vip.AsSlice())
		if err == nil && len(routes) > 0 && routes[0].Type == unix.RTN_LOCAL {
			return nil
		}
		if time.Now().After(deadline) {
			return nil // announce anyway: late is better than never
		}
		time.Sleep(time.Millisecond)
	}
}

// DelAddr removes vip from ifname; an absent address is not an error.
func DelAddr(ifname string, vip netip.Addr) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("remove %s from %s: %w", vip, ifname, err)
	}
	if err := netlink.AddrDel(link, hostAddr(vip)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s from %s: %w", vip, ifname, err)
	}
	return nil
}

// HeldAddrs returns which of vips are host addresses on ifname now.
func HeldAddrs(ifname string, vips map[netip.Addr]bool) ([]netip.Addr, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", ifname, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", ifname, err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		ones, bits := a.Mask.Size()
		if vips[ip] && ones == bits {
			out = append(out, ip)
		}
	}
	return out, nil
}

// Cleanup removes every one of vips from every one of ifnames: what a supervisor runs after the daemon died
// without releasing (systemd ExecStopPost), so a crashed node stops answering ARP for VIPs it no longer owns.
func Cleanup(ifnames []string, vips []netip.Addr) error {
	set := map[netip.Addr]bool{}
	for _, v := range vips {
		set[v] = true
	}
	var errs []error
	for _, ifn := range ifnames {
		held, err := HeldAddrs(ifn, set)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, v := range held {
			errs = append(errs, DelAddr(ifn, v))
		}
	}
	return errors.Join(errs...)
}

// infiniteLifetime is the kernel's "forever" (INFINITY_LIFE_TIME).
const infiniteLifetime = 0xFFFFFFFF

func hostAddr(vip netip.Addr) *netlink.Addr {
	bits := vip.BitLen()
	return &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
}
