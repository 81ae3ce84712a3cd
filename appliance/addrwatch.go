package appliance

import (
	"context"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/edgegate/edgegate/gateway/source"
)

// addressResync re-reads the node's addresses even without a netlink notification, in case the
// subscription missed one (netlink is a datagram protocol and can drop under load).
const addressResync = 10 * time.Second

// watchNodeAddresses keeps the tenancy policy's set of this node's addresses current and, when it
// changes, tells the gateway to re-check every endpoint: an address the node gains later (a VIP,
// a new interface) must stop being a reachable backend at once. It returns when ctx is done.
func (d *Daemon) watchNodeAddresses(ctx context.Context) {
	updates := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil { // closing the subscription at stop reports EAGAIN: not news
				d.log.Warn("address subscription", "error", err)
			}
		},
	}); err != nil {
		d.log.Warn("cannot subscribe to address changes; polling", "error", err, "interval", addressResync)
		updates = nil
	}
	t := time.NewTicker(addressResync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
		case <-t.C:
		}
		if d.policy.NodeAddresses.Replace(nodeAddresses(d.cfg)) {
			d.log.Info("node addresses changed; re-checking endpoints")
			select {
			case d.events <- source.Event{Kind: source.KindNodeAddresses}:
			case <-ctx.Done():
				return
			}
		}
	}
}
