package config

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Tenancy is the admin's multi-tenancy policy (see gateway/tenancy). Tenants are namespaces, or
// groups of namespaces sharing the value of clusters[].tenantLabel.
type Tenancy struct {
	Hostnames Hostnames `json:"hostnames,omitempty"`
	// CatchAllNamespaces ("cluster/namespace", or "*") may route hosts nobody else routes: Ingress
	// rules without a host, and the defaultBackend of an Ingress without rules. Default: none, so no
	// tenant can capture traffic for hosts it does not own.
	CatchAllNamespaces []string `json:"catchAllNamespaces,omitempty"`
	// Quota applies to every tenant without its own.
	Quota Quota `json:"quota,omitempty"`
	// Tenants holds per-tenant overrides, by tenant name.
	Tenants map[string]TenantPolicy `json:"tenants,omitempty"`
	// ExternalNames allows ExternalName Services whose destination is one of these DNS names (or
	// covered by a "*." wildcard). Default: none, so ExternalName Services are refused. Envoy
	// resolves these names itself, past the endpoint deny-list: list only destinations you trust.
	ExternalNames []string `json:"externalNames,omitempty"`
	// DeniedEndpointRanges are never used as backends, on top of the built-in loopback, link-local
	// (cloud metadata), multicast and unspecified ranges and this node's own addresses: list the
	// platform's control-plane and node networks here.
	DeniedEndpointRanges []string `json:"deniedEndpointRanges,omitempty"`
}

// Hostnames is the hostname policy.
type Hostnames struct {
	// AllowedSuffixes: every tenant hostname must be the suffix or end in "."+suffix; "{tenant}" is
	// replaced by the tenant's name (e.g. "{tenant}.apps.example.com"). Empty: any hostname.
	AllowedSuffixes []string `json:"allowedSuffixes,omitempty"`
	// Reserved hostnames (exact or "*." wildcard) no tenant may use or cover with a wildcard.
	Reserved []string `json:"reserved,omitempty"`
}

// TenantPolicy overrides the defaults for one tenant.
type TenantPolicy struct {
	AllowedSuffixes []string `json:"allowedSuffixes,omitempty"`
	// PinnedHostnames are custom domains this tenant may use whatever the suffixes say.
	PinnedHostnames []string `json:"pinnedHostnames,omitempty"`
	Quota           *Quota   `json:"quota,omitempty"`
	// HostLimits and BackendLimits replace limits.host / limits.backend for this tenant (fields left
	// unset take the defaults, not the global values).
	HostLimits    *HostLimits    `json:"hostLimits,omitempty"`
	BackendLimits *BackendLimits `json:"backendLimits,omitempty"`
}

// Quota bounds one tenant. Zero fields take the defaults; -1 means unlimited.
type Quota struct {
	MaxRoutes       int `json:"maxRoutes,omitempty"`
	MaxHosts        int `json:"maxHosts,omitempty"`
	MaxCertificates int `json:"maxCertificates,omitempty"`
}

// Default quotas: generous for one application team, small enough that no single tenant can fill
// the edge's route table (scale target: 200k routes across tens of thousands of tenants).
const (
	DefaultMaxRoutes       = 10000
	DefaultMaxHosts        = 1000
	DefaultMaxCertificates = 1000
)

func (q *Quota) defaults() {
	if q.MaxRoutes == 0 {
		q.MaxRoutes = DefaultMaxRoutes
	}
	if q.MaxHosts == 0 {
		q.MaxHosts = DefaultMaxHosts
	}
	if q.MaxCertificates == 0 {
		q.MaxCertificates = DefaultMaxCertificates
	}
}

func (t *Tenancy) defaults() {
	t.Quota.defaults()
	for name, tp := range t.Tenants {
		if tp.Quota != nil {
			q := *tp.Quota
			q.defaults()
			tp.Quota = &q
		}
		if tp.HostLimits != nil {
			h := *tp.HostLimits
			h.defaults()
			tp.HostLimits = &h
		}
		if tp.BackendLimits != nil {
			b := *tp.BackendLimits
			b.defaults()
			tp.BackendLimits = &b
		}
		t.Tenants[name] = tp
	}
}

func (t *Tenancy) validate(p *problems) {
	checkHostPatterns := func(path string, hosts []string, wildcards bool) {
		for i, h := range hosts {
			name := strings.TrimPrefix(h, "*.")
			if !wildcards && name != h {
				p.add(fmt.Sprintf("%s[%d]", path, i), quote(h), "must not be a wildcard")
				continue
			}
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || h != strings.ToLower(h) {
				p.add(fmt.Sprintf("%s[%d]", path, i), quote(h), "must be a lower-case DNS name, optionally starting with *.")
			}
		}
	}
	checkSuffixes := func(path string, suffixes []string) {
		for i, s := range suffixes {
			name := strings.ReplaceAll(s, "{tenant}", "tenant")
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || strings.Contains(name, "*") {
				p.add(fmt.Sprintf("%s[%d]", path, i), quote(s), "must be a DNS suffix, optionally with {tenant}")
			}
		}
	}
	checkSuffixes("tenancy.hostnames.allowedSuffixes", t.Hostnames.AllowedSuffixes)
	checkHostPatterns("tenancy.hostnames.reserved", t.Hostnames.Reserved, true)
	checkHostPatterns("tenancy.externalNames", t.ExternalNames, true)
	for i, n := range t.CatchAllNamespaces {
		if n == "*" {
			continue
		}
		cl, ns, ok := strings.Cut(n, "/")
		if !ok || len(validation.IsDNS1123Label(cl)) > 0 || len(validation.IsDNS1123Label(ns)) > 0 {
			p.add(fmt.Sprintf("tenancy.catchAllNamespaces[%d]", i), quote(n), `must be "cluster/namespace" or "*"`)
		}
	}
	checkQuota := func(path string, q Quota) {
		for _, f := range []struct {
			name string
			v    int
		}{{"maxRoutes", q.MaxRoutes}, {"maxHosts", q.MaxHosts}, {"maxCertificates", q.MaxCertificates}} {
			if f.v < -1 || f.v > 1_000_000 {
				p.add(path+"."+f.name, f.v, "must be -1 (unlimited) or between 1 and 1000000")
			}
		}
	}
	checkQuota("tenancy.quota", t.Quota)
	for name, tp := range t.Tenants {
		path := "tenancy.tenants." + name
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			p.add(path, quote(name), "tenant name must be a namespace name or tenant label value")
		}
		checkSuffixes(path+".allowedSuffixes", tp.AllowedSuffixes)
		checkHostPatterns(path+".pinnedHostnames", tp.PinnedHostnames, true)
		if tp.Quota != nil {
			checkQuota(path+".quota", *tp.Quota)
		}
		if tp.HostLimits != nil {
			tp.HostLimits.validate(p, path+".hostLimits")
		}
		if tp.BackendLimits != nil {
			tp.BackendLimits.validate(p, path+".backendLimits")
		}
	}
	for i, r := range t.DeniedEndpointRanges {
		if _, err := netip.ParsePrefix(r); err != nil {
			p.add(fmt.Sprintf("tenancy.deniedEndpointRanges[%d]", i), quote(r), "must be a CIDR prefix")
		}
	}
}
