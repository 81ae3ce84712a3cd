package netnstest

import (
	"fmt"

	"github.com/vishvananda/netns"
)

// enterNS switches the calling (locked) thread into ns.
func enterNS(ns string) error {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter netns %s: %w", ns, err)
	}
	return nil
}
