package gateway_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/tenancy"
)

// TestEnvoyEnforcesHostLimits checks the per-host token bucket and body limit in the real Envoy.
func TestEnvoyEnforcesHostLimits(t *testing.T) {
	port := startBackend(t, "limited")
	objs := decode(t, service("limited", port), ingressClass, `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: limited, namespace: team}
spec:
  ingressClassName: edgegate
  rules:
  - host: limited.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: limited, port: {number: 80}}}}]}
`)
	const burst = 5
	r := newRigWithPolicy(t, objs, &tenancy.Policy{HostLimits: model.HostLimits{RequestsPerSecond: 1, Burst: burst, MaxRequestBytes: 1024}})
	eventually(t, func() string {
		if code, _ := r.get("limited.example.com", "/"); code != 200 {
			return fmt.Sprintf("limited host not served yet: %d", code)
		}
		return ""
	})
	// A bounded burst: 30 requests as fast as possible. With 1 token/s and a bucket of 5 (one of
	// which the check above used), at most burst+2 can pass within the few hundred ms this takes.
	ok, limited := 0, 0
	start := time.Now()
	for range 30 {
		code, _ := r.get("limited.example.com", "/")
		switch code {
		case 200:
			ok++
		case 429:
			limited++
		default:
			t.Fatalf("unexpected status %d", code)
		}
	}
	if ok > burst+int(time.Since(start).Seconds())+1 || limited == 0 {
		t.Errorf("burst of 30: %d passed, %d limited; want at most ~%d to pass", ok, limited, burst)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	time.Sleep(1100 * time.Millisecond) // refill one token for the body checks (rate, not sync)
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/upload", r.httpPort), strings.NewReader(strings.Repeat("x", 4096)))
	req.Host = "limited.example.com"
	if code, _ := do(t, client, req); code != http.StatusRequestEntityTooLarge {
		t.Errorf("4 KiB body to a host limited to 1 KiB: got %d, want 413", code)
	}
}

// TestEnvoyRoutesToAllowedExternalName checks an admin-allowed ExternalName Service end to end:
// Envoy resolves the name itself ("localhost" here, the only name a test may resolve).
func TestEnvoyRoutesToAllowedExternalName(t *testing.T) {
	port := startBackend(t, "external")
	objs := decode(t, ingressClass, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: ext, namespace: team}
spec: {type: ExternalName, externalName: localhost, ports: [{port: %d}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ext, namespace: team}
spec:
  ingressClassName: edgegate
  rules:
  - host: ext.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: ext, port: {number: %d}}}}]}
`, port, port))
	r := newRigWithPolicy(t, objs, &tenancy.Policy{ExternalNames: []string{"localhost"}})
	eventually(t, func() string {
		if code, e := r.get("ext.example.com", "/"); code != 200 || e.Backend != "external" {
			return fmt.Sprintf("ExternalName route: got %d from %q", code, e.Backend)
		}
		return ""
	})
}

// TestEnvoyLimitsConnectionsPerCertificate checks limits.host.maxConnections in the real Envoy: a
// client holding the limit's worth of TLS connections to one host cannot open another, while a host
// served with another certificate still accepts connections, and a freed slot can be used again.
func TestEnvoyLimitsConnectionsPerCertificate(t *testing.T) {
	port := startBackend(t, "conns")
	var objs []runtime.Object
	pools := map[string]*x509.CertPool{}
	for _, name := range []string{"busy", "calm"} {
		host := name + ".example.com"
		certPEM, keyPEM, pool := selfSigned(t, host)
		pools[host] = pool
		secret := &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}}
		secret.Name, secret.Namespace = name+"-tls", "team"
		objs = append(objs, secret)
		objs = append(objs, decode(t, fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: %[1]s, namespace: team}
spec:
  ingressClassName: edgegate
  tls: [{hosts: [%[2]s], secretName: %[1]s-tls}]
  rules:
  - host: %[2]s
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: conns, port: {number: 80}}}}]}
`, name, host))...)
	}
	objs = append(objs, decode(t, service("conns", port), ingressClass)...)
	const limit = 3
	r := newRigWithPolicy(t, objs, &tenancy.Policy{HostLimits: model.HostLimits{MaxConnections: limit}})
	addr := fmt.Sprintf("127.0.0.1:%d", r.tlsPort)

	// open dials one TLS connection and sends one request on it, keeping the connection open.
	open := func(host string) (net.Conn, error) {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: host, RootCAs: pools[host]})
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			c.Close()
			return nil, fmt.Errorf("status %d", resp.StatusCode)
		}
		return c, nil
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	eventually(t, func() string {
		c, err := open("busy.example.com")
		if err != nil {
			return fmt.Sprintf("busy host not served over TLS yet: %v", err)
		}
		held = append(held, c)
		return ""
	})
	for len(held) < limit {
		c, err := open("busy.example.com")
		if err != nil {
			t.Fatalf("connection %d of %d: %v", len(held)+1, limit, err)
		}
		held = append(held, c)
	}
	if c, err := open("busy.example.com"); err == nil {
		c.Close()
		t.Fatalf("connection %d to busy.example.com succeeded; the limit is %d", limit+1, limit)
	}
	// Another certificate's host is not affected by the busy one.
	c, err := open("calm.example.com")
	if err != nil {
		t.Fatalf("calm.example.com while busy.example.com is at its limit: %v", err)
	}
	c.Close()
	// A closed connection frees its slot (Envoy counts down when it sees the close).
	held[0].Close()
	held = held[1:]
	eventually(t, func() string {
		c, err := open("busy.example.com")
		if err != nil {
			return fmt.Sprintf("busy host after a connection closed: %v", err)
		}
		held = append(held, c)
		return ""
	})
}

// TestEnvoyClosesIdleBackendConnections checks limits.backend.idleTimeout in the real Envoy: the
// pooled connection to a backend is closed once unused for that long (Envoy's default is an hour).
func TestEnvoyClosesIdleBackendConnections(t *testing.T) {
	var closed atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(echo{Backend: "idle"})
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	objs := decode(t, service("idle", port), ingressClass, `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: idle, namespace: team}
spec:
  ingressClassName: edgegate
  rules:
  - host: idle.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: idle, port: {number: 80}}}}]}
`)
	r := newRigWithPolicy(t, objs, &tenancy.Policy{BackendLimits: model.BackendLimits{IdleTimeoutMillis: 300}})
	eventually(t, func() string {
		if code, e := r.get("idle.example.com", "/"); code != 200 || e.Backend != "idle" {
			return fmt.Sprintf("idle.example.com: %d from %q", code, e.Backend)
		}
		return ""
	})
	eventually(t, func() string {
		if closed.Load() == 0 {
			return "Envoy kept its idle connection to the backend open"
		}
		return ""
	})
}
