package bgp

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	metallbv1beta1 "go.universe.tf/metallb/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// VIP is one address to announce, with the pool it comes from (advertisements select VIPs by pool name
// or pool labels). A bare prefix (Pool "") is matched only by advertisements that select no pools.
type VIP struct {
	Prefix     netip.Prefix
	Pool       string
	PoolLabels map[string]string
}

// VIPsFromAddrs turns addresses into host-route VIPs of one pool.
func VIPsFromAddrs(pool string, addrs ...netip.Addr) []VIP {
	out := make([]VIP, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		out = append(out, VIP{Prefix: netip.PrefixFrom(a, a.BitLen()), Pool: pool})
	}
	return out
}

// Inputs is everything the plan depends on besides the config.
type Inputs struct {
	Node     Node
	VIPs     []VIP
	Announce bool // fit and not yet withdrawn by a drain; false: no routes, export still planned
	Draining bool // graceful-shutdown phase: routes carry 65535:0 and local-pref 0
	// ReadFile reads password files (os.ReadFile in production).
	ReadFile func(path string) ([]byte, error)
}

// Desired is the speaker state the plan asks for.
type Desired struct {
	Peers  map[netip.Addr]PeerConfig
	Routes map[netip.Prefix]Route
	// Export lists, per peer address, the prefixes that peer receives (sorted).
	Export map[netip.Addr][]netip.Prefix
}

// ErrPlan wraps problems found while planning (a password file missing, conflicting attributes). The plan
// is still usable: the affected peer or attribute is left out and the problem reported.
var ErrPlan = errors.New("bgp plan")

// Plan computes the desired speaker state. cfg must be defaulted and valid. It is pure apart from
// in.ReadFile. Peers that do not select this node are left out; so are VIPs of pools no advertisement
// selects.
func Plan(cfg Config, in Inputs) (Desired, error) {
	var errs []error
	d := Desired{
		Peers:  map[netip.Addr]PeerConfig{},
		Routes: map[netip.Prefix]Route{},
		Export: map[netip.Addr][]netip.Prefix{},
	}
	nodeLabels := labels.Set(in.Node.labels())
	opts := cfg.peerOptions()
	nameToAddr := map[string]netip.Addr{}
	for _, p := range cfg.Peers {
		if !matchAny(p.Spec.NodeSelectors, nodeLabels) {
			continue
		}
		pc, err := peerConfig(cfg, p.Name, opts[p.Name], p.Spec.Address, in.ReadFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: peer %s: %w", ErrPlan, p.Name, err))
			continue
		}
		s := p.Spec
		pc.Port = s.Port
		pc.PeerASN = s.ASN
		pc.LocalASN = s.MyASN
		if s.SrcAddress != "" {
			pc.SourceAddress = netip.MustParseAddr(s.SrcAddress).Unmap()
		}
		pc.HoldTime = s.HoldTime.Duration
		pc.KeepaliveTime = s.KeepaliveTime.Duration
		pc.ConnectRetry = s.ConnectTime.Duration
		pc.IdleHoldTime = cfg.IdleHoldTimeAfterReset.Duration
		pc.EBGPMultiHop = s.EBGPMultiHop
		pc.IPv4 = pc.Address.Is4() || s.DualStackAddressFamily
		pc.IPv6 = pc.Address.Is6() || s.DualStackAddressFamily
		pc.GracefulRestart = s.EnableGracefulRestart
		if pc.GracefulRestart {
			pc.RestartTime = cfg.GracefulRestartTime.Duration
		}
		d.Peers[pc.Address] = pc
		nameToAddr[p.Name] = pc.Address
	}

	aliases := map[string]string{}
	for _, obj := range cfg.Communities {
		for _, a := range obj.Spec.Communities {
			aliases[a.Name] = a.Value
		}
	}
	advs := cfg.Advertisements
	if len(advs) == 0 {
		advs = []metallbv1beta1.BGPAdvertisement{{}} // implicit: every VIP to every peer
	}

	// attrs collects per prefix the attributes of every advertisement that selects it, per peer.
	type sel struct {
		route Route
		peers map[netip.Addr]bool
	}
	chosen := map[netip.Prefix]*sel{}
	var nh4, nh6 netip.Addr
	if cfg.NextHopIPv4 != "" {
		nh4 = netip.MustParseAddr(cfg.NextHopIPv4)
	}
	if cfg.NextHopIPv6 != "" {
		nh6 = netip.MustParseAddr(cfg.NextHopIPv6)
	}
	{ // Export is planned even while not announcing, so fitness flaps do not churn the export policy.
		for i, adv := range advs {
			s := adv.Spec
			if !matchAny(s.NodeSelectors, nodeLabels) {
				continue
			}
			var peers []netip.Addr
			if len(s.Peers) == 0 {
				peers = slices.Collect(maps.Keys(d.Peers))
			} else {
				for _, n := range s.Peers {
					if a, ok := nameToAddr[n]; ok {
						peers = append(peers, a)
					}
				}
			}
			comms, large := advCommunities(s.Communities, aliases)
			for _, v := range in.VIPs {
				if !selectsPool(s, v) {
					continue
				}
				pfx := aggregate(v.Prefix, s.AggregationLength, s.AggregationLengthV6)
				r := Route{Prefix: pfx, Communities: comms, LargeCommunities: large, ASPathPrepend: s.AsPathPrepend}
				if pfx.Addr().Is4() {
					r.NextHop = nh4
				} else {
					r.NextHop = nh6
				}
				if s.LocalPref != 0 {
					lp := s.LocalPref
					r.LocalPref = &lp
				}
				cur, ok := chosen[pfx]
				if !ok {
					cur = &sel{route: r, peers: map[netip.Addr]bool{}}
					chosen[pfx] = cur
				} else {
					merged, err := mergeRoute(cur.route, r)
					if err != nil {
						errs = append(errs, fmt.Errorf("%w: advertisements[%d] %s: %w", ErrPlan, i, pfx, err))
					}
					cur.route = merged
				}
				for _, p := range peers {
					cur.peers[p] = true
				}
			}
		}
	}
	for pfx, s := range chosen {
		r := s.route
		if in.Draining {
			r.Communities = sortedUnique(append(slices.Clone(r.Communities), GracefulShutdownCommunity))
			zero := uint32(0) // RFC 8326 §4: the initiator may lower LOCAL_PREF toward iBGP peers
			r.LocalPref = &zero
		}
		sendable := false
		for a := range s.peers {
			pc := d.Peers[a]
			if (pfx.Addr().Is4() && pc.IPv4) || (pfx.Addr().Is6() && pc.IPv6) {
				d.Export[a] = append(d.Export[a], pfx)
				sendable = true
			}
		}
		if sendable && in.Announce {
			d.Routes[pfx] = r
		}
	}
	for a := range d.Export {
		slices.SortFunc(d.Export[a], comparePrefix)
	}
	return d, errors.Join(errs...)
}

func peerConfig(cfg Config, name string, o PeerOptions, addr string, readFile func(string) ([]byte, error)) (PeerConfig, error) {
	pc := PeerConfig{Name: name, Address: netip.MustParseAddr(addr).Unmap(), TTLSecurityHops: o.TTLSecurityHops}
	for _, p := range cfg.Peers {
		if p.Name == name {
			pc.Password = p.Spec.Password
		}
	}
	if o.PasswordFile != "" {
		b, err := readFile(o.PasswordFile)
		if err != nil {
			return PeerConfig{}, fmt.Errorf("read password file: %w", err)
		}
		pc.Password = strings.TrimRight(string(b), "\r\n")
		if pc.Password == "" {
			return PeerConfig{}, fmt.Errorf("password file %s is empty", o.PasswordFile)
		}
	}
	return pc, nil
}

func matchAny(sels []metav1.LabelSelector, set labels.Set) bool {
	if len(sels) == 0 {
		return true
	}
	for i := range sels {
		s, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err == nil && s.Matches(set) {
			return true
		}
	}
	return false
}

func selectsPool(s metallbv1beta1.BGPAdvertisementSpec, v VIP) bool {
	if len(s.IPAddressPools) == 0 && len(s.IPAddressPoolSelectors) == 0 {
		return true
	}
	if v.Pool != "" && slices.Contains(s.IPAddressPools, v.Pool) {
		return true
	}
	return len(s.IPAddressPoolSelectors) > 0 && matchAny(s.IPAddressPoolSelectors, labels.Set(v.PoolLabels))
}

func aggregate(p netip.Prefix, v4, v6 *int32) netip.Prefix {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
	bits := p.Bits()
	if p.Addr().Is4() && v4 != nil {
		bits = min(bits, int(*v4))
	}
	if p.Addr().Is6() && v6 != nil {
		bits = min(bits, int(*v6))
	}
	out, _ := p.Addr().Prefix(bits)
	return out
}

func advCommunities(names []string, aliases map[string]string) ([]uint32, []LargeCommunity) {
	var std []uint32
	var large []LargeCommunity
	for _, n := range names {
		c, err := resolveCommunity(n, aliases)
		if err != nil {
			continue // Validate reports it
		}
		if c.large {
			large = append(large, c.lc)
		} else {
			std = append(std, c.standard)
		}
	}
	return sortedUnique(std), sortedUniqueLarge(large)
}

var errAttrConflict = errors.New("conflicting attributes")

// mergeRoute merges two advertisements of one prefix the way MetalLB does: communities add up; a
// different localPref or asPathPrepend is a conflict (the first one wins).
func mergeRoute(a, b Route) (Route, error) {
	out := a
	out.Communities = sortedUnique(append(slices.Clone(a.Communities), b.Communities...))
	out.LargeCommunities = sortedUniqueLarge(append(slices.Clone(a.LargeCommunities), b.LargeCommunities...))
	var err error
	switch {
	case a.LocalPref == nil:
		out.LocalPref = b.LocalPref
	case b.LocalPref != nil && *a.LocalPref != *b.LocalPref:
		err = fmt.Errorf("%w: localPref %d and %d", errAttrConflict, *a.LocalPref, *b.LocalPref)
	}
	if a.ASPathPrepend != b.ASPathPrepend {
		out.ASPathPrepend = max(a.ASPathPrepend, b.ASPathPrepend)
		err = errors.Join(err, fmt.Errorf("%w: asPathPrepend %d and %d", errAttrConflict, a.ASPathPrepend, b.ASPathPrepend))
	}
	return out, err
}

func sortedUnique(s []uint32) []uint32 {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

func sortedUniqueLarge(s []LargeCommunity) []LargeCommunity {
	if len(s) == 0 {
		return nil
	}
	slices.SortFunc(s, func(a, b LargeCommunity) int {
		return cmp.Or(cmp.Compare(a.Global, b.Global), cmp.Compare(a.Local1, b.Local1), cmp.Compare(a.Local2, b.Local2))
	})
	return slices.Compact(s)
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}
