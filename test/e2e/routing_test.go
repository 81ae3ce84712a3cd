package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/edgegate/edgegate/test/harness"
)

const (
	exact    = networkingv1.PathTypeExact
	prefix   = networkingv1.PathTypePrefix
	implSpec = networkingv1.PathTypeImplementationSpecific
)

func TestExactHost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("a")
	f.service("b")
	one, two := f.host("one"), f.host("two")
	f.ingress("hosts",
		harness.IngressRule(one, harness.IngressPath(prefix, "/", "a", 80)),
		harness.IngressRule(two, harness.IngressPath(prefix, "/", "b", 80)))

	f.waitBackend(one, "/", "a")
	f.waitBackend(two, "/x", "b")
	f.expectNotRouted(f.host("three"), "/")
	f.expectNotRouted("x"+one, "/") // a longer name sharing a suffix is another host
}

func TestWildcardHost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("wild")
	f.service("exact")
	wildcard := f.host("*.w")
	f.ingress("wild",
		harness.IngressRule(wildcard, harness.IngressPath(prefix, "/", "wild", 80)),
		harness.IngressRule(f.host("e.w"), harness.IngressPath(prefix, "/", "exact", 80)))

	f.waitBackend(f.host("a.w"), "/", "wild")
	f.waitBackend(f.host("e.w"), "/", "exact") // an exact host beats a wildcard covering it
	f.expectBackend(f.host("other.w"), "/p", "wild")
	f.expectNotRouted(f.host("b.a.w"), "/") // a wildcard covers exactly one label
	f.expectNotRouted(f.host("w"), "/")     // and never the parent itself
}

func TestHostCaseInsensitive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("a")
	f.service("wild")
	host := f.host("case")
	f.ingress("case",
		harness.IngressRule(host, harness.IngressPath(prefix, "/", "a", 80)),
		harness.IngressRule(f.host("*.cw"), harness.IngressPath(prefix, "/", "wild", 80)))
	f.waitBackend(host, "/", "a")

	f.expectBackend(strings.ToUpper(host), "/up", "a")
	f.expectBackend("Case."+f.ns+".TEST", "/mixed", "a")
	f.expectBackend(strings.ToUpper(f.host("x.cw")), "/", "wild")
	t.Run("port in Host header", func(t *testing.T) {
		_, port, _ := strings.Cut(f.client.HTTPAddr, ":")
		if err := f.client.CheckBackend(host+":"+port, "/port", "a"); err != nil {
			t.Error(err)
		}
	})
}

func TestPathTypes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, s := range []string{"exact", "prefix", "impl", "slash"} {
		f.service(s)
	}
	host := f.host("paths")
	f.ingress("paths", harness.IngressRule(host,
		harness.IngressPath(exact, "/exact", "exact", 80),
		harness.IngressPath(prefix, "/foo", "prefix", 80),
		harness.IngressPath(implSpec, "/impl", "impl", 80),
		harness.IngressPath(prefix, "/bar/", "slash", 80),
	))
	f.waitBackend(host, "/exact", "exact")

	for _, c := range []struct{ path, want string }{
		{"/exact", "exact"},
		{"/exact/", ""},
		{"/exact/x", ""},
		{"/exactly", ""},
		{"/foo", "prefix"},
		{"/foo/", "prefix"},
		{"/foo/bar", "prefix"},
		{"/foo/bar/baz", "prefix"},
		{"/foobar", ""}, // Prefix is element-wise
		{"/fo", ""},
		{"/impl", "impl"}, // ImplementationSpecific is treated as Prefix
		{"/impl/x", "impl"},
		{"/implx", ""},
		{"/bar", "slash"}, // a trailing slash in a Prefix path is ignored
		{"/bar/", "slash"},
		{"/bar/x", "slash"},
		{"/barx", ""},
		{"/", ""},
	} {
		if c.want == "" {
			f.expectNotRouted(host, c.path)
		} else {
			f.expectBackend(host, c.path, c.want)
		}
	}
}

func TestLongestMatchWins(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, s := range []string{"root", "api", "v2", "other"} {
		f.service(s)
	}
	host := f.host("longest")
	f.ingress("longest", harness.IngressRule(host,
		harness.IngressPath(prefix, "/", "root", 80),
		harness.IngressPath(prefix, "/api/v2", "v2", 80), // listed before /api on purpose
		harness.IngressPath(prefix, "/api", "api", 80),
	))
	// A second Ingress for the same host adds a longer path: rules merge per host.
	f.ingress("longest-more", harness.IngressRule(host,
		harness.IngressPath(prefix, "/api/v2/other", "other", 80)))
	f.waitBackend(host, "/api/v2/other/x", "other")

	for _, c := range []struct{ path, want string }{
		{"/", "root"},
		{"/x", "root"},
		{"/api", "api"},
		{"/api/x", "api"},
		{"/api/v2", "v2"},
		{"/api/v2/users", "v2"},
		{"/api/v2x", "api"},
		{"/api/v2/other", "other"},
		{"/apix", "root"},
	} {
		f.expectBackend(host, c.path, c.want)
	}
}

func TestExactBeatsPrefix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("prefix")
	f.service("exact")
	host := f.host("ebp")
	f.ingress("ebp", harness.IngressRule(host,
		harness.IngressPath(prefix, "/same", "prefix", 80),
		harness.IngressPath(exact, "/same", "exact", 80),
	))
	f.waitBackend(host, "/same/x", "prefix")
	f.expectBackend(host, "/same", "exact")
	f.expectBackend(host, "/same/", "prefix")
}

func TestDefaultBackend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("api")
	f.service("fallback")
	host := f.host("db")
	ing := harness.Ingress(f.ns, "db", className, harness.IngressRule(host, harness.IngressPath(prefix, "/api", "api", 80)))
	def := harness.IngressBackend("fallback", "http")
	ing.Spec.DefaultBackend = &def
	f.create(ing)

	f.waitBackend(host, "/api/x", "api")
	f.expectBackend(host, "/other", "fallback")
	f.expectBackend(host, "/", "fallback")
	f.expectBackend(host, "/apix", "fallback")
}

// TestRuleWithoutHost: a rule with no host applies to every host, but only
// an admin-designated namespace may capture hosts nobody owns
// (tenancy.catchAllNamespaces); elsewhere the Ingress is rejected. The path is
// unique to this test so it cannot capture other tests' requests.
func TestRuleWithoutHost(t *testing.T) {
	t.Parallel()
	t.Run("ordinary namespace", func(t *testing.T) {
		f := newFixture(t)
		f.service("any")
		path := "/" + f.ns + "-anyhost"
		f.ingress("anyhost", harness.IngressRule("", harness.IngressPath(prefix, path, "any", 80)))
		f.expectRejected("anyhost", f.host("whatever"))
		f.expectNotRouted(f.host("whatever"), path)
	})
	t.Run("catch-all namespace", func(t *testing.T) {
		f := newFixtureIn(t, catchAll.hostless)
		f.service("any")
		path := "/" + f.ns + "-anyhost"
		f.ingress("anyhost", harness.IngressRule("", harness.IngressPath(prefix, path, "any", 80)))
		f.waitBackend(f.host("whatever"), path, "any")
		f.expectBackend("unrelated.example.test", path+"/x", "any")
	})
}

func TestServicePortByNameAndNumber(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ip, err := f.net.NewAddr()
	if err != nil {
		t.Fatal(err)
	}
	f.net.BackendAt(t, "web", netip.AddrPortFrom(ip, 8080))
	f.net.BackendAt(t, "admin", netip.AddrPortFrom(ip, 9090))
	f.create(harness.Service(f.ns, "multi", harness.ServicePort("web", 80, 8080), harness.ServicePort("admin", 90, 9090)))
	f.create(harness.EndpointSlice(f.ns, "multi", "multi-1",
		harness.Ports(harness.EndpointPort("web", 8080), harness.EndpointPort("admin", 9090)),
		harness.Endpoint(ip.String(), true)))
	host := f.host("ports")
	f.ingress("ports", harness.IngressRule(host,
		harness.IngressPath(prefix, "/name-web", "multi", "web"),
		harness.IngressPath(prefix, "/name-admin", "multi", "admin"),
		harness.IngressPath(prefix, "/num-80", "multi", 80),
		harness.IngressPath(prefix, "/num-90", "multi", 90),
	))
	f.waitBackend(host, "/name-web", "web")
	f.expectBackend(host, "/name-admin", "admin")
	f.expectBackend(host, "/num-80", "web")
	f.expectBackend(host, "/num-90", "admin")
}

func TestOnlyReadyEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r1 := f.net.Backend(t, "r1")
	r2 := f.net.Backend(t, "r2")
	never := f.net.Backend(t, "never-ready")
	port := harness.Ports(harness.EndpointPort("http", harness.DefaultBackendPort))
	f.create(harness.Service(f.ns, "pool", harness.ServicePort("http", 80, harness.DefaultBackendPort)))
	f.create(harness.EndpointSlice(f.ns, "pool", "pool-1", port,
		harness.Endpoint(r1.IP(), true), harness.Endpoint(r2.IP(), true), harness.Endpoint(never.IP(), false)))
	host := f.host("ready")
	f.ingress("ready", harness.IngressRule(host, harness.IngressPath(prefix, "/", "pool", 80)))

	// Both ready endpoints take traffic.
	harness.Eventually(t, harness.DefaultTimeout, "both ready endpoints answer", func() error {
		seen, err := f.seenBackends(host, "/", 20)
		if err != nil {
			return err
		}
		if seen["r1"] == 0 || seen["r2"] == 0 {
			return fmt.Errorf("backends seen in 20 requests: %v, want r1 and r2", seen)
		}
		return nil
	})

	// r2 turns not ready: after the change is live, it gets nothing.
	f.updateSlice("pool-1", func(s *discoveryv1.EndpointSlice) {
		for i := range s.Endpoints {
			if s.Endpoints[i].Addresses[0] == r2.IP() {
				no := false
				s.Endpoints[i].Conditions.Ready = &no
			}
		}
	})
	harness.Eventually(t, harness.DefaultTimeout, "r2 drained", func() error {
		seen, err := f.seenBackends(host, "/", 20)
		if err != nil {
			return err
		}
		if keys := sortedKeys(seen); len(keys) != 1 || keys[0] != "r1" {
			return fmt.Errorf("backends seen in 20 requests: %v, want only r1", seen)
		}
		return nil
	})
	before := r2.Requests()
	seen, err := f.seenBackends(host, "/", 30)
	if err != nil {
		t.Fatal(err)
	}
	if seen["r1"] != 30 || r2.Requests() != before {
		t.Errorf("after r2 turned not ready: seen %v, r2 served %d more", seen, r2.Requests()-before)
	}
	if never.Requests() != 0 {
		t.Errorf("an endpoint that was never ready served %d requests", never.Requests())
	}
}
