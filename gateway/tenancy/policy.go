// Package tenancy holds the admin's rules for what a tenant may claim and reach, as pure functions.
//
// A tenant is a namespace of a remote cluster, or the group of that cluster's namespaces sharing
// the value of a configured label (e.g. an owner label). Tenants own routes, TLS Secrets and
// Services; the admin owns listeners, hostname policy, quotas and limits. The gateway pipeline asks
// this package: who is the tenant of this namespace, may this tenant use this hostname, what is its
// quota, may traffic go to this endpoint address.
package tenancy

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/edgegate/edgegate/gateway/model"
)

// Reasons used in model.Rejection for tenancy rules.
const (
	ReasonHostOwnedByAnotherTenant = "HostOwnedByAnotherTenant"
	ReasonHostnameNotAllowed       = "HostnameNotAllowed"
	ReasonHostnameReserved         = "HostnameReserved"
	ReasonCatchAllNotAllowed       = "CatchAllNotAllowed"
	ReasonQuotaExceeded            = "QuotaExceeded"
	ReasonBackendNotAllowed        = "BackendNotAllowed"
	ReasonAnnotationNotAllowed     = "AnnotationNotAllowed"
)

// Quota bounds what one tenant may configure. Zero means unlimited.
type Quota struct {
	MaxRoutes       int
	MaxHosts        int
	MaxCertificates int
}

// Tenant holds per-tenant overrides.
type Tenant struct {
	// AllowedSuffixes replace the global ones for this tenant when set.
	AllowedSuffixes []string
	// Pinned hostnames (exact or "*." wildcard) this tenant may use whatever the suffixes say.
	Pinned []string
	Quota  *Quota
	// HostLimits and BackendLimits replace the defaults for this tenant's hosts and backends.
	HostLimits    *model.HostLimits
	BackendLimits *model.BackendLimits
}

// Policy is the admin's tenancy configuration. It is immutable once built; all methods are safe
// for concurrent use.
type Policy struct {
	// TenantLabel per remote cluster: namespaces with the same value of this label are one tenant.
	// Unset: every namespace is its own tenant.
	TenantLabel map[string]string
	// AllowedSuffixes: a tenant's hostnames must equal or end in one of these (after the dot).
	// "{tenant}" is replaced by the tenant's name. Empty: any hostname is allowed.
	AllowedSuffixes []string
	// Reserved hostnames (exact or "*." wildcard) no tenant may use, nor cover with a wildcard.
	Reserved []string
	// Tenants maps a tenant name to its overrides.
	Tenants map[string]Tenant
	// DefaultQuota applies to tenants without their own.
	DefaultQuota Quota
	// HostLimits apply to every host (rate, body size, timeouts); BackendLimits to every backend
	// (circuit breakers, outlier detection); tenants may have their own.
	HostLimits    model.HostLimits
	BackendLimits model.BackendLimits
	// CatchAllNamespaces may route unmatched hosts (Ingress rules without a host, defaultBackend of an
	// Ingress without rules), as "cluster/namespace"; "*" allows every namespace.
	CatchAllNamespaces []string
	// ExternalNames are the ExternalName destinations tenants may use: exact DNS names or "*."
	// wildcards covering one label. Empty: ExternalName Services are refused. Envoy resolves these
	// names itself, so the deny-list cannot check their addresses: list only names the admin trusts.
	ExternalNames []string
	// DeniedRanges are endpoint addresses no route may reach, on top of the built-in ones.
	DeniedRanges []netip.Prefix
	// NodeAddresses are this node's own addresses, never a backend. They change at run time (VIPs
	// arrive, interfaces come and go): the appliance keeps the set current.
	NodeAddresses *AddressSet
}

// AddressSet is a set of addresses that one goroutine replaces while others read it.
type AddressSet struct {
	set atomic.Pointer[map[netip.Addr]bool]
}

// NewAddressSet returns a set holding addrs.
func NewAddressSet(addrs ...netip.Addr) *AddressSet {
	s := &AddressSet{}
	s.Replace(addrs)
	return s
}

// Replace sets the members and reports whether they changed.
func (s *AddressSet) Replace(addrs []netip.Addr) bool {
	m := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		m[a.Unmap()] = true
	}
	old := s.set.Swap(&m)
	if old == nil || len(*old) != len(m) {
		return true
	}
	for a := range m {
		if !(*old)[a] {
			return true
		}
	}
	return false
}

// Contains reports whether addr is in the set. A nil set is empty.
func (s *AddressSet) Contains(addr netip.Addr) bool {
	if s == nil {
		return false
	}
	m := s.set.Load()
	return m != nil && (*m)[addr.Unmap()]
}

// ID names a tenant across clusters.
type ID struct {
	Cluster string
	Name    string
	// Unlabelled marks a namespace without the tenant label in a cluster that groups namespaces by
	// that label. Such a namespace is a tenant of its own, never the label group of the same name
	// (anyone who may create a namespace could otherwise join any group by naming it after the
	// group's label value), and it gets no per-tenant policy: no {tenant} suffix, no overrides.
	Unlabelled bool
}

func (id ID) String() string {
	if id.Unlabelled {
		return id.Cluster + "/namespace:" + id.Name
	}
	return id.Cluster + "/" + id.Name
}

// TenantOf returns the tenant a namespace belongs to.
func (p *Policy) TenantOf(cluster, namespace string, nsLabels map[string]string) ID {
	if label := p.TenantLabel[cluster]; label != "" {
		if v := nsLabels[label]; v != "" {
			return ID{Cluster: cluster, Name: v}
		}
		return ID{Cluster: cluster, Name: namespace, Unlabelled: true}
	}
	return ID{Cluster: cluster, Name: namespace}
}

// tenant returns the per-tenant overrides that apply to id.
func (p *Policy) tenant(id ID) (Tenant, bool) {
	if id.Unlabelled {
		return Tenant{}, false
	}
	t, ok := p.Tenants[id.Name]
	return t, ok
}

// QuotaOf returns the tenant's quota.
func (p *Policy) QuotaOf(id ID) Quota {
	if t, ok := p.tenant(id); ok && t.Quota != nil {
		return *t.Quota
	}
	return p.DefaultQuota
}

// HostLimitsOf returns the limits of a tenant's hosts.
func (p *Policy) HostLimitsOf(id ID) model.HostLimits {
	if t, ok := p.tenant(id); ok && t.HostLimits != nil {
		return *t.HostLimits
	}
	return p.HostLimits
}

// BackendLimitsOf returns the limits of a tenant's backends.
func (p *Policy) BackendLimitsOf(id ID) model.BackendLimits {
	if t, ok := p.tenant(id); ok && t.BackendLimits != nil {
		return *t.BackendLimits
	}
	return p.BackendLimits
}

// ExternalNameAllowed reports whether a (normalised) ExternalName destination is allowed.
func (p *Policy) ExternalNameAllowed(name string) bool {
	for _, e := range p.ExternalNames {
		if e == name || Covers(e, name) {
			return true
		}
	}
	return false
}

// CatchAllAllowed reports whether a namespace may route unmatched hosts.
func (p *Policy) CatchAllAllowed(cluster, namespace string) bool {
	for _, n := range p.CatchAllNamespaces {
		if n == "*" || n == cluster+"/"+namespace {
			return true
		}
	}
	return false
}

// HostError explains why a tenant may not use a hostname.
type HostError struct {
	Reason  string
	Message string
}

func (e *HostError) Error() string { return e.Message }

// CheckHost reports whether the tenant may claim host (normalised: lower case, no trailing dot;
// exact or "*." wildcard). Ownership among tenants is decided elsewhere; this is the admin's
// policy only.
func (p *Policy) CheckHost(id ID, host string) *HostError {
	for _, r := range p.Reserved {
		if Overlap(r, host) {
			return &HostError{ReasonHostnameReserved, fmt.Sprintf("host %q is reserved by the platform (%s)", host, r)}
		}
	}
	t, _ := p.tenant(id)
	for _, pin := range t.Pinned {
		if pin == host || (strings.HasPrefix(pin, "*.") && !strings.HasPrefix(host, "*.") && Covers(pin, host)) {
			return nil
		}
	}
	suffixes := p.AllowedSuffixes
	if t.AllowedSuffixes != nil {
		suffixes = t.AllowedSuffixes
	}
	if len(suffixes) == 0 && len(t.Pinned) == 0 {
		return nil
	}
	name := strings.TrimPrefix(host, "*.")
	for _, s := range suffixes {
		if id.Unlabelled && strings.Contains(s, "{tenant}") {
			continue // an unlabelled namespace has no tenant name to put there
		}
		suffix := strings.ReplaceAll(s, "{tenant}", id.Name)
		if name == suffix || strings.HasSuffix(name, "."+suffix) {
			return nil
		}
	}
	allowed := make([]string, 0, len(suffixes))
	for _, s := range suffixes {
		allowed = append(allowed, "*."+strings.ReplaceAll(s, "{tenant}", id.Name))
	}
	return &HostError{ReasonHostnameNotAllowed, fmt.Sprintf("host %q is not allowed for tenant %s (allowed: %s; pinned: %s)",
		host, id.Name, strings.Join(allowed, ", "), strings.Join(t.Pinned, ", "))}
}

// Covers reports whether wildcard w ("*.example.com") matches exact host h ("a.example.com"):
// exactly one label in front of w's suffix.
func Covers(w, h string) bool {
	suffix, ok := strings.CutPrefix(w, "*")
	if !ok || strings.HasPrefix(h, "*.") {
		return false
	}
	label, ok := strings.CutSuffix(h, suffix)
	return ok && label != "" && !strings.Contains(label, ".")
}

// Overlap reports whether two hostnames can match the same request host: equal, or a wildcard
// covering the other.
func Overlap(a, b string) bool { return a == b || Covers(a, b) || Covers(b, a) }

// Parent returns the wildcard that covers an exact host ("a.example.com" → "*.example.com"), or ""
// for a wildcard or a single-label name.
func Parent(host string) string {
	if strings.HasPrefix(host, "*") {
		return ""
	}
	i := strings.IndexByte(host, '.')
	if i < 0 {
		return ""
	}
	return "*" + host[i:]
}

// AlwaysDenied are never reachable as backends: the node itself, link-local (cloud metadata at
// 169.254.169.254), multicast and unspecified addresses. The appliance always puts them in
// Policy.DeniedRanges (configuration can add ranges, never remove these); the policy itself is
// plain data so in-process tests can use loopback backends.
var AlwaysDenied = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("ff00::/8"),
	netip.MustParsePrefix("255.255.255.255/32"),
}

// EndpointAllowed reports whether traffic may be sent to addr.
func (p *Policy) EndpointAllowed(addr netip.Addr) bool {
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	for _, r := range p.DeniedRanges {
		if r.Contains(addr) {
			return false
		}
	}
	return !p.NodeAddresses.Contains(addr)
}
