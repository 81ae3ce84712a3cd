package e2e

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/test/harness"
)

// TestDefaultBackendWithoutRules: an Ingress with only a defaultBackend takes
// every request no other rule matches, for any host, if its namespace is an
// admin-designated catch-all namespace; elsewhere it is rejected. It does not
// run in parallel, and removes its Ingress before it ends, because that
// catch-all would answer the other tests' requests for unknown hosts.
func TestDefaultBackendWithoutRules(t *testing.T) {
	t.Run("ordinary namespace", func(t *testing.T) {
		f := newFixture(t)
		f.service("catchall")
		ing := harness.Ingress(f.ns, "catchall", className)
		def := harness.IngressBackend("catchall", 80)
		ing.Spec.DefaultBackend = &def
		f.create(ing)
		f.expectRejected("catchall", f.host("anything"))
	})
	t.Run("catch-all namespace", func(t *testing.T) { defaultBackendCatchAll(t, newFixtureIn(t, catchAll.defaultOnly)) })
}

func defaultBackendCatchAll(t *testing.T, f *fixture) {
	f.service("catchall")
	f.service("specific")
	ing := harness.Ingress(f.ns, "catchall", className)
	def := harness.IngressBackend("catchall", 80)
	ing.Spec.DefaultBackend = &def
	f.create(ing)
	host := f.host("specific")
	f.ingress("specific", harness.IngressRule(host, harness.IngressPath(prefix, "/app", "specific", 80)))

	f.waitBackend(f.host("anything"), "/x", "catchall")
	f.expectBackend("unrelated.example.test", "/", "catchall")
	f.waitBackend(host, "/app", "specific")

	if err := f.kube.NetworkingV1().Ingresses(f.ns).Delete(f.ctx, "catchall", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitNotRouted(f.host("anything"), "/x")
	f.expectBackend(host, "/app", "specific")
}
