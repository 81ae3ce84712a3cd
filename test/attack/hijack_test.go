package attack

import (
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/test/harness"
)

// claimGap separates a victim's claim from the attacker's: creationTimestamp has one-second
// resolution, and first-claim-wins needs the victim to be strictly older.
const claimGap = 1100 * time.Millisecond

// hijackSetup gives the victim a served Ingress for host (path /) and an attacker with a backend
// of its own, then waits claimGap so the attacker's objects are younger.
func hijackSetup(t *testing.T, host string) (e *env, victim, attacker *tenant, evil *harness.Backend) {
	t.Helper()
	e = newEnv(t)
	victim, attacker = e.tenant("victim"), e.tenant("attacker")
	victim.service("victim")
	evil = attacker.service("attacker")
	victim.ingress("site", route(host, "/", "victim"))
	e.waitServed(host, "/", "victim")
	time.Sleep(claimGap)
	return e, victim, attacker, evil
}

// TestHijackExactHost: a second tenant's Ingress for a host another tenant owns is rejected
// (HostOwnedByAnotherTenant), is never merged into the owner's host, and the owner is served
// throughout.
func TestHijackExactHost(t *testing.T) {
	t.Parallel()
	host := "shop." + harness.RandomSuffix() + "." + freeSuffix
	e, _, attacker, evil := hijackSetup(t, host)
	g := e.guard(host, "/", "victim")

	attacker.ingress("steal", route(host, "/", "attacker"))
	attacker.waitReason("steal", "HostOwnedByAnotherTenant")
	g.end()

	e.expectServed(host, "/", "victim")
	e.expectServed(host, "/anything", "victim")
	e.untouched(evil)
}

// TestHijackPathInjection: the attacker adds a new path (and a longer prefix inside the victim's
// path) to the victim's host; ingress-nginx would merge them, edgegate rejects the whole object.
func TestHijackPathInjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	victim, attacker := e.tenant("victim"), e.tenant("attacker")
	victim.service("victim")
	evil := attacker.service("attacker")
	host := victim.free("app")
	victim.ingress("site", route(host, "/app", "victim"))
	e.waitServed(host, "/app", "victim")
	time.Sleep(claimGap)
	g := e.guard(host, "/app", "victim")

	attacker.ingress("inject", harness.IngressRule(host,
		harness.IngressPath(prefix, "/admin", "attacker", 80),
		harness.IngressPath(prefix, "/app/login", "attacker", 80)))
	attacker.waitReason("inject", "HostOwnedByAnotherTenant")
	// A path the victim does not route stays a 404 of the victim's host (it never falls through
	// to anyone else), and a longer prefix inside the victim's path stays the victim's.
	attacker.create(harness.Ingress(attacker.ns, "inject-late", className, route(host, "/late", "attacker")))
	attacker.waitReason("inject-late", "HostOwnedByAnotherTenant")
	g.end()

	e.expectStatus(host, "/admin", 404)
	e.expectStatus(host, "/late", 404)
	e.expectServed(host, "/app/login", "victim")
	e.untouched(evil)
}

// TestHijackWildcardCoversAttackerHost: the victim owns *.x; the attacker's exact a.x (a name
// the victim's wildcard already serves) is rejected and a.x stays the victim's.
func TestHijackWildcardCoversAttackerHost(t *testing.T) {
	t.Parallel()
	base := harness.RandomSuffix() + "." + freeSuffix
	e, _, attacker, _ := hijackSetup(t, "*."+base)
	g := e.guard("a."+base, "/", "victim")

	attacker.ingress("steal", route("a."+base, "/", "attacker"))
	attacker.waitReason("steal", "HostOwnedByAnotherTenant")
	// Deeper names are not covered by the victim's one-label wildcard: those are free, and the
	// attacker's claim of one must not disturb the victim's wildcard.
	attacker.ingress("deeper", route("b.a."+base, "/", "attacker"))
	e.waitServed("b.a."+base, "/", "attacker")
	g.end()

	e.expectServed("a."+base, "/", "victim")
	e.expectServed("zz."+base, "/x", "victim")
	e.expectNotFrom("a."+base, "/", "attacker")
}

// TestHijackWildcardOverExactHost: the victim owns a.x first; the attacker's later *.x may take
// the names nobody claimed, but never a.x: every request for a.x, on any path, stays with the
// victim (the victim's host ends in its own 404, it never falls through to the wildcard).
func TestHijackWildcardOverExactHost(t *testing.T) {
	t.Parallel()
	base := harness.RandomSuffix() + "." + freeSuffix
	e, victim, attacker, _ := hijackSetup(t, "a."+base)
	victim.ingress("site-app", route("a."+base, "/app", "victim"))
	g := e.guard("a."+base, "/", "victim")

	attacker.ingress("wild", route("*."+base, "/", "attacker"))
	// The wildcard is served for names nobody else claimed (first claim of *.x).
	e.waitServed("other."+base, "/", "attacker")
	g.end()

	for _, path := range []string{"/", "/app", "/app/x", "/admin"} {
		e.expectServed("a."+base, path, "victim")
	}
	for _, h := range []string{"A." + base, "a." + base + ".", "a." + base + ":80"} {
		e.expectServed(h, "/", "victim")
	}
	// A later exact claim by the victim under the attacker's wildcard: the wildcard is older, so
	// now the attacker owns that name and the victim's Ingress is the rejected one.
	time.Sleep(claimGap)
	victim.ingress("late", route("late."+base, "/", "victim"))
	victim.waitReason("late", "HostOwnedByAnotherTenant")
}

// TestHijackCaseAndTrailingDot: variants of an owned host are the same host. The apiserver
// refuses upper-case and trailing-dot hosts in Ingress rules; whatever it lets through must be
// treated as the owned host, and requests with such variants reach the owner.
func TestHijackCaseAndTrailingDot(t *testing.T) {
	t.Parallel()
	host := "shop." + harness.RandomSuffix() + "." + freeSuffix
	e, _, attacker, evil := hijackSetup(t, host)
	g := e.guard(host, "/", "victim")

	for i, variant := range []string{strings.ToUpper(host), host + ".", "Shop" + host[4:], strings.ToUpper(host) + "."} {
		name := "variant-" + string(rune('a'+i))
		err := attacker.tryCreate(harness.Ingress(attacker.ns, name, className, route(variant, "/", "attacker")))
		if err != nil {
			t.Logf("apiserver refused host %q: %v", variant, shortErr(err))
			continue
		}
		// Accepted by the apiserver: edgegate must see the owner's host in it.
		attacker.waitReason(name, "HostOwnedByAnotherTenant")
	}
	// The same host with a port, upper case or a trailing dot in the request.
	for _, h := range []string{strings.ToUpper(host), host + ".", host + ":80", "sHoP" + host[4:] + "."} {
		e.expectServed(h, "/", "victim")
	}
	g.end()
	e.untouched(evil)
}

// TestHijackIDN: the unicode form of a name is not a valid Ingress host (refused by the
// apiserver, and by edgegate if it ever got through), and the punycode form is the same host as
// the owner's: rejected as owned by another tenant.
func TestHijackIDN(t *testing.T) {
	t.Parallel()
	base := harness.RandomSuffix() + "." + freeSuffix
	puny := "xn--bcher-kva." + base // bücher
	e, _, attacker, evil := hijackSetup(t, puny)
	g := e.guard(puny, "/", "victim")

	if err := attacker.tryCreate(harness.Ingress(attacker.ns, "unicode", className, route("bücher."+base, "/", "attacker"))); err == nil {
		attacker.waitReason("unicode", "InvalidHost")
	} else {
		t.Logf("apiserver refused the unicode host: %v", shortErr(err))
	}
	if err := attacker.tryCreate(harness.Ingress(attacker.ns, "unicode-wild", className, route("*.bücher."+base, "/", "attacker"))); err == nil {
		attacker.waitReason("unicode-wild", "InvalidHost")
	} else {
		t.Logf("apiserver refused the unicode wildcard: %v", shortErr(err))
	}
	attacker.ingress("punycode", route(puny, "/", "attacker"))
	attacker.waitReason("punycode", "HostOwnedByAnotherTenant")
	g.end()

	e.expectServed(puny, "/", "victim")
	e.expectServed(strings.ToUpper(puny), "/", "victim")
	// A client sending the unicode form gets nothing from the attacker (Envoy has no such host).
	e.expectNotFrom("bücher."+base, "/", "attacker")
	e.untouched(evil)
}

// shortErr keeps an apiserver error to its first line.
func shortErr(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
