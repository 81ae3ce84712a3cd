package announce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

var (
	broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodes  = netip.MustParseAddr("ff02::1")
)

// Announce tells the link that vip now lives at ifname's MAC: for IPv4 a gratuitous ARP request and a gratuitous
// ARP reply (some devices honour only one of the two; MetalLB and keepalived send both), for IPv6 an unsolicited
// neighbour advertisement with the Override flag to all-nodes (RFC 4861 7.2.6). The address must already be on
// the interface (the NA is sent from it).
func Announce(ifname string, vip netip.Addr) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("announce %s on %s: %w", vip, ifname, err)
	}
	if vip.Is4() {
		err = sendGARP(ifi, vip)
	} else {
		err = sendNA(ifi, vip)
	}
	if err != nil {
		return fmt.Errorf("announce %s on %s: %w", vip, ifname, err)
	}
	return nil
}

func sendGARP(ifi *net.Interface, vip netip.Addr) error {
	c, err := packet.Listen(ifi, packet.Datagram, unix.ETH_P_ARP, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	var errs []error
	// Request: sender = target = vip, target MAC unknown (RFC 5227 "ARP Announcement").
	// Reply: sender = target = vip, target MAC broadcast (the older "gratuitous reply" form).
	for _, p := range []struct {
		op  arp.Operation
		tha net.HardwareAddr
	}{{arp.OperationRequest, net.HardwareAddr{0, 0, 0, 0, 0, 0}}, {arp.OperationReply, broadcast}} {
		pkt, err := arp.NewPacket(p.op, ifi.HardwareAddr, vip, p.tha, vip)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b, err := pkt.MarshalBinary()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := c.WriteTo(b, &packet.Addr{HardwareAddr: broadcast}); err != nil {
			errs = append(errs, fmt.Errorf("gratuitous arp %s: %w", p.op, err))
		}
	}
	return errors.Join(errs...)
}

func sendNA(ifi *net.Interface, vip netip.Addr) error {
	c, _, err := ndp.Listen(ifi, ndp.Addr(vip.String()))
	if err != nil {
		return err
	}
	defer c.Close()
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
	}
	if err := c.WriteTo(na, nil, allNodes); err != nil {
		return fmt.Errorf("unsolicited na: %w", err)
	}
	return nil
}
