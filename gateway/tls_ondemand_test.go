package gateway_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestEnvoySelectsCertificatesOnDemand checks the HTTPS listener's on-demand certificate selection
// in the real Envoy: a host's own certificate, a wildcard's certificate for a name under it, a
// failed handshake (not a hang) for a name nobody serves or no SNI, and a new certificate served
// without any change to the listener.
func TestEnvoySelectsCertificatesOnDemand(t *testing.T) {
	port := startBackend(t, "tls")
	tlsIngress := func(name, host string) []runtime.Object {
		certPEM, keyPEM, _ := selfSigned(t, host)
		secret := &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}}
		secret.Name, secret.Namespace = name+"-tls", "team"
		return append(decode(t, fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: %[1]s, namespace: team}
spec:
  ingressClassName: edgegate
  tls: [{hosts: ["%[2]s"], secretName: %[1]s-tls}]
  rules:
  - host: "%[2]s"
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: tls, port: {number: 80}}}}]}
`, name, host)), secret)
	}
	objs := decode(t, service("tls", port), ingressClass)
	objs = append(objs, tlsIngress("wild", "*.wild.example.com")...)
	objs = append(objs, tlsIngress("own", "own.wild.example.com")...)
	r := newRig(t, objs)
	addr := fmt.Sprintf("127.0.0.1:%d", r.tlsPort)

	// served returns the common name of the certificate Envoy presents for sni.
	served := func(sni string) (string, error) {
		d := &net.Dialer{Timeout: 5 * time.Second, Deadline: time.Now().Add(5 * time.Second)}
		c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
	}
	eventually(t, func() string {
		if cn, err := served("own.wild.example.com"); err != nil || cn != "own.wild.example.com" {
			return fmt.Sprintf("own.wild.example.com: certificate %q, %v", cn, err)
		}
		return ""
	})
	if cn, err := served("a.wild.example.com"); err != nil || cn != "*.wild.example.com" {
		t.Errorf("a.wild.example.com: certificate %q, %v; want the wildcard's", cn, err)
	}
	for _, sni := range []string{"nobody.example.org", "b.a.wild.example.com", ""} {
		cn, err := served(sni)
		var ne net.Error
		switch {
		case err == nil:
			t.Errorf("SNI %q: handshake succeeded with certificate %q; want it refused", sni, cn)
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
			t.Errorf("SNI %q: handshake hung until the deadline; want it refused at once: %v", sni, err)
		}
	}

	// A new certificate is served without touching the listener.
	before, err := adminStats(http.DefaultClient, r.admin, "listener_manager.lds.update_success")
	if err != nil {
		t.Fatal(err)
	}
	objs = append(objs, tlsIngress("late", "late.example.com")...)
	r.update(objs)
	eventually(t, func() string {
		if cn, err := served("late.example.com"); err != nil || cn != "late.example.com" {
			return fmt.Sprintf("late.example.com: certificate %q, %v", cn, err)
		}
		return ""
	})
	if code, e := r.getTLS("late.example.com", "/"); code != 200 || e.Backend != "tls" {
		t.Errorf("https://late.example.com/: %d from %q", code, e.Backend)
	}
	after, err := adminStats(http.DefaultClient, r.admin, "listener_manager.lds.update_success")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := after["listener_manager.lds.update_success"], before["listener_manager.lds.update_success"]; a != b {
		t.Errorf("adding a certificate updated the listeners (%d → %d LDS updates)", b, a)
	}
}
