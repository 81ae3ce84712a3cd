package announce

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// Watch reports, on the returned channel, every VIP of vips that another MAC announces on ifname: an ARP packet
// (request or reply, gratuitous or not) whose sender address is the VIP, or a neighbour advertisement whose target
// is the VIP. The draining owner uses it to know the new owner took over before it releases the address. Watch
// returns once its sockets are open (no announcement after the return is missed); the channel closes when ctx is
// done.
func Watch(ctx context.Context, ifname string, vips map[netip.Addr]bool) (<-chan netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", ifname, err)
	}
	arpc, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, fmt.Errorf("watch arp on %s: %w", ifname, err)
	}
	ip6c, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_IPV6, nil)
	if err != nil {
		arpc.Close()
		return nil, fmt.Errorf("watch ndp on %s: %w", ifname, err)
	}
	out := make(chan netip.Addr, len(vips)+1)
	var wg sync.WaitGroup
	read := func(c *packet.Conn, parse func([]byte) (netip.Addr, bool)) {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return // closed on ctx done
			}
			src, _ := from.(*packet.Addr)
			if src == nil || bytes.Equal(src.HardwareAddr, ifi.HardwareAddr) {
				continue // our own transmissions are captured too
			}
			if ip, ok := parse(buf[:n]); ok && vips[ip] {
				select {
				case out <- ip:
				case <-ctx.Done():
					return
				}
			}
		}
	}
	wg.Add(2)
	go read(arpc, parseARPSender)
	go read(ip6c, parseNATarget)
	go func() {
		<-ctx.Done()
		arpc.SetDeadline(time.Now())
		ip6c.SetDeadline(time.Now())
		arpc.Close()
		ip6c.Close()
		wg.Wait()
		close(out)
	}()
	return out, nil
}

func parseARPSender(b []byte) (netip.Addr, bool) {
	var p arp.Packet
	if err := p.UnmarshalBinary(b); err != nil {
		return netip.Addr{}, false
	}
	return p.SenderIP, true
}

// parseNATarget extracts the target of an ICMPv6 neighbour advertisement carried directly after the IPv6 header
// (NDP never uses extension headers: RFC 4861 requires hop limit 255 and no fragmentation).
func parseNATarget(b []byte) (netip.Addr, bool) {
	const ipv6Header, naType, icmpv6 = 40, 136, 58
	if len(b) < ipv6Header+24 || b[0]>>4 != 6 || b[6] != icmpv6 || b[ipv6Header] != naType {
		return netip.Addr{}, false
	}
	t, ok := netip.AddrFromSlice(b[ipv6Header+8 : ipv6Header+24])
	return t, ok
}
