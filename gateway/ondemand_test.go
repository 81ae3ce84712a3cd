package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestEnvoyDiscoversClustersOnDemand checks that Envoy holds only the clusters requests needed:
// a host's cluster appears in Envoy when the host is first requested (the request waits for it
// rather than failing), and an unused host's cluster is never sent.
func TestEnvoyDiscoversClustersOnDemand(t *testing.T) {
	portA, portB := startBackend(t, "a"), startBackend(t, "b")
	objs := decode(t, service("svc-a", portA), service("svc-b", portB), ingressClass, `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: two, namespace: team}
spec:
  ingressClassName: edgegate
  rules:
  - host: a.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: svc-a, port: {number: 80}}}}]}
  - host: b.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: svc-b, port: {number: 80}}}}]}
`)
	r := newRig(t, objs)
	clusters := func() string {
		resp, err := http.Get("http://" + r.admin + "/clusters")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	const clusterA, clusterB = "main/team/svc-a/80::", "main/team/svc-b/80::"
	eventually(t, func() string {
		if code, e := r.get("a.example.com", "/"); code != 200 || e.Backend != "a" {
			return fmt.Sprintf("a.example.com: %d from %q", code, e.Backend)
		}
		return ""
	})
	if c := clusters(); !strings.Contains(c, clusterA) || strings.Contains(c, clusterB) {
		t.Fatalf("after requests to a.example.com only, Envoy's clusters are:\n%s\nwant svc-a's and not svc-b's", c)
	}
	// The first request to b.example.com is answered, not failed, while its cluster is fetched.
	if code, e := r.get("b.example.com", "/"); code != 200 || e.Backend != "b" {
		t.Fatalf("first request to b.example.com: %d from %q, want 200 from b", code, e.Backend)
	}
	if c := clusters(); !strings.Contains(c, clusterB) {
		t.Fatalf("after a request to b.example.com, Envoy's clusters lack svc-b's:\n%s", c)
	}
}
