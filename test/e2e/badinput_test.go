package e2e

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/edgegate/edgegate/test/harness"
)

// expectRejected checks that an Event was recorded on the Ingress, that it
// is a Warning about this Ingress, and that its host is not served.
func (f *fixture) expectRejected(ingress, host string) {
	f.t.Helper()
	ev := f.waitEvent(ingress)
	if ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Kind != "Ingress" || ev.InvolvedObject.Name != ingress {
		f.t.Errorf("event on %s: type %q on %s %s, want a Warning on Ingress %s", ingress, ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ingress)
	}
	f.t.Logf("event on %s: %s: %s", ingress, ev.Reason, ev.Message)
	f.expectNotRouted(host, "/")
}

func TestMissingService(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("good")
	bad, good := f.host("bad"), f.host("good")
	f.ingress("bad", harness.IngressRule(bad,
		harness.IngressPath(prefix, "/", "good", 80),
		harness.IngressPath(prefix, "/missing", "no-such-service", 80)))
	f.ingress("good", harness.IngressRule(good, harness.IngressPath(prefix, "/", "good", 80)))

	f.waitBackend(good, "/", "good")
	f.expectRejected("bad", bad)

	// Once the Service exists, the Ingress is served.
	b := f.net.Backend(t, "late")
	f.create(harness.Service(f.ns, "no-such-service", harness.ServicePort("http", 80, b.Port())))
	f.create(harness.EndpointSlice(f.ns, "no-such-service", "no-such-service-1",
		harness.Ports(harness.EndpointPort("http", b.Port())), harness.Endpoint(b.IP(), true)))
	f.waitBackend(bad, "/missing", "late")
	f.expectBackend(bad, "/", "good")
}

func TestBadTLSSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("good")
	bad, good := f.host("badtls"), f.host("goodtls")
	f.create(harness.RawTLSSecret(f.ns, "garbage", []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), []byte("not a key")))
	ing := harness.Ingress(f.ns, "badtls", className, harness.IngressRule(bad, harness.IngressPath(prefix, "/", "good", 80)))
	ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{bad}, SecretName: "garbage"}}
	f.create(ing)
	cert := f.issue(good)
	f.tlsIngress("goodtls", good, "good", cert)

	f.waitTLS(good, "/", "good", cert)
	f.expectRejected("badtls", bad)
	if r, err := f.client.GetTLS(bad, bad, "/"); err == nil && r.Echo != nil {
		t.Errorf("https to the host with a bad Secret was routed: %s", r)
	}
}

func TestInvalidPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("good")
	good := f.host("good")
	// Paths the apiserver accepts for ImplementationSpecific (it only checks
	// the leading slash) but which are not valid paths to route on.
	bad := map[string]string{"dotdot": "/static/../etc", "space": "/with space"}
	for name, path := range bad {
		f.ingress(name, harness.IngressRule(f.host(name),
			harness.IngressPath(prefix, "/ok", "good", 80),
			harness.IngressPath(implSpec, path, "good", 80)))
	}
	f.ingress("good", harness.IngressRule(good, harness.IngressPath(prefix, "/", "good", 80)))

	f.waitBackend(good, "/", "good")
	for name := range bad {
		f.expectRejected(name, f.host(name))
		f.expectNotRouted(f.host(name), "/ok")
	}
}
