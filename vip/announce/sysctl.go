package announce

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrSysctl reports an ARP sysctl that lets a non-owner answer for a VIP.
var ErrSysctl = errors.New("arp sysctl")

// arpSysctls are the per-interface values a VIP interface needs; the kernel applies max(all, interface) to both.
//
//   - arp_ignore=1: answer an ARP request only when the target address is configured on the interface the request
//     came in on. With the default 0 a node answers for any of its addresses on any interface, so a VIP held on
//     eth0 would also be answered on eth1 (ARP flux).
//   - arp_announce=2: when the kernel sends its own ARP requests, use the interface's primary address as sender,
//     never a VIP; otherwise neighbours learn the VIP at this node's MAC from an ordinary request, even after the VIP
//     moved away.
var arpSysctls = []struct {
	name string
	want int
}{{"arp_ignore", 1}, {"arp_announce", 2}}

// SysctlRoot is where net.ipv4.conf lives (a variable for tests).
var SysctlRoot = "/proc/sys/net/ipv4/conf"

// EnsureARPSysctls sets (set=true) or only checks the ARP sysctls of ifname, returning every problem.
func EnsureARPSysctls(ifname string, set bool) error {
	var errs []error
	for _, s := range arpSysctls {
		all, errAll := readInt(SysctlRoot + "/all/" + s.name)
		cur, err := readInt(SysctlRoot + "/" + ifname + "/" + s.name)
		if err = errors.Join(errAll, err); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s on %s: %v", ErrSysctl, s.name, ifname, err))
			continue
		}
		if max(all, cur) == s.want {
			continue
		}
		if !set || all > s.want {
			errs = append(errs, fmt.Errorf("%w: net.ipv4.conf.%s.%s is %d (all: %d), want %d", ErrSysctl, ifname, s.name, cur, all, s.want))
			continue
		}
		p := SysctlRoot + "/" + ifname + "/" + s.name
		if err := os.WriteFile(p, []byte(strconv.Itoa(s.want)), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("%w: set %s: %v", ErrSysctl, p, err))
		}
	}
	return errors.Join(errs...)
}

func readInt(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
