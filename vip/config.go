package vip

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/edgegate/edgegate/vip/membership"
	"github.com/edgegate/edgegate/vip/pool"
	metallbv1beta1 "go.universe.tf/metallb/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Sentinel errors wrapped by Validate with the field path, the value and the limit. Pool and memberlist problems
// wrap pool's and membership's sentinels.
var (
	ErrRequired = errors.New("required")
	ErrInvalid  = errors.New("invalid value")
	ErrRange    = errors.New("out of range")
)

// ARP sysctl modes (Config.ARPSysctls).
const (
	// SysctlSet writes arp_ignore=1 and arp_announce=2 on every VIP interface (the default: without them a node
	// answers ARP for a VIP on the wrong interface and leaks VIPs as ARP sender addresses).
	SysctlSet = "set"
	// SysctlVerify only checks them and fails Run when they are wrong (hosts whose sysctls are owned by
	// configuration management).
	SysctlVerify = "verify"
	// SysctlIgnore skips both (the operator knows the interface is dedicated).
	SysctlIgnore = "ignore"
)

// Config is the appliance configuration under the `vip:` key. Decode it strictly (sigs.k8s.io/yaml
// UnmarshalStrict), then call WithDefaults and Validate.
type Config struct {
	// Memberlist configures the gossip cluster of the edge nodes.
	Memberlist membership.Config `json:"memberlist"`
	// Interfaces VIPs are added to and announced on when an L2Advertisement lists none. Required.
	Interfaces []string `json:"interfaces"`
	// ARPSysctls: "set" (default), "verify" or "ignore"; see SysctlSet.
	ARPSysctls string `json:"arpSysctls,omitempty"`
	// MinMembers: own VIPs only while the view holds at least this many members (this node included). Default 1:
	// a lone survivor keeps serving. Set 2 in clusters of three or more so a node cut off from the others, or
	// started with a wrong gossip key, never claims VIPs another node serves.
	MinMembers int `json:"minMembers,omitempty"`
	// Announce configures gratuitous ARP / unsolicited NA.
	Announce Announce `json:"announce,omitempty"`
	// Drain configures the planned handoff.
	Drain Drain `json:"drain,omitempty"`
	// Coalesce configures member-event coalescing.
	Coalesce Coalesce `json:"coalesce,omitempty"`
	// IPAddressPools are MetalLB objects as written for MetalLB (metallb.io/v1beta1).
	IPAddressPools []metallbv1beta1.IPAddressPool `json:"ipAddressPools,omitempty"`
	// L2Advertisements are MetalLB objects; a pool no advertisement selects is not announced.
	L2Advertisements []metallbv1beta1.L2Advertisement `json:"l2Advertisements,omitempty"`
}

// Announce configures announcements.
type Announce struct {
	// BurstCount: announcements sent on takeover. Default 3: the first reaches every neighbour at once; the
	// others, each after the ARP locktime, correct neighbours that locked the previous owner's answer or lost a
	// packet.
	BurstCount int `json:"burstCount,omitempty"`
	// BurstSpacing: time between them. Default 1100ms: just beyond Linux's neigh locktime of 1 s (100 jiffies),
	// inside which a neighbour ignores a non-gratuitous update.
	BurstSpacing metav1.Duration `json:"burstSpacing,omitempty"`
	// Interval: re-announce every held VIP this often; 0 (default) disables it. Useful when switches age out MAC
	// tables of quiet hosts faster than traffic refreshes them.
	Interval metav1.Duration `json:"interval,omitempty"`
}

// Drain configures the planned handoff of a node that becomes unfit while holding VIPs.
type Drain struct {
	// Timeout: how long the unfit owner keeps a VIP while waiting for the new owner's announcement. Default 3s:
	// detection is not involved (the unfit flag is gossiped in ~100 ms), so a new owner normally announces within
	// 200 ms; 3 s covers a loaded node without holding a stop for long.
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// Linger: how long the address stays after the new owner's announcement was seen. Default 100ms: frames
	// already queued toward this node's MAC are still delivered and answered.
	Linger metav1.Duration `json:"linger,omitempty"`
}

// Coalesce configures member-event coalescing (serf's quantum + quiescence).
type Coalesce struct {
	// Quiescence: a batch ends after this long without a new event. Default 20ms: a node failure arrives as one
	// event, a join with push/pull as a few within milliseconds; this adds 20 ms to a ~1 s failover.
	Quiescence metav1.Duration `json:"quiescence,omitempty"`
	// Quantum: a batch never lasts longer than this after its first event. Default 100ms: a trickle of meta
	// updates (fitness flapping elsewhere) still re-ranks ten times a second.
	Quantum metav1.Duration `json:"quantum,omitempty"`
}

// WithDefaults returns c with every unset field defaulted (the reasons are on the fields).
func (c Config) WithDefaults() Config {
	c.Memberlist = c.Memberlist.WithDefaults()
	if c.ARPSysctls == "" {
		c.ARPSysctls = SysctlSet
	}
	if c.MinMembers == 0 {
		c.MinMembers = 1
	}
	if c.Announce.BurstCount == 0 {
		c.Announce.BurstCount = 3
	}
	def(&c.Announce.BurstSpacing, 1100*time.Millisecond)
	def(&c.Drain.Timeout, 3*time.Second)
	def(&c.Drain.Linger, 100*time.Millisecond)
	def(&c.Coalesce.Quiescence, 20*time.Millisecond)
	def(&c.Coalesce.Quantum, 100*time.Millisecond)
	return c
}

func def(d *metav1.Duration, v time.Duration) {
	if d.Duration == 0 {
		d.Duration = v
	}
}

// Validate checks a defaulted Config and returns errors.Join of every problem, each naming the field path under
// "vip", the value and the limit. Host checks (interfaces exist, sysctls) happen in Run.
func (c Config) Validate() error {
	var errs []error
	fail := func(field string, err error, format string, args ...any) {
		errs = append(errs, fmt.Errorf("vip.%s: %w: %s", field, err, fmt.Sprintf(format, args...)))
	}
	errs = append(errs, c.Memberlist.Validate("vip.memberlist"))
	if len(c.Interfaces) == 0 {
		fail("interfaces", ErrRequired, "at least one interface to add VIPs to")
	}
	for i, ifn := range c.Interfaces {
		if ifn == "" || len(ifn) > 15 || slices.Contains(c.Interfaces[:i], ifn) {
			fail(fmt.Sprintf("interfaces[%d]", i), ErrInvalid, "%q: empty, longer than IFNAMSIZ-1 (15) or duplicate", ifn)
		}
	}
	if !slices.Contains([]string{SysctlSet, SysctlVerify, SysctlIgnore}, c.ARPSysctls) {
		fail("arpSysctls", ErrInvalid, "%q, want set, verify or ignore", c.ARPSysctls)
	}
	if c.MinMembers < 1 || c.MinMembers > 64 {
		fail("minMembers", ErrRange, "%d, want 1..64", c.MinMembers)
	}
	if n := c.Announce.BurstCount; n < 1 || n > 20 {
		fail("announce.burstCount", ErrRange, "%d, want 1..20", n)
	}
	if d := c.Announce.BurstSpacing.Duration; d < 100*time.Millisecond || d > time.Minute {
		fail("announce.burstSpacing", ErrRange, "%v, want 100ms..1m", d)
	}
	if d := c.Announce.Interval.Duration; d != 0 && d < time.Second {
		fail("announce.interval", ErrRange, "%v, want 0 (off) or at least 1s", d)
	}
	if d := c.Drain.Timeout.Duration; d < 100*time.Millisecond || d > 5*time.Minute {
		fail("drain.timeout", ErrRange, "%v, want 100ms..5m", d)
	}
	if d := c.Drain.Linger.Duration; d < 0 || d > 10*time.Second {
		fail("drain.linger", ErrRange, "%v, want 0..10s", d)
	}
	if q := c.Coalesce.Quiescence.Duration; q < time.Millisecond || q > c.Coalesce.Quantum.Duration {
		fail("coalesce.quiescence", ErrRange, "%v, want 1ms..quantum (%v)", q, c.Coalesce.Quantum.Duration)
	}
	if q := c.Coalesce.Quantum.Duration; q > 10*time.Second {
		fail("coalesce.quantum", ErrRange, "%v, want at most 10s", q)
	}
	if len(c.IPAddressPools) == 0 {
		fail("ipAddressPools", ErrRequired, "at least one pool")
	}
	errs = append(errs, pool.Validate("vip", c.IPAddressPools, c.L2Advertisements, c.Interfaces))
	return errors.Join(errs...)
}
