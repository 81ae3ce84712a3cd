package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

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
