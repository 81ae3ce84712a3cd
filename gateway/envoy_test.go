package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/edgegate/edgegate/appliance/envoy"
	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/internal/envoytest"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/translate"
	"github.com/edgegate/edgegate/gateway/xdsbuild"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

// These feature tests run the pipeline over in-memory objects (source.Static) and check, through
// the real Envoy binary, which backend answers. The real apiserver path is covered in test/e2e.

type echo struct {
	Backend    string `json:"backend"`
	Host       string `json:"host"`
	Path       string `json:"path"`
	ScopeFound bool   `json:"scopeHeader"`
}

func startBackend(t testing.TB, name string) int {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(echo{Backend: name, Host: r.Host, Path: r.URL.Path, ScopeFound: r.Header.Get(xdsbuild.HostHeader) != ""})
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// mutableSource lets a test swap the objects the gateway sees.
type mutableSource struct {
	mu sync.Mutex
	*source.Static
}

func (m *mutableSource) set(t *testing.T, objs []runtime.Object) {
	s, err := source.NewStatic("main", translate.EndpointsPod, objs)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.Static = s
	m.mu.Unlock()
}

func decode(t *testing.T, docs ...string) []runtime.Object {
	t.Helper()
	var out []runtime.Object
	for _, d := range docs {
		for _, part := range strings.Split(d, "\n---\n") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(part), nil, nil)
			if err != nil {
				t.Fatalf("decode %q: %v", part, err)
			}
			out = append(out, obj)
		}
	}
	return out
}

func service(name string, port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: team}
spec:
  ports: [{name: http, port: 80, targetPort: %[2]d}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: %[1]s-1, namespace: team, labels: {kubernetes.io/service-name: %[1]s}}
addressType: IPv4
ports: [{name: http, port: %[2]d, protocol: TCP}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
`, name, port)
}

const ingressClass = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: edgegate}
spec: {controller: edgegate.io/ingress}
`

type rig struct {
	admin    string
	t        *testing.T
	gw       *gateway.Gateway
	src      *mutableSource
	httpPort int
	tlsPort  int
}

func newRig(t *testing.T, objs []runtime.Object) *rig {
	return newRigWithPolicy(t, objs, &tenancy.Policy{CatchAllNamespaces: []string{"main/team"}})
}

func newRigWithPolicy(t *testing.T, objs []runtime.Object, policy *tenancy.Policy) *rig {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r := &rig{t: t, src: &mutableSource{}, httpPort: envoytest.FreePort(t), tlsPort: envoytest.FreePort(t)}
	r.src.set(t, objs)
	xds := xdsserver.New(ctx, log)
	r.gw = gateway.New(gateway.Config{
		Controller: "edgegate.io/ingress",
		// Backends here listen on loopback, which the appliance always denies; the deny-list is
		// tested in gateway/tenancy and end to end in test/e2e.
		Tenancy: policy,
		Listeners: []xdsbuild.Listener{
			{Name: "http", Address: "127.0.0.1", Port: uint32(r.httpPort), Protocol: xdsbuild.ProtocolHTTP},
			{Name: "https", Address: "127.0.0.1", Port: uint32(r.tlsPort), Protocol: xdsbuild.ProtocolHTTPS, MinTLSVersion: "1.2"},
		},
	}, log, []gateway.Source{r.src}, nil, xds, nil)
	r.gw.TranslateAll()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = xds.Serve(ctx, lis) }()
	admin := fmt.Sprintf("127.0.0.1:%d", envoytest.FreePort(t))
	bootstrap := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := envoy.WriteBootstrap(bootstrap, envoy.BootstrapOptions{NodeID: "test", XDSAddress: lis.Addr().String(), AdminAddress: admin}); err != nil {
		t.Fatal(err)
	}
	envoytest.Start(t, bootstrap)
	envoytest.WaitReady(t, admin, 20*time.Second)
	r.admin = admin
	return r
}

// update swaps the objects and re-translates.
func (r *rig) update(objs []runtime.Object) {
	r.src.set(r.t, objs)
	r.gw.TranslateAll()
}

// get sends one request for host+path over plain HTTP and returns the status and the echo.
func (r *rig) get(host, path string, header ...string) (int, echo) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", r.httpPort, path), nil)
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(r.t, &http.Client{Timeout: 5 * time.Second}, req)
}

// getTLS sends one HTTPS request with SNI and Host host (the certificate is not verified).
func (r *rig) getTLS(host, path string) (int, echo) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", r.tlsPort, path), nil)
	req.Host = host
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true}}}
	return do(r.t, c, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, echo) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", req.Method, req.URL, req.Host, err)
	}
	defer resp.Body.Close()
	var e echo
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("decode %q: %v", body, err)
		}
	}
	return resp.StatusCode, e
}

// eventually retries check until it returns "" or the deadline passes (Envoy applies xDS
// asynchronously).
func eventually(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEnvoyRoutesIngressRules(t *testing.T) {
	ports := map[string]int{}
	var svcs []string
	for _, b := range []string{"exact", "prefix", "root", "wild", "catchall", "other"} {
		ports[b] = startBackend(t, b)
		svcs = append(svcs, service(b, ports[b]))
	}
	rules := `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: team}
spec:
  ingressClassName: edgegate
  rules:
  - host: app.example.com
    http:
      paths:
      - {path: /exact, pathType: Exact, backend: {service: {name: exact, port: {number: 80}}}}
      - {path: /pre, pathType: Prefix, backend: {service: {name: prefix, port: {name: http}}}}
      - {path: /, pathType: Prefix, backend: {service: {name: root, port: {number: 80}}}}
  - host: "*.wild.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: wild, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fallback, namespace: team}
spec:
  ingressClassName: edgegate
  defaultBackend: {service: {name: catchall, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: not-ours, namespace: team}
spec:
  ingressClassName: nginx
  rules:
  - host: other.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}
`
	objs := decode(t, append(svcs, ingressClass, rules)...)
	r := newRig(t, objs)

	cases := []struct {
		name, host, path string
		header           []string
		want             string
	}{
		{"exact path", "app.example.com", "/exact", nil, "exact"},
		{"exact does not match a longer path", "app.example.com", "/exact/more", nil, "root"},
		{"prefix matches itself", "app.example.com", "/pre", nil, "prefix"},
		{"prefix matches sub-paths", "app.example.com", "/pre/x/y", nil, "prefix"},
		{"prefix is element-wise", "app.example.com", "/prefix", nil, "root"},
		{"root prefix", "app.example.com", "/anything", nil, "root"},
		{"host is case-insensitive", "APP.Example.COM", "/pre", nil, "prefix"},
		{"host port is ignored", "app.example.com:8080", "/exact", nil, "exact"},
		{"trailing dot is ignored", "app.example.com.", "/exact", nil, "exact"},
		{"wildcard matches one label", "x.wild.example.com", "/", nil, "wild"},
		{"wildcard does not match two labels", "y.x.wild.example.com", "/", nil, "catchall"},
		{"wildcard does not match its parent", "wild.example.com", "/", nil, "catchall"},
		{"unknown host goes to the default backend", "unknown.example.org", "/", nil, "catchall"},
		{"other class is ignored", "other.example.com", "/", nil, "catchall"},
		{"scope header cannot be spoofed", "unknown.example.org", "/", []string{xdsbuild.HostHeader, "app.example.com"}, "catchall"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eventually(t, func() string {
				code, e := r.get(tc.host, tc.path, tc.header...)
				if code != 200 || e.Backend != tc.want {
					return fmt.Sprintf("Host %s %s: got %d from %q, want 200 from %q", tc.host, tc.path, code, e.Backend, tc.want)
				}
				if e.ScopeFound {
					return "the backend received the internal scope header"
				}
				if e.Host != tc.host {
					return fmt.Sprintf("backend saw Host %q, want %q unchanged", e.Host, tc.host)
				}
				return ""
			})
		})
	}

	t.Run("backend cluster stats are dropped, Envoy's own kept", func(t *testing.T) {
		resp, err := http.Get("http://" + r.admin + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "cluster.main/team/") {
			t.Errorf("Envoy keeps stats of backend clusters (the stats matcher does not match them)")
		}
		if !strings.Contains(string(body), "cluster.edgegate-xds.") {
			t.Errorf("Envoy dropped the xDS cluster's stats")
		}
	})

	t.Run("update and delete", func(t *testing.T) {
		changed := strings.Replace(rules, "      - {path: /pre, pathType: Prefix, backend: {service: {name: prefix, port: {name: http}}}}\n", "", 1)
		r.update(decode(t, append(svcs, ingressClass, changed)...))
		eventually(t, func() string {
			if code, e := r.get("app.example.com", "/pre"); code != 200 || e.Backend != "root" {
				return fmt.Sprintf("after removing /pre: got %d from %q, want root", code, e.Backend)
			}
			return ""
		})
		r.update(decode(t, append(svcs, ingressClass)...))
		eventually(t, func() string {
			if code, _ := r.get("app.example.com", "/exact"); code != 404 {
				return fmt.Sprintf("after deleting every Ingress: got %d, want 404", code)
			}
			return ""
		})
	})
}

func TestEnvoyTerminatesTLSBySNI(t *testing.T) {
	port := startBackend(t, "secure")
	certPEM, keyPEM, pool := selfSigned(t, "secure.example.com")
	secret := &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}}
	secret.Name, secret.Namespace = "secure-tls", "team"
	objs := decode(t, service("secure", port), ingressClass, `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: secure, namespace: team}
spec:
  ingressClassName: edgegate
  tls: [{hosts: [secure.example.com], secretName: secure-tls}]
  rules:
  - host: secure.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: secure, port: {number: 80}}}}
`)
	r := newRig(t, append(objs, secret))
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "secure.example.com"},
	}}
	eventually(t, func() string {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/x", r.tlsPort), nil)
		req.Host = "secure.example.com"
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Sprintf("https request: %v", err)
		}
		defer resp.Body.Close()
		var e echo
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode != 200 || e.Backend != "secure" {
			return fmt.Sprintf("got %d from %q, want 200 from secure", resp.StatusCode, e.Backend)
		}
		if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != "secure.example.com" {
			return fmt.Sprintf("served certificate CN %q", got)
		}
		return ""
	})
	// The same host over plain HTTP is still routed.
	if code, e := r.get("secure.example.com", "/"); code != 200 || e.Backend != "secure" {
		t.Errorf("plain HTTP: got %d from %q", code, e.Backend)
	}
}

func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), pool
}
