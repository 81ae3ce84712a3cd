package netnstest

import (
	"fmt"

	"github.com/vishvananda/netns"
)

// nsHandle switches the calling (locked) thread into ns.
func nsHandle(ns string) (netns.NsHandle, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return h, fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return h, fmt.Errorf("enter netns %s: %w", ns, err)
	}
	return h, nil
}
