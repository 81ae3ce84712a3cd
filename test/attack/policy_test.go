package attack

import (
	"fmt"
	"testing"
	"time"

	"github.com/edgegate/edgegate/test/harness"
)

// TestHostnameNotAllowed: a tenant may only use names under its own suffix, the shared suffix
// and its pinned domains. Another tenant's name (also one that merely ends in the attacker's
// namespace name without a dot boundary), a wildcard above the tenant suffixes, a foreign domain
// and another tenant's pinned domain are all HostnameNotAllowed (a wildcard over the pinned domain
// is HostnameReserved, see TestHostnameReserved); the attacker's own name is
// served (the policy is not simply refusing everything).
func TestHostnameNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	attacker := e.tenant("att")
	victim := e.tenantNamed("x"+attacker.ns, nil) // its suffix ends in the attacker's namespace name
	victim.service("victim")
	vhost := victim.own("app")
	victim.ingress("site", route(vhost, "/", "victim"))
	g := e.guard(vhost, "/", "victim")
	evil := attacker.service("attacker")

	// A name under the pinned tenant's domain that no other test serves (TestHostnameReserved,
	// running in parallel on the same edgegate, serves shop.<brand> for its rightful owner).
	pinned := "att-" + harness.RandomSuffix() + "." + named.brand
	cases := map[string]string{
		"victim-suffix": vhost,
		"wild-victim":   "*." + victim.ns + ".apps.test",
		"above":         "*.apps.test",
		"foreign":       "www.bank-" + harness.RandomSuffix() + ".test",
		"pinned":        pinned,
	}
	for name, host := range cases {
		attacker.ingress(name, route(host, "/", "attacker"))
	}
	attacker.ingress("own", route(attacker.own("ok"), "/", "attacker"))
	for name := range cases {
		attacker.waitReason(name, "HostnameNotAllowed")
	}
	g.end()
	e.expectStatus(pinned, "/", 404)
	e.expectStatus("www."+victim.ns+".apps.test", "/", 404)
	e.untouched(evil)
	e.waitServed(attacker.own("ok"), "/", "attacker")
}

// TestHostnameReserved: a reserved name under the pinned tenant's own custom domain is refused
// to that tenant (HostnameReserved), as is a wildcard covering it; the pinned tenant's other
// names are served, and another tenant gets HostnameReserved for the reserved name too.
func TestHostnameReserved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.tenantNamed(named.pinned, nil)
	attacker := e.tenant("attacker")
	p.service("brand")
	evil := attacker.service("attacker")
	shop := "shop." + named.brand
	p.ingress("shop", route(shop, "/", "brand"))
	g := e.guard(shop, "/", "brand")

	p.ingress("login", route("login."+named.brand, "/", "brand"))
	p.ingress("wild", route("*."+named.brand, "/", "brand"))
	attacker.ingress("login", route("login."+named.brand, "/", "attacker"))
	p.waitReason("login", "HostnameReserved")
	p.waitReason("wild", "HostnameReserved")
	attacker.waitReason("login", "HostnameReserved")
	g.end()
	e.expectStatus("login."+named.brand, "/", 404)
	e.expectStatus("other."+named.brand, "/", 404)
	e.untouched(evil)
}

// TestSameTenantSharesHost: namespaces with the same tenant label are one tenant and may share a
// host (a second namespace adds a path); a namespace of another tenant may not.
func TestSameTenantSharesHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	group := "group-" + harness.RandomSuffix()
	one := e.tenantNamed("one-"+group, map[string]string{tenantLabel: group})
	two := e.tenantNamed("two-"+group, map[string]string{tenantLabel: group})
	attacker := e.tenant("attacker")
	one.service("one")
	two.service("two")
	evil := attacker.service("attacker")
	host := "shared." + group + "." + freeSuffix
	one.ingress("site", route(host, "/", "one"))
	g := e.guard(host, "/", "one")
	time.Sleep(claimGap)

	two.ingress("extra", route(host, "/extra", "two"))
	e.waitServed(host, "/extra", "two")
	attacker.ingress("steal", route(host, "/steal", "attacker"))
	attacker.waitReason("steal", "HostOwnedByAnotherTenant")
	g.end()
	e.expectServed(host, "/steal", "one") // the owner's "/" prefix, never the attacker
	e.untouched(evil)
}

// TestNamespaceNamedLikeTenantLabel: with clusters[].tenantLabel set, a tenant is the group of
// namespaces carrying one label value. An attacker who can create a namespace (no label needed)
// names it after the victim's label value: it must not become the victim's tenant (add paths to
// its hosts, use its "{tenant}" suffix).
//
// Found by this suite: TenantOf used to return the same ID for namespace "acme" and the group
// labelled "acme". An unlabelled namespace is now a tenant of its own with no {tenant} suffix, so
// the attacker's Ingress is refused (HostnameNotAllowed, or HostOwnedByAnotherTenant for a host
// its policy would allow).
func TestNamespaceNamedLikeTenantLabel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	group := "acme-" + harness.RandomSuffix()
	victim := e.tenantNamed("prod-"+group, map[string]string{tenantLabel: group})
	attacker := e.tenantNamed(group, map[string]string{}) // unlabelled
	victim.service("victim")
	evil := attacker.service("attacker")
	host := "www." + group + ".apps.test" // the victim group's own suffix
	victim.ingress("site", route(host, "/", "victim"))
	g := e.guard(host, "/", "victim")
	time.Sleep(claimGap)

	attacker.ingress("join", route(host, "/admin", "attacker"))
	// Poll without failing at once, to report what the attacker then gets (its backend is in
	// this test's own network namespace).
	var reason string
	err := harness.Poll(harness.DefaultTimeout, func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, r := range st.Gateway.Rejections {
			if r.Object.Kind == "Ingress" && r.Object.Namespace == attacker.ns && r.Object.Name == "join" &&
				(r.Reason == "HostOwnedByAnotherTenant" || r.Reason == "HostnameNotAllowed") {
				reason = r.Reason
				return nil
			}
		}
		return fmt.Errorf("Ingress %s/join is not rejected (HostOwnedByAnotherTenant or HostnameNotAllowed) in /status", attacker.ns)
	})
	if err != nil {
		t.Errorf("namespace %q (unlabelled) is treated as the tenant labelled %s=%s: %v", attacker.ns, tenantLabel, group, err)
	} else {
		attacker.waitReason("join", reason)
	}
	g.end()
	e.expectServed(host, "/admin", "victim")
	e.untouched(evil)
}
