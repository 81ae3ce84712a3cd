package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKubeBackends starts the apiserver, publishes a backend living in a test
// namespace through a Service and an EndpointSlice, reads the slice back and
// reaches the backend at the published address from the main namespace.
func TestKubeBackends(t *testing.T) {
	k := NewKube(t)
	n := NewNetns(t)
	b := n.Backend(t, "one")
	ctx := context.Background()
	ns := NewNamespace(t, k.Client)

	if _, err := k.Client.CoreV1().Services(ns).Create(ctx, Service(ns, "web", ServicePort("http", 80, b.Port())), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slice := EndpointSlice(ns, "web", "web-1", Ports(EndpointPort("http", b.Port())), Endpoint(b.IP(), true))
	if _, err := k.Client.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create endpointslice with netns address %s: %v", b.IP(), err)
	}
	got, err := k.Client.DiscoveryV1().EndpointSlices(ns).Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := got.Endpoints[0].Addresses[0]
	port := *got.Ports[0].Port

	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/some/path", addr, port))
	if err != nil {
		t.Fatalf("reach backend at published address: %v", err)
	}
	defer resp.Body.Close()
	var e Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if want := (Echo{Backend: "one", Host: fmt.Sprintf("%s:%d", addr, port), Path: "/some/path"}); e != want {
		t.Errorf("got %+v, want %+v", e, want)
	}
	if b.Requests() != 1 {
		t.Errorf("backend counted %d requests, want 1", b.Requests())
	}

	b.Stop()
	if _, err := c.Get(fmt.Sprintf("http://%s:%d/", addr, port)); err == nil {
		t.Errorf("stopped backend still answers")
	}
}

// TestKubeRestart kills the apiserver and starts it again on the same etcd:
// objects survive and the same client works again.
func TestKubeRestart(t *testing.T) {
	k := NewKube(t)
	ctx := context.Background()
	ns := NewNamespace(t, k.Client)
	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		t.Fatal("apiserver answers after Kill")
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace lost across restart: %v", err)
	}
	if err := k.Stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("write after second restart: %v", err)
	}
	data, err := os.ReadFile(k.Kubeconfig)
	if err != nil || len(data) == 0 {
		t.Fatalf("kubeconfig %s: %v", k.Kubeconfig, err)
	}
}

// TestEnvoyClient runs the real Envoy from a static bootstrap that routes one
// host to a backend in a test namespace over plain HTTP and TLS, and checks
// what the Client reports: backend, host, path, served certificate, 404.
func TestEnvoyClient(t *testing.T) {
	RequireRoot(t)
	n := NewNetns(t)
	b := n.Backend(t, "static")
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(CertRequest{CommonName: "app.example.test", DNSNames: []string{"app.example.test"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"tls.crt": cert.CertPEM, "tls.key": cert.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addrs := FreeAddrs(t, 3)
	bootstrap := filepath.Join(dir, "bootstrap.yaml")
	if err := os.WriteFile(bootstrap, []byte(staticBootstrap(addrs, b.Addr, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	e := NewEnvoy(t, bootstrap, addrs[2])
	if err := e.WaitReady(); err != nil {
		t.Fatalf("%v\n%s", err, LogTail(e.LogPath, 8<<10))
	}
	c := &Client{HTTPAddr: addrs[0], HTTPSAddr: addrs[1], Roots: ca.Pool()}

	Eventually(t, DefaultTimeout, "plain http", func() error { return c.CheckBackend("app.example.test", "/a/b", "static") })
	r, err := c.Get("APP.example.test", "/x")
	if err != nil {
		t.Fatal(err)
	}
	if r.Echo == nil || r.Echo.Host != "APP.example.test" {
		t.Errorf("Host header not passed as sent: %s", r)
	}
	if err := c.CheckStatus("other.example.test", "/", http.StatusNotFound); err != nil {
		t.Error(err)
	}
	r, err = c.GetTLS("app.example.test", "app.example.test", "/tls")
	if err != nil {
		t.Fatal(err)
	}
	if err := ExpectBackend(r, "app.example.test", "/tls", "static"); err != nil {
		t.Error(err)
	}
	if len(r.PeerCertificates) == 0 || r.PeerCertificates[0].SerialNumber.Cmp(cert.Cert.SerialNumber) != 0 {
		t.Errorf("served certificate is not the one configured")
	}
	if _, err := c.GetTLS("wrong.example.test", "app.example.test", "/"); err == nil {
		t.Errorf("TLS with an SNI the certificate does not cover verified")
	}

	res := c.Load("app.example.test", "/load", "static", 50, 5*time.Millisecond, 10*time.Second, nil)
	if res.Sent != 50 || res.Failures != 0 {
		t.Errorf("load: %+v", res)
	}
	b.Stop()
	if err := c.CheckBackend("app.example.test", "/", "static"); err == nil {
		t.Errorf("request succeeded with the backend stopped")
	}
	body, err := e.Admin("/ready")
	if err != nil || body == "" {
		t.Errorf("admin /ready: %q %v", body, err)
	}
	_ = io.Discard
}

func staticBootstrap(addrs []string, backend netip.AddrPort, dir string) string {
	lh := func(a string) (string, string) {
		ap := netip.MustParseAddrPort(a)
		return ap.Addr().String(), fmt.Sprint(ap.Port())
	}
	httpIP, httpPort := lh(addrs[0])
	tlsIP, tlsPort := lh(addrs[1])
	adminIP, adminPort := lh(addrs[2])
	hcm := `
          - name: envoy.filters.network.http_connection_manager
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
              stat_prefix: %s
              http_filters:
              - name: envoy.filters.http.router
                typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
              route_config:
                virtual_hosts:
                - name: app
                  domains: ["app.example.test"]
                  routes: [{match: {prefix: "/"}, route: {cluster: backend}}]`
	return fmt.Sprintf(`admin:
  address: {socket_address: {address: %s, port_value: %s}}
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: %s, port_value: %s}}
    filter_chains:
    - filters:%s
  - name: https
    address: {socket_address: {address: %s, port_value: %s}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: %s/tls.crt}
              private_key: {filename: %s/tls.key}
      filters:%s
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: %s, port_value: %d}}}
`, adminIP, adminPort, httpIP, httpPort, fmt.Sprintf(hcm, "http"), tlsIP, tlsPort, dir, dir, fmt.Sprintf(hcm, "https"),
		backend.Addr(), backend.Port())
}
