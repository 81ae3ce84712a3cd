// Package pool turns MetalLB IPAddressPool and L2Advertisement objects, taken as they are from the appliance
// configuration, into the flat list of virtual IPs this node may announce. MetalLB's own defaulting and
// validation are internal to MetalLB and CRD defaults are applied only by an apiserver, so both live here.
//
// Everything in this package is pure: no sockets, no netlink, no clock.
package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	metallbv1beta1 "go.universe.tf/metallb/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// MaxVIPs bounds the number of addresses all pools may expand to. Every VIP becomes an interface address and an
// ARP/NA burst on takeover; more than a few thousand on one edge interface is a configuration mistake (a /16 typed
// instead of a /28), not a deployment.
const MaxVIPs = 4096

// Sentinel errors, wrapped with the field path, the value and the limit.
var (
	ErrInvalid       = errors.New("invalid value")
	ErrRequired      = errors.New("required")
	ErrDuplicate     = errors.New("duplicate")
	ErrUnsupported   = errors.New("field only meaningful inside Kubernetes, not supported by edgegate")
	ErrTooMany       = errors.New("too many addresses")
	ErrUnknownPool   = errors.New("unknown pool")
	ErrUnknownIfname = errors.New("interface not configured")
)

// Ad is one L2Advertisement reduced to what ranking needs.
type Ad struct {
	// Name is the L2Advertisement's metadata.name; members publish their eligibility per ad name.
	Name string
	// Interfaces are the interfaces the VIPs of this ad are added to and announced on.
	Interfaces []string
}

// VIP is one address to be owned by exactly one fit member.
type VIP struct {
	Addr netip.Addr
	// Pool is the IPAddressPool's name.
	Pool string
	// Ads are the names of the L2Advertisements that select the pool, sorted.
	Ads []string
	// Interfaces is the union of the ads' interfaces, sorted.
	Interfaces []string
}

// Set is the expanded configuration: every VIP, sorted by address, and the ads by name.
type Set struct {
	VIPs []VIP
	Ads  map[string]Ad
}

// Validate checks pools and ads as a MetalLB user would write them, returning errors.Join of every problem. path is
// the YAML path prefix (e.g. "vip"); ifnames are the interfaces the node is configured with (an ad without
// interfaces uses all of them).
func Validate(path string, pools []metallbv1beta1.IPAddressPool, ads []metallbv1beta1.L2Advertisement, ifnames []string) error {
	_, err := Expand(pools, ads, ifnames, path)
	return err
}

// Expand validates and expands pools and ads. Pools no ad selects are not announced (as in MetalLB) and yield no
// VIP. path prefixes error messages.
func Expand(pools []metallbv1beta1.IPAddressPool, ads []metallbv1beta1.L2Advertisement, ifnames []string, path string) (Set, error) {
	var errs []error
	fail := func(field string, err error, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %w: %s", path, field, err, fmt.Sprintf(format, args...)))
	}
	addrsByPool := map[string][]netip.Addr{}
	poolLabels := map[string]labels.Set{}
	owner := map[netip.Addr]string{}
	total := 0
	for i, p := range pools {
		f := fmt.Sprintf("ipAddressPools[%d]", i)
		checkMeta(f, p.ObjectMeta, fail)
		if p.Name != "" {
			if _, dup := addrsByPool[p.Name]; dup {
				fail(f+".metadata.name", ErrDuplicate, "pool %q defined twice", p.Name)
			}
		}
		if p.Spec.AllocateTo != nil {
			fail(f+".spec.serviceAllocation", ErrUnsupported, "edgegate announces every address of a pool; remove serviceAllocation")
		}
		if p.Spec.AutoAssign != nil && !*p.Spec.AutoAssign {
			fail(f+".spec.autoAssign", ErrUnsupported, "autoAssign: false only affects Service allocation; remove it")
		}
		if p.Status != (metallbv1beta1.IPAddressPoolStatus{}) {
			fail(f+".status", ErrUnsupported, "status is written by MetalLB's controller; remove it")
		}
		if len(p.Spec.Addresses) == 0 {
			fail(f+".spec.addresses", ErrRequired, "at least one CIDR or range")
		}
		var addrs []netip.Addr
		for j, s := range p.Spec.Addresses {
			af := fmt.Sprintf("%s.spec.addresses[%d]", f, j)
			from, to, err := parseRange(s)
			if err != nil {
				fail(af, ErrInvalid, "%q: %v", s, err)
				continue
			}
			n, ok := rangeSize(from, to, MaxVIPs+1-total)
			if !ok {
				fail(af, ErrTooMany, "%q expands beyond the limit of %d addresses over all pools", s, MaxVIPs)
				total = MaxVIPs + 1
				continue
			}
			total += n
			for a := from; ; a = a.Next() {
				if !(p.Spec.AvoidBuggyIPs && buggy(a)) {
					if prev, dup := owner[a]; dup {
						fail(af, ErrDuplicate, "%s is also in pool %q", a, prev)
					} else {
						owner[a] = p.Name
						addrs = append(addrs, a)
					}
				}
				if a == to {
					break
				}
			}
		}
		addrsByPool[p.Name] = addrs
		poolLabels[p.Name] = labels.Set(p.Labels)
	}

	set := Set{Ads: map[string]Ad{}}
	adsByPool := map[string][]string{}
	for i, a := range ads {
		f := fmt.Sprintf("l2Advertisements[%d]", i)
		checkMeta(f, a.ObjectMeta, fail)
		if _, dup := set.Ads[a.Name]; dup && a.Name != "" {
			fail(f+".metadata.name", ErrDuplicate, "advertisement %q defined twice", a.Name)
		}
		if len(a.Spec.ServiceSelectors) > 0 {
			fail(f+".spec.serviceSelectors", ErrUnsupported, "edgegate has no Services; remove serviceSelectors")
		}
		for j, ifn := range a.Spec.Interfaces {
			if !slices.Contains(ifnames, ifn) {
				fail(fmt.Sprintf("%s.spec.interfaces[%d]", f, j), ErrUnknownIfname, "%q is not in vip.interfaces %v", ifn, ifnames)
			}
		}
		for j, s := range a.Spec.NodeSelectors {
			if _, err := metav1.LabelSelectorAsSelector(&s); err != nil {
				fail(fmt.Sprintf("%s.spec.nodeSelectors[%d]", f, j), ErrInvalid, "%v", err)
			}
		}
		for j, ps := range a.Spec.PreferredNodeSelectors {
			pf := fmt.Sprintf("%s.spec.preferredNodeSelectors[%d]", f, j)
			if ps.Weight < 1 || ps.Weight > 100 {
				fail(pf+".weight", ErrInvalid, "%d, want 1..100 (MetalLB's CRD range)", ps.Weight)
			}
			if _, err := metav1.LabelSelectorAsSelector(&ps.Preference); err != nil {
				fail(pf+".preference", ErrInvalid, "%v", err)
			}
		}
		ifs := slices.Clone(a.Spec.Interfaces)
		if len(ifs) == 0 {
			ifs = slices.Clone(ifnames)
		}
		slices.Sort(ifs)
		set.Ads[a.Name] = Ad{Name: a.Name, Interfaces: slices.Compact(ifs)}

		selected := map[string]bool{}
		for j, name := range a.Spec.IPAddressPools {
			if _, ok := addrsByPool[name]; !ok {
				fail(fmt.Sprintf("%s.spec.ipAddressPools[%d]", f, j), ErrUnknownPool, "%q", name)
				continue
			}
			selected[name] = true
		}
		for j, s := range a.Spec.IPAddressPoolSelectors {
			sel, err := metav1.LabelSelectorAsSelector(&s)
			if err != nil {
				fail(fmt.Sprintf("%s.spec.ipAddressPoolSelectors[%d]", f, j), ErrInvalid, "%v", err)
				continue
			}
			for name, ls := range poolLabels {
				if sel.Matches(ls) {
					selected[name] = true
				}
			}
		}
		if len(a.Spec.IPAddressPools) == 0 && len(a.Spec.IPAddressPoolSelectors) == 0 {
			// MetalLB: an advertisement selecting no pool applies to all of them.
			for name := range addrsByPool {
				selected[name] = true
			}
		}
		for name := range selected {
			adsByPool[name] = append(adsByPool[name], a.Name)
		}
	}
	if len(errs) > 0 {
		return Set{}, errors.Join(errs...)
	}
	for name, addrs := range addrsByPool {
		adNames := adsByPool[name]
		if len(adNames) == 0 {
			continue
		}
		slices.Sort(adNames)
		var ifs []string
		for _, n := range adNames {
			ifs = append(ifs, set.Ads[n].Interfaces...)
		}
		slices.Sort(ifs)
		ifs = slices.Compact(ifs)
		for _, a := range addrs {
			set.VIPs = append(set.VIPs, VIP{Addr: a, Pool: name, Ads: adNames, Interfaces: ifs})
		}
	}
	slices.SortFunc(set.VIPs, func(a, b VIP) int { return a.Addr.Compare(b.Addr) })
	return set, nil
}

// checkMeta accepts name, namespace, labels and annotations (what a MetalLB manifest carries) and rejects the
// fields only an apiserver writes.
func checkMeta(f string, m metav1.ObjectMeta, fail func(string, error, string, ...any)) {
	if m.Name == "" {
		fail(f+".metadata.name", ErrRequired, "every pool and advertisement needs a name")
	}
	if m.UID != "" || m.ResourceVersion != "" || m.Generation != 0 || !m.CreationTimestamp.IsZero() ||
		len(m.ManagedFields) > 0 || len(m.OwnerReferences) > 0 || len(m.Finalizers) > 0 || m.DeletionTimestamp != nil {
		fail(f+".metadata", ErrUnsupported, "server-written metadata (uid, resourceVersion, managedFields, ...); export the manifest, not the live object")
	}
}

// parseRange accepts "CIDR" or "first-last" (MetalLB's two forms), one family per range.
func parseRange(s string) (from, to netip.Addr, err error) {
	s = strings.TrimSpace(s)
	if first, last, ok := strings.Cut(s, "-"); ok {
		from, err = netip.ParseAddr(strings.TrimSpace(first))
		if err != nil {
			return from, to, err
		}
		to, err = netip.ParseAddr(strings.TrimSpace(last))
		if err != nil {
			return from, to, err
		}
		if from.Is4() != to.Is4() {
			return from, to, errors.New("range mixes IPv4 and IPv6")
		}
		if from.Zone() != "" || to.Zone() != "" {
			return from, to, errors.New("zoned addresses are not VIPs")
		}
		if to.Less(from) {
			return from, to, errors.New("range end before start")
		}
		return from, to, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return from, to, err
	}
	// Host bits are masked off, as MetalLB's net.ParseCIDR does, so its manifests keep their meaning.
	p = p.Masked()
	from = p.Addr()
	to = lastAddr(p)
	return from, to, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// rangeSize counts from..to, giving up (ok=false) beyond limit so that a huge IPv6 range costs nothing.
func rangeSize(from, to netip.Addr, limit int) (n int, ok bool) {
	for a := from; n < limit; a = a.Next() {
		n++
		if a == to {
			return n, true
		}
	}
	return n, false
}

// buggy reports IPv4 addresses ending in .0 or .255, which some consumer devices drop (MetalLB's avoidBuggyIPs).
func buggy(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[3] == 0 || b[3] == 255
}
