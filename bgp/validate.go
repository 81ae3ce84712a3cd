package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Validation sentinels; every problem Validate reports wraps one of them in a *FieldError.
var (
	// ErrRequired: a mandatory field is empty.
	ErrRequired = errors.New("required")
	// ErrInvalid: a value is malformed or out of range.
	ErrInvalid = errors.New("invalid")
	// ErrUnsupported: a MetalLB field edgegate's GoBGP speaker cannot honour.
	ErrUnsupported = errors.New("not supported")
	// ErrConflict: two settings contradict each other, or a name is defined twice.
	ErrConflict = errors.New("conflict")
	// ErrUnknownRef: a reference to a peer or community alias that does not exist.
	ErrUnknownRef = errors.New("unknown reference")
)

// FieldError is one validation problem: where, what value, and what the limit is.
type FieldError struct {
	Path  string // e.g. bgp.peers[0].spec.holdTime
	Value any    // the offending value (never a password)
	Limit string // what would be accepted
	Err   error  // one of the sentinels above
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %v: %s: %v", e.Path, e.Value, e.Limit, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

type problems []error

func (p *problems) add(path string, value any, limit string, err error) {
	*p = append(*p, &FieldError{Path: path, Value: value, Limit: limit, Err: err})
}

const (
	asTrans      = 23456      // RFC 6793 AS_TRANS, never a real AS
	maxASN       = 4294967294 // 4294967295 is reserved (RFC 7300)
	maxHoldTime  = 65535 * time.Second
	minHoldTime  = 3 * time.Second // RFC 4271 §4.2: zero or at least three seconds
	maxTTLHops   = 254
	maxPrepend   = 16 // more than a handful of prepends is a typo, and long paths get filtered
	maxDrainWait = 10 * time.Minute
)

// Validate checks a defaulted config (see WithDefaults) and returns every problem at once, joined with
// errors.Join; each is a *FieldError naming the path, the value and the limit. It touches no files or
// interfaces: password files are read when the config is applied.
func (c Config) Validate() error {
	var p problems
	validateASN(&p, "bgp.asn", c.ASN, true)
	if c.RouterID == "" {
		p.add("bgp.routerID", c.RouterID, "an IPv4 address (GoBGP has no automatic router ID)", ErrRequired)
	} else if a, err := netip.ParseAddr(c.RouterID); err != nil || !a.Is4() || a.IsUnspecified() {
		p.add("bgp.routerID", c.RouterID, "an IPv4 address other than 0.0.0.0", ErrInvalid)
	}
	if c.ListenPort != nil && *c.ListenPort != -1 && (*c.ListenPort < 1 || *c.ListenPort > 65535) {
		p.add("bgp.listenPort", *c.ListenPort, "-1 (no listener) or 1-65535", ErrInvalid)
	}
	if c.NextHopIPv4 != "" {
		if a, err := netip.ParseAddr(c.NextHopIPv4); err != nil || !a.Is4() || a.IsUnspecified() {
			p.add("bgp.nextHopIPv4", c.NextHopIPv4, "an IPv4 address", ErrInvalid)
		}
	}
	if c.NextHopIPv6 != "" {
		if a, err := netip.ParseAddr(c.NextHopIPv6); err != nil || !a.Is6() || a.Is4In6() || !a.IsGlobalUnicast() {
			p.add("bgp.nextHopIPv6", c.NextHopIPv6, "a global unicast IPv6 address (not link-local, not IPv4-mapped)", ErrInvalid)
		}
	}
	validateDuration(&p, "bgp.idleHoldTimeAfterReset", c.IdleHoldTimeAfterReset, time.Second, time.Hour)
	validateDuration(&p, "bgp.drainWait", c.DrainWait, 0, maxDrainWait)
	validateDuration(&p, "bgp.gracefulRestartTime", c.GracefulRestartTime, time.Second, 4095*time.Second) // 12-bit field, RFC 4724

	peerNames := c.validatePeers(&p)
	aliases := c.validateCommunities(&p)
	c.validateAdvertisements(&p, peerNames, aliases)
	return errors.Join(p...)
}

// Warnings returns problems that do not stop the config from loading (the appliance logs them).
func (c Config) Warnings() []string {
	opts := c.peerOptions()
	var w []string
	for i, peer := range c.Peers {
		if peer.Spec.Password == "" {
			continue
		}
		path := fmt.Sprintf("bgp.peers[%d].spec.password", i)
		if opts[peer.Name].PasswordFile != "" {
			w = append(w, path+": inline password ignored, peerOptions passwordFile is used")
		} else {
			w = append(w, path+": inline password is stored in the config file; prefer peerOptions passwordFile")
		}
	}
	return w
}

func (c Config) peerOptions() map[string]PeerOptions {
	m := make(map[string]PeerOptions, len(c.PeerOptions))
	for _, o := range c.PeerOptions {
		m[o.Peer] = o
	}
	return m
}

func validateASN(p *problems, path string, asn uint32, required bool) {
	switch {
	case asn == 0 && required:
		p.add(path, asn, "1-4294967294", ErrRequired)
	case asn == asTrans:
		p.add(path, asn, "not 23456 (AS_TRANS, RFC 6793)", ErrInvalid)
	case asn > maxASN:
		p.add(path, asn, "1-4294967294 (4294967295 is reserved, RFC 7300)", ErrInvalid)
	}
}

func validateDuration(p *problems, path string, d *metav1.Duration, lo, hi time.Duration) {
	if d == nil {
		return
	}
	if d.Duration < lo || d.Duration > hi {
		p.add(path, d.Duration, fmt.Sprintf("%v-%v", lo, hi), ErrInvalid)
	}
}

func wholeSeconds(d time.Duration) bool { return d%time.Second == 0 }

func (c Config) validatePeers(p *problems) map[string]bool {
	names := map[string]bool{}
	addrs := map[netip.Addr]string{}
	for i, peer := range c.Peers {
		path := fmt.Sprintf("bgp.peers[%d]", i)
		s := peer.Spec
		sp := path + ".spec"
		if peer.Name == "" {
			p.add(path+".metadata.name", "", "a unique name", ErrRequired)
		} else if names[peer.Name] {
			p.add(path+".metadata.name", peer.Name, "unique among peers", ErrConflict)
		}
		names[peer.Name] = true

		validateASN(p, sp+".myASN", s.MyASN, true)
		validateASN(p, sp+".peerASN", s.ASN, s.DynamicASN == "")
		if s.DynamicASN != "" {
			p.add(sp+".dynamicASN", s.DynamicASN, "set peerASN explicitly (GoBGP needs the remote AS)", ErrUnsupported)
		}
		if s.LocalASN != 0 {
			p.add(sp+".localASN", s.LocalASN, "use myASN for a per-peer local AS", ErrUnsupported)
		}
		var peerAddr netip.Addr
		switch {
		case s.Interface != "":
			p.add(sp+".interface", s.Interface, "peerAddress (unnumbered BGP is not supported)", ErrUnsupported)
		case s.Address == "":
			p.add(sp+".peerAddress", "", "an IPv4 or IPv6 address", ErrRequired)
		default:
			a, err := netip.ParseAddr(s.Address)
			if err != nil || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
				p.add(sp+".peerAddress", s.Address, "a unicast IPv4 or IPv6 address without zone", ErrInvalid)
			} else {
				peerAddr = a.Unmap()
				if other, dup := addrs[peerAddr]; dup {
					p.add(sp+".peerAddress", s.Address, "unique (also used by peer "+other+")", ErrConflict)
				}
				addrs[peerAddr] = peer.Name
			}
		}
		if s.SrcAddress != "" {
			a, err := netip.ParseAddr(s.SrcAddress)
			if err != nil || a.IsUnspecified() {
				p.add(sp+".sourceAddress", s.SrcAddress, "an address of this node", ErrInvalid)
			} else if peerAddr.IsValid() && a.Unmap().Is4() != peerAddr.Is4() {
				p.add(sp+".sourceAddress", s.SrcAddress, "same address family as peerAddress", ErrConflict)
			}
		}
		if s.Port == 0 {
			p.add(sp+".peerPort", s.Port, "1-65535", ErrInvalid)
		}
		var hold, keep time.Duration
		if s.HoldTime != nil {
			hold = s.HoldTime.Duration
			if (hold != 0 && hold < minHoldTime) || hold > maxHoldTime || !wholeSeconds(hold) {
				p.add(sp+".holdTime", hold, "0 or 3s-65535s in whole seconds (RFC 4271)", ErrInvalid)
			}
		}
		if s.KeepaliveTime != nil {
			keep = s.KeepaliveTime.Duration
			switch {
			case keep < 0 || !wholeSeconds(keep):
				p.add(sp+".keepaliveTime", keep, "whole seconds", ErrInvalid)
			case hold == 0 && keep != 0:
				p.add(sp+".keepaliveTime", keep, "0 when holdTime is 0", ErrConflict)
			case hold != 0 && (keep < time.Second || keep >= hold):
				p.add(sp+".keepaliveTime", keep, fmt.Sprintf("1s up to below holdTime %v (hold/3 recommended)", hold), ErrInvalid)
			}
		}
		if s.ConnectTime != nil {
			ct := s.ConnectTime.Duration
			if ct < time.Second || ct > 65535*time.Second || !wholeSeconds(ct) {
				p.add(sp+".connectTime", ct, "1s-65535s in whole seconds", ErrInvalid)
			}
		}
		if s.RouterID != "" && s.RouterID != c.RouterID {
			p.add(sp+".routerID", s.RouterID, "empty or equal to bgp.routerID "+c.RouterID+" (GoBGP has one router ID per speaker)", ErrUnsupported)
		}
		for j, sel := range s.NodeSelectors {
			if _, err := metav1.LabelSelectorAsSelector(&sel); err != nil {
				p.add(fmt.Sprintf("%s.nodeSelectors[%d]", sp, j), sel.String(), "a valid label selector ("+err.Error()+")", ErrInvalid)
			}
		}
		if s.PasswordSecret.Name != "" || s.PasswordSecret.Namespace != "" {
			p.add(sp+".passwordSecret", s.PasswordSecret.Name, "peerOptions passwordFile (there are no Kubernetes Secrets on the edge node)", ErrUnsupported)
		}
		if s.BFDProfile != "" {
			p.add(sp+".bfdProfile", s.BFDProfile, "empty: GoBGP v3 has no BFD; a hung node is detected by the hold timer (3s minimum), so lower holdTime instead", ErrUnsupported)
		}
		if s.DualStackAddressFamily && peerAddr.IsValid() {
			if peerAddr.Is4() && c.NextHopIPv6 == "" {
				p.add(sp+".dualStackAddressFamily", true, "bgp.nextHopIPv6 set (IPv6 VIPs over an IPv4 session need an explicit global next hop)", ErrRequired)
			}
			if peerAddr.Is6() && c.NextHopIPv4 == "" {
				p.add(sp+".dualStackAddressFamily", true, "bgp.nextHopIPv4 set (IPv4 VIPs over an IPv6 session need an explicit next hop)", ErrRequired)
			}
		}
		if s.VRFName != "" {
			p.add(sp+".vrf", s.VRFName, "empty (VRFs are not supported)", ErrUnsupported)
		}
	}
	seen := map[string]bool{}
	for i, o := range c.PeerOptions {
		path := fmt.Sprintf("bgp.peerOptions[%d]", i)
		switch {
		case o.Peer == "":
			p.add(path+".peer", "", "the name of a peer", ErrRequired)
		case !names[o.Peer]:
			p.add(path+".peer", o.Peer, "the name of a peer in bgp.peers", ErrUnknownRef)
		case seen[o.Peer]:
			p.add(path+".peer", o.Peer, "one peerOptions entry per peer", ErrConflict)
		}
		seen[o.Peer] = true
		if o.PasswordFile != "" && !filepath.IsAbs(o.PasswordFile) {
			p.add(path+".passwordFile", o.PasswordFile, "an absolute path", ErrInvalid)
		}
		if o.TTLSecurityHops > maxTTLHops {
			p.add(path+".ttlSecurityHops", o.TTLSecurityHops, "0 (off) or 1-254", ErrInvalid)
		}
		if o.TTLSecurityHops > 0 {
			for j, peer := range c.Peers {
				if peer.Name == o.Peer && peer.Spec.EBGPMultiHop {
					p.add(path+".ttlSecurityHops", o.TTLSecurityHops, fmt.Sprintf("not together with bgp.peers[%d].spec.ebgpMultiHop (GTSM needs TTL 255 on the wire)", j), ErrConflict)
				}
			}
		}
	}
	return names
}

func (c Config) validateCommunities(p *problems) map[string]string {
	aliases := map[string]string{}
	for i, obj := range c.Communities {
		for j, a := range obj.Spec.Communities {
			path := fmt.Sprintf("bgp.communities[%d].spec.communities[%d]", i, j)
			if a.Name == "" {
				p.add(path+".name", "", "an alias name", ErrRequired)
				continue
			}
			if _, dup := aliases[a.Name]; dup {
				p.add(path+".name", a.Name, "unique across all Community objects", ErrConflict)
			}
			if _, err := parseCommunity(a.Value); err != nil {
				p.add(path+".value", a.Value, err.Error(), ErrInvalid)
			}
			aliases[a.Name] = a.Value
		}
	}
	return aliases
}

func (c Config) validateAdvertisements(p *problems, peers map[string]bool, aliases map[string]string) {
	for i, adv := range c.Advertisements {
		sp := fmt.Sprintf("bgp.advertisements[%d].spec", i)
		s := adv.Spec
		if s.AggregationLength != nil && (*s.AggregationLength < 0 || *s.AggregationLength > 32) {
			p.add(sp+".aggregationLength", *s.AggregationLength, "0-32", ErrInvalid)
		}
		if s.AggregationLengthV6 != nil && (*s.AggregationLengthV6 < 0 || *s.AggregationLengthV6 > 128) {
			p.add(sp+".aggregationLengthV6", *s.AggregationLengthV6, "0-128", ErrInvalid)
		}
		if s.AsPathPrepend > maxPrepend {
			p.add(sp+".asPathPrepend", s.AsPathPrepend, fmt.Sprintf("0-%d", maxPrepend), ErrInvalid)
		}
		for j, name := range s.Communities {
			if _, err := resolveCommunity(name, aliases); err != nil {
				p.add(fmt.Sprintf("%s.communities[%d]", sp, j), name, "an alias from bgp.communities or "+errCommunitySyntax.Error(), ErrUnknownRef)
			}
		}
		for j, name := range s.Peers {
			if !peers[name] {
				p.add(fmt.Sprintf("%s.peers[%d]", sp, j), name, "the name of a peer in bgp.peers", ErrUnknownRef)
			}
		}
		if len(s.ServiceSelectors) > 0 {
			p.add(sp+".serviceSelectors", len(s.ServiceSelectors), "empty (edgegate VIPs are not per Service)", ErrUnsupported)
		}
		for j, sel := range s.NodeSelectors {
			if _, err := metav1.LabelSelectorAsSelector(&sel); err != nil {
				p.add(fmt.Sprintf("%s.nodeSelectors[%d]", sp, j), sel.String(), "a valid label selector ("+err.Error()+")", ErrInvalid)
			}
		}
		for j, sel := range s.IPAddressPoolSelectors {
			if _, err := metav1.LabelSelectorAsSelector(&sel); err != nil {
				p.add(fmt.Sprintf("%s.ipAddressPoolSelectors[%d]", sp, j), sel.String(), "a valid label selector ("+err.Error()+")", ErrInvalid)
			}
		}
	}
}
