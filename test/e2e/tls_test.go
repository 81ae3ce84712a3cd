package e2e

import (
	"context"
	"fmt"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/test/harness"
)

// issue signs a serving certificate for the names with the package's TLS CA.
func (f *fixture) issue(names ...string) *harness.Cert {
	f.t.Helper()
	c, err := shared.tlsCA.Issue(harness.CertRequest{CommonName: names[0], DNSNames: names, Server: true})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// tlsIngress creates a Secret for cert and an Ingress serving host over TLS
// with it, routing / to svc.
func (f *fixture) tlsIngress(name, host, svc string, cert *harness.Cert) {
	f.t.Helper()
	f.create(harness.TLSSecret(f.ns, name+"-tls", cert))
	ing := harness.Ingress(f.ns, name, className, harness.IngressRule(host, harness.IngressPath(prefix, "/", svc, 80)))
	ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: name + "-tls"}}
	f.create(ing)
}

// checkTLS sends one HTTPS request with SNI and Host sni and checks the
// backend and that the served leaf is cert.
func (f *fixture) checkTLS(sni, path, want string, cert *harness.Cert) error {
	r, err := f.client.GetTLS(sni, sni, path)
	if err != nil {
		return err
	}
	if err := harness.ExpectBackend(r, sni, path, want); err != nil {
		return err
	}
	if len(r.PeerCertificates) == 0 {
		return fmt.Errorf("%s: no certificate served", sni)
	}
	if got := r.PeerCertificates[0]; got.SerialNumber.Cmp(cert.Cert.SerialNumber) != 0 {
		return fmt.Errorf("%s: served certificate %v (serial %x), want the Secret's (serial %x)",
			sni, got.DNSNames, got.SerialNumber, cert.Cert.SerialNumber)
	}
	return nil
}

func (f *fixture) waitTLS(sni, path, want string, cert *harness.Cert) {
	f.t.Helper()
	harness.Eventually(f.t, harness.DefaultTimeout, "wait for https "+sni+path+" -> "+want, func() error {
		return f.checkTLS(sni, path, want, cert)
	})
}

func TestTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("one")
	f.service("two")
	f.service("wild")
	h1, h2 := f.host("secure"), f.host("secure2")
	c1, c2 := f.issue(h1), f.issue(h2)
	f.tlsIngress("secure", h1, "one", c1)
	f.tlsIngress("secure2", h2, "two", c2)

	// Each SNI gets its own Secret's certificate and its own backend.
	f.waitTLS(h1, "/a", "one", c1)
	f.waitTLS(h2, "/b", "two", c2)
	// Plain HTTP on the http listener is still routed for TLS hosts.
	f.expectBackend(h1, "/plain", "one")

	t.Run("wildcard certificate", func(t *testing.T) {
		f := f.sub(t)
		wh := f.host("*.wtls")
		wc := f.issue(wh)
		f.tlsIngress("wild", wh, "wild", wc)
		f.waitTLS(f.host("a.wtls"), "/", "wild", wc)
		if err := f.checkTLS(f.host("b.wtls"), "/x", "wild", wc); err != nil {
			t.Error(err)
		}
	})

	t.Run("certificate rotation", func(t *testing.T) {
		f := f.sub(t)
		rotated := f.issue(h1)
		sec := harness.TLSSecret(f.ns, "secure-tls", rotated)
		if _, err := f.kube.CoreV1().Secrets(f.ns).Update(context.Background(), sec, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.waitTLS(h1, "/rotated", "one", rotated)
		if err := f.checkTLS(h2, "/b", "two", c2); err != nil {
			t.Error(err)
		}
	})
}
