package gateway

import (
	"fmt"
	"math"
	"unique"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/translate"
)

// claim is what one Ingress asks for, attributed to its tenant. Ownership and quotas are decided on
// claims alone, so they are a pure function of the objects: the same on every node and after every
// restart, and independent of whether the Ingress' Services exist yet.
type claim struct {
	key objKey
	// tenant is interned (8 bytes, not 40: one claim per Ingress); created is the creation time in
	// Unix nanoseconds (math.MinInt64 for none), 8 bytes instead of 24.
	tenant  unique.Handle[tenancy.ID]
	created int64
	translate.Claim
	// void, when set, is why the claim breaks the admin's policy; a void claim owns nothing and
	// counts against no quota.
	void *model.Rejection
}

func newClaim(p *tenancy.Policy, k objKey, ing *networkingv1.Ingress, nsLabels map[string]string) *claim {
	tenant := p.TenantOf(k.cluster, k.namespace, nsLabels)
	c := &claim{key: k, tenant: unique.Make(tenant), created: math.MinInt64}
	if t := ing.CreationTimestamp; !t.IsZero() {
		c.created = t.UnixNano()
	}
	ref := k.ref("Ingress")
	tc, rej := translate.ClaimOf(ref, ing)
	if rej != nil {
		c.void = rej
		return c
	}
	c.Claim = tc
	for _, h := range tc.Hosts {
		if h == model.CatchAllHost {
			if !p.CatchAllAllowed(k.cluster, k.namespace) {
				c.void = &model.Rejection{Object: ref, Reason: tenancy.ReasonCatchAllNotAllowed,
					Message: "rules without a host and a defaultBackend without rules would capture every unmatched host; only admin-designated namespaces may do that"}
				return c
			}
			continue
		}
		if err := p.CheckHost(tenant, h); err != nil {
			c.void = &model.Rejection{Object: ref, Reason: err.Reason, Message: err.Message}
			return c
		}
	}
	return c
}

// older orders claims by creationTimestamp, then cluster/namespace/name: the first claim wins.
func (c *claim) older(o *claim) bool {
	if c.created != o.created {
		return c.created < o.created
	}
	return c.key.less(o.key)
}

// claims indexes every Ingress' claim for ownership and quota decisions. The indexes hold claim
// pointers, not keys: 8 bytes a value instead of 48 (three strings), for a set per host and a
// set per tenant of every Ingress.
type claims struct {
	byHost   index[string, *claim] // valid claims per host
	children index[string, string] // wildcard → exact hosts with valid claims under it
	byTenant index[unique.Handle[tenancy.ID], *claim]

	overQuota    map[*claim]string // why a claim is over its tenant's quota
	dirtyTenants map[unique.Handle[tenancy.ID]]bool
}

func newClaims() claims {
	return claims{byHost: index[string, *claim]{}, children: index[string, string]{},
		byTenant: index[unique.Handle[tenancy.ID], *claim]{}, overQuota: map[*claim]string{}, dirtyTenants: map[unique.Handle[tenancy.ID]]bool{}}
}

// set replaces an Ingress' claim old by cl (either may be nil) and returns the other Ingresses
// whose ownership standing may have changed: those claiming the same hosts, and for a wildcard,
// the exact hosts under it.
func (cs *claims) set(old, cl *claim) map[objKey]bool {
	hosts := map[string]bool{}
	if old != nil {
		cs.dirtyTenants[old.tenant] = true
		if old.void == nil {
			for _, h := range old.Hosts {
				hosts[h] = true
				cs.byHost.remove(h, old)
				if p := tenancy.Parent(h); p != "" && cs.byHost.count(h) == 0 {
					cs.children.remove(p, h)
				}
			}
			cs.byTenant.remove(old.tenant, old)
		}
		delete(cs.overQuota, old)
	}
	if cl != nil {
		cs.dirtyTenants[cl.tenant] = true
		if cl.void == nil {
			for _, h := range cl.Hosts {
				hosts[h] = true
				cs.byHost.add(h, cl)
				if p := tenancy.Parent(h); p != "" {
					cs.children.add(p, h)
				}
			}
			cs.byTenant.add(cl.tenant, cl)
		}
	}
	affected := map[objKey]bool{}
	for h := range hosts {
		for other := range cs.byHost.values(h) {
			affected[other.key] = true
		}
		for child := range cs.children.values(h) {
			for other := range cs.byHost.values(child) {
				affected[other.key] = true
			}
		}
	}
	return affected
}

// owner returns the claim that owns host: the oldest valid claim of the host itself or, for an
// exact host, of the wildcard covering it. A wildcard owns the names under it that nobody claimed
// before it; an exact host claimed first stays with its claimant.
func (cs *claims) owner(host string) *claim {
	var best *claim
	consider := func(h string) {
		for c := range cs.byHost.values(h) {
			if best == nil || c.older(best) {
				best = c
			}
		}
	}
	consider(host)
	if p := tenancy.Parent(host); p != "" {
		consider(p)
	}
	return best
}

// requota recomputes the quota standing of every tenant whose claims changed: the tenant's claims in
// age order are admitted while the running totals fit. It returns the claims whose standing flipped.
func (cs *claims) requota(p *tenancy.Policy) map[objKey]bool {
	flipped := map[objKey]bool{}
	for th := range cs.dirtyTenants {
		t := th.Value()
		q := p.QuotaOf(t)
		if q.MaxRoutes <= 0 && q.MaxHosts <= 0 && q.MaxCertificates <= 0 {
			// No quota: nothing is over it, and no need to sort the tenant's claims by age
			// (O(n log n) per change in a tenant of n Ingresses).
			for c := range cs.byTenant.values(th) {
				if _, over := cs.overQuota[c]; over {
					delete(cs.overQuota, c)
					flipped[c.key] = true
				}
			}
			continue
		}
		hosts, certs := map[string]bool{}, map[string]bool{}
		routes := 0
		for _, c := range cs.byTenant.sorted(th, (*claim).older) {
			newHosts, newCerts := 0, 0
			for _, h := range c.Hosts {
				if !hosts[h] {
					newHosts++
				}
			}
			for _, s := range c.Secrets {
				if !certs[s] {
					newCerts++
				}
			}
			why := ""
			switch {
			case q.MaxRoutes > 0 && routes+c.Routes > q.MaxRoutes:
				why = fmt.Sprintf("tenant %s would have %d routes, quota is %d", t.Name, routes+c.Routes, q.MaxRoutes)
			case q.MaxHosts > 0 && len(hosts)+newHosts > q.MaxHosts:
				why = fmt.Sprintf("tenant %s would have %d hostnames, quota is %d", t.Name, len(hosts)+newHosts, q.MaxHosts)
			case q.MaxCertificates > 0 && len(certs)+newCerts > q.MaxCertificates:
				why = fmt.Sprintf("tenant %s would have %d TLS certificates, quota is %d", t.Name, len(certs)+newCerts, q.MaxCertificates)
			}
			if why == "" {
				routes += c.Routes
				for _, h := range c.Hosts {
					hosts[h] = true
				}
				for _, s := range c.Secrets {
					certs[s] = true
				}
			}
			if cs.overQuota[c] != why {
				flipped[c.key] = true
			}
			if why == "" {
				delete(cs.overQuota, c)
			} else {
				cs.overQuota[c] = why
			}
		}
	}
	cs.dirtyTenants = map[unique.Handle[tenancy.ID]]bool{}
	return flipped
}

// standing returns why claim c may not be served, or nil: its own policy violation, a host owned
// by another tenant, or its tenant's quota.
func (cs *claims) standing(c *claim) *model.Rejection {
	if c.void != nil {
		return c.void
	}
	for _, h := range c.Hosts {
		if o := cs.owner(h); o != nil && o.tenant != c.tenant {
			return &model.Rejection{Object: c.key.ref("Ingress"), Reason: tenancy.ReasonHostOwnedByAnotherTenant,
				Message: fmt.Sprintf("host %q is already claimed by another tenant (the first claim wins)", h)}
		}
	}
	if why, over := cs.overQuota[c]; over {
		return &model.Rejection{Object: c.key.ref("Ingress"), Reason: tenancy.ReasonQuotaExceeded, Message: why}
	}
	return nil
}
