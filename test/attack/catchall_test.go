package attack

import (
	"testing"

	"github.com/edgegate/edgegate/test/harness"
)

// The catch-all tests do not run in parallel: should a catch-all ever get through, it would
// answer the other tests' requests for unknown hosts.

// TestCatchAllHostlessRule: a rule without a host from an ordinary namespace would capture every
// unmatched host: CatchAllNotAllowed, unknown hosts stay 404.
func TestCatchAllHostlessRule(t *testing.T) {
	e := newEnv(t)
	victim, attacker := e.tenant("victim"), e.tenant("attacker")
	victim.service("victim")
	vhost := victim.own("www")
	victim.ingress("site", route(vhost, "/app", "victim"))
	g := e.guard(vhost, "/app", "victim")
	evil := attacker.service("attacker")

	attacker.ingress("everything", route("", "/", "attacker"))
	attacker.waitReason("everything", "CatchAllNotAllowed")
	g.end()
	unknownHosts404(e, vhost)
	e.untouched(evil)
}

// TestCatchAllDefaultBackend: an Ingress with only a defaultBackend from an ordinary namespace:
// CatchAllNotAllowed, unknown hosts stay 404.
func TestCatchAllDefaultBackend(t *testing.T) {
	e := newEnv(t)
	victim, attacker := e.tenant("victim"), e.tenant("attacker")
	victim.service("victim")
	vhost := victim.own("www")
	victim.ingress("site", route(vhost, "/app", "victim"))
	g := e.guard(vhost, "/app", "victim")
	evil := attacker.service("attacker")

	ing := harness.Ingress(attacker.ns, "default-only", className)
	def := harness.IngressBackend("attacker", 80)
	ing.Spec.DefaultBackend = &def
	attacker.create(ing)
	attacker.waitReason("default-only", "CatchAllNotAllowed")
	g.end()
	unknownHosts404(e, vhost)
	e.untouched(evil)
}

// TestDefaultBackendOnlyOwnHosts: a defaultBackend next to rules applies to the attacker's own
// hosts only: its own host's unmatched paths reach it, the victim's unmatched paths and unknown
// hosts do not.
func TestDefaultBackendOnlyOwnHosts(t *testing.T) {
	e := newEnv(t)
	victim, attacker := e.tenant("victim"), e.tenant("attacker")
	victim.service("victim")
	vhost := victim.own("www")
	victim.ingress("site", route(vhost, "/app", "victim"))
	g := e.guard(vhost, "/app", "victim")
	attacker.service("attacker")
	attacker.service("attacker-default")

	ahost := attacker.own("www")
	ing := harness.Ingress(attacker.ns, "with-default", className, route(ahost, "/x", "attacker"))
	def := harness.IngressBackend("attacker-default", 80)
	ing.Spec.DefaultBackend = &def
	attacker.create(ing)
	e.waitServed(ahost, "/x", "attacker")
	e.waitServed(ahost, "/elsewhere", "attacker-default")
	g.end()
	unknownHosts404(e, vhost)
}

// unknownHosts404 checks that the victim's unrouted path, and hosts nobody routes (in the shared
// suffix, in a tenant suffix and elsewhere), are Envoy's own 404.
func unknownHosts404(e *env, vhost string) {
	e.t.Helper()
	e.expectStatus(vhost, "/not-routed", 404)
	for _, h := range []string{"nobody-" + harness.RandomSuffix() + "." + freeSuffix, "x.nobody-" + harness.RandomSuffix() + ".apps.test", "unknown.example", "127.0.0.1", ""} {
		e.expectStatus(h, "/", 404)
	}
}
