package attack

import (
	"crypto/tls"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/edgegate/edgegate/test/harness"
)

// TestCrossNamespaceService: an Ingress can only name Services of its own namespace. The
// attacker names the victim's Service (which does not exist in its namespace) and, through a
// typed resource backend, the victim's Service kind: both are rejected and the attacker's host
// never reaches the victim's backend.
func TestCrossNamespaceService(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	victim, attacker := e.tenant("victim"), e.tenant("attacker")
	victim.service("victim-api")
	vhost := victim.own("api")
	victim.ingress("api", route(vhost, "/", "victim-api"))
	g := e.guard(vhost, "/", "victim-api")

	ahost := attacker.own("proxy")
	attacker.ingress("by-name", route(ahost, "/", "victim-api"))
	attacker.waitReason("by-name", "ServiceNotFound")

	res := harness.Ingress(attacker.ns, "by-resource", className, harness.IngressRule(attacker.own("res"),
		networkingv1.HTTPIngressPath{Path: "/", PathType: ptr(prefix), Backend: networkingv1.IngressBackend{
			Resource: &corev1.TypedLocalObjectReference{Kind: "Service", Name: "victim-api"}}}))
	if err := attacker.tryCreate(res); err != nil {
		t.Logf("apiserver refused a resource backend naming a Service: %s", shortErr(err))
	} else {
		attacker.waitReason("by-resource", "UnsupportedBackend")
		e.expectNotFrom(attacker.own("res"), "/", "victim-api")
	}
	g.end()
	e.expectStatus(ahost, "/", 404)
	e.notInEnvoy(attacker.ns)
}

// TestCrossNamespaceSecret: a TLS secretName is resolved in the Ingress' own namespace. The
// attacker names the victim's Secret for its own host (SecretNotFound: the attacker's host is not
// served with the victim's certificate), then lists the victim's hosts in its own TLS section
// with a certificate of its own for them: the victim's SNI keeps the victim's certificate and
// backend, and a victim host without TLS is never terminated with the attacker's certificate.
func TestCrossNamespaceSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	victim, attacker := e.tenant("victim"), e.tenant("attacker")
	victim.service("victim")
	attacker.service("attacker")
	vhost, vplain := victim.free("secure"), victim.free("plain")
	vcert := issue(t, vhost)
	victim.create(harness.TLSSecret(victim.ns, "site-tls", vcert))
	ving := harness.Ingress(victim.ns, "site", className, route(vhost, "/", "victim"), route(vplain, "/", "victim"))
	ving.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{vhost}, SecretName: "site-tls"}}
	victim.create(ving)
	waitTLS(t, e, vhost, "victim", vcert)
	e.waitServed(vplain, "/", "victim")
	g := e.guard(vhost, "/", "victim")

	// 1. The victim's Secret by name, for the attacker's own host.
	ahost := attacker.free("mine")
	steal := harness.Ingress(attacker.ns, "steal-secret", className, route(ahost, "/", "attacker"))
	steal.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{ahost}, SecretName: "site-tls"}}
	attacker.create(steal)
	attacker.waitReason("steal-secret", "SecretNotFound")
	if r, err := e.client.GetTLS(ahost, ahost, "/"); err == nil {
		t.Errorf("https %s with the victim's Secret name: handshake succeeded, got %s (certificate %v)", ahost, r, r.PeerCertificates[0].DNSNames)
	}
	expectNoCert(t, e, ahost, vcert)

	// 2. The victim's hosts in the attacker's TLS section, with the attacker's own certificate
	// (trusted by the client: the worst case, as if the attacker had obtained one).
	ahost2 := attacker.free("other")
	acert := issue(t, ahost2, vhost, vplain)
	attacker.create(harness.TLSSecret(attacker.ns, "site-tls", acert))
	forge := harness.Ingress(attacker.ns, "forge", className, route(ahost2, "/", "attacker"))
	forge.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{ahost2, vhost, vplain}, SecretName: "site-tls"}}
	attacker.create(forge)
	waitTLS(t, e, ahost2, "attacker", acert) // its own host is served with its own certificate
	g.end()

	if err := checkTLS(e, vhost, "victim", vcert); err != nil {
		t.Error(err)
	}
	r, err := e.client.GetTLS(vplain, vplain, "/")
	switch {
	case err != nil:
		t.Logf("https %s (victim host without TLS): %v", vplain, err)
	case r.PeerCertificates[0].SerialNumber.Cmp(acert.Cert.SerialNumber) == 0 || r.Backend() == "attacker":
		t.Errorf("https %s (victim host without TLS) terminated with the attacker's certificate: %s", vplain, r)
	}
	e.expectServed(vplain, "/", "victim")
}

func ptr[T any](v T) *T { return &v }

// issue signs a serving certificate for the names with the package's TLS CA.
func issue(t *testing.T, names ...string) *harness.Cert {
	t.Helper()
	c, err := shared.tlsCA.Issue(harness.CertRequest{CommonName: names[0], DNSNames: names, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkTLS sends one HTTPS request with SNI and Host sni and checks the backend and that the
// served leaf is cert (by serial).
func checkTLS(e *env, sni, want string, cert *harness.Cert) error {
	r, err := e.client.GetTLS(sni, sni, "/")
	if err != nil {
		return err
	}
	if err := harness.ExpectBackend(r, sni, "/", want); err != nil {
		return err
	}
	if got := r.PeerCertificates[0]; got.SerialNumber.Cmp(cert.Cert.SerialNumber) != 0 {
		return fmt.Errorf("%s: served certificate %v (serial %x), want serial %x", sni, got.DNSNames, got.SerialNumber, cert.Cert.SerialNumber)
	}
	return nil
}

func waitTLS(t *testing.T, e *env, sni, want string, cert *harness.Cert) {
	t.Helper()
	harness.Eventually(t, harness.DefaultTimeout, "wait for https "+sni+" -> "+want, func() error { return checkTLS(e, sni, want, cert) })
}

// expectNoCert checks, without verifying the chain, that SNI sni is not served with cert.
func expectNoCert(t *testing.T, e *env, sni string, cert *harness.Cert) {
	t.Helper()
	conn, err := tls.Dial("tcp", e.client.HTTPSAddr, &tls.Config{ServerName: sni, InsecureSkipVerify: true}) //nolint:gosec // inspecting what is served, not trusting it
	if err != nil {
		return // no certificate at all for this name
	}
	defer conn.Close()
	for _, c := range conn.ConnectionState().PeerCertificates {
		if c.SerialNumber.Cmp(cert.Cert.SerialNumber) == 0 {
			t.Errorf("SNI %s is served with the victim's certificate", sni)
		}
	}
}
