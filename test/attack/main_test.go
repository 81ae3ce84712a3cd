// Package attack is the end-to-end attack suite of edgegate's multi-tenancy rules (issue 3): a
// real kube-apiserver (the shared remote cluster), the edgegate daemon built from this repository,
// the real Envoy it configures, and HTTP backends in network namespaces. Every test plays a
// hostile tenant against a victim tenant and asserts both halves of the promise: the attacker
// gets nothing (no route, no request reaches the attacker's backend or the target it aimed at, a
// Warning Event with the rule's reason on the attacker's object, the rejection in edgegate's
// /status) and the victim keeps being served throughout (a bounded request loop that must see no
// failure, or checks before and after).
//
// One apiserver and one edgegate are shared (TestMain), configured with the policies the attacks
// run into: tenant hostnames under "{tenant}.apps.test" plus a shared first-come suffix
// "free.test", a tenant with pinned custom domains and a reserved name under them, a tenant with
// a route quota of 2, a tenant with a host rate limit, no catch-all namespace, a deny-listed
// "control-plane" range and a "node" address. The restart test runs its own edgegate.
//
// Network hygiene: requests go only to Envoy's listeners on 127.0.0.1, to canaries the tests run
// on 127.0.0.1 and on the host side of their own veth pairs, and to backends inside the tests'
// own network namespaces (198.18.0.0/15). Addresses such as 169.254.169.254 appear only inside
// Kubernetes objects; the tests check they never reach Envoy's configuration.
package attack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/test/harness"
)

// className is the IngressClass of every Ingress in this package.
const className = "edgegate"

// tenantLabel groups namespaces into one tenant (clusters[].tenantLabel); namespaces without it
// are tenants of their own.
const tenantLabel = "edgegate.test/tenant"

// freeSuffix is a suffix every tenant may use, where the first claim of a name wins: the setting
// in which host ownership, not the suffix policy, is what protects a victim.
const freeSuffix = "free.test"

// Per-tenant policies need the tenants' names in edgegate's configuration, so those namespaces are
// named at start-up (one test each creates its namespace).
var named = struct {
	pinned, quota, rated string
	brand                string // the pinned tenant's custom domain
}{
	pinned: "attack-pinned-" + harness.RandomSuffix(),
	quota:  "attack-quota-" + harness.RandomSuffix(),
	rated:  "attack-rated-" + harness.RandomSuffix(),
	brand:  "brand-" + harness.RandomSuffix() + ".test",
}

// Host rate limit of the rated tenant: a bucket of rateBurst tokens refilled with rateRPS a second.
const (
	rateRPS   = 2
	rateBurst = 4
)

// quotaRoutes is the quota tenant's route quota.
const quotaRoutes = 2

// shared is the package's apiserver, edgegate and client, set by TestMain.
var shared struct {
	dir      string
	bin      string
	kube     *harness.Kube
	edgegate *harness.Edgegate
	client   *harness.Client
	tlsCA    *harness.CA

	// ctlNet plays the platform's control-plane network: its /24 is in
	// tenancy.deniedEndpointRanges and ctlBackend is a service inside it.
	ctlNet     *harness.Netns
	ctlBackend *harness.Backend
	// nodeNet's host-side veth address existed when edgegate started, so it is one of the node's
	// own addresses; tests run node-local canaries on it (newCanary).
	nodeNet *harness.Netns
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	return harness.RunMain(m, harness.Suite{
		Name: "attack",
		Setup: func(dir string) error {
			shared.dir = dir
			return setup(dir)
		},
		Teardown:  teardown,
		OnFailure: func(dir string) { saveConfigDump(filepath.Join(dir, "envoy-config-dump.json")) },
		Logs: func() string {
			if shared.edgegate == nil {
				return ""
			}
			return shared.edgegate.Logs()
		},
	})
}

func setup(dir string) error {
	binDir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	bin, err := harness.BuildEdgegate(binDir)
	if err != nil {
		return err
	}
	shared.bin = bin
	if shared.tlsCA, err = harness.NewCA("edgegate-attack-tls-ca"); err != nil {
		return err
	}
	// Created before edgegate starts: the node net's host address must be on an interface then.
	if shared.ctlNet, err = harness.CreateNetns(); err != nil {
		return err
	}
	if shared.nodeNet, err = harness.CreateNetns(); err != nil {
		return err
	}
	ctlAddr, err := shared.ctlNet.NewAddr()
	if err != nil {
		return err
	}
	if shared.ctlBackend, err = shared.ctlNet.StartBackend("control-plane", netip.AddrPortFrom(ctlAddr, harness.DefaultBackendPort)); err != nil {
		return err
	}

	kubeDir := filepath.Join(dir, "kube")
	if err := os.MkdirAll(kubeDir, 0o755); err != nil {
		return err
	}
	if shared.kube, err = harness.StartKube(kubeDir); err != nil {
		return err
	}
	_, err = shared.kube.Client.NetworkingV1().IngressClasses().Create(context.Background(),
		harness.IngressClass(className, harness.IngressController, false), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create ingressclass: %w", err)
	}
	egDir := filepath.Join(dir, "edgegate")
	if err := os.MkdirAll(egDir, 0o755); err != nil {
		return err
	}
	cfg, err := harness.NewEdgegateConfig(egDir, shared.kube.Kubeconfig)
	if err != nil {
		return err
	}
	applyPolicy(&cfg)
	if shared.edgegate, err = harness.WriteEdgegate(bin, egDir, cfg); err != nil {
		return err
	}
	if err := shared.edgegate.StartAndWait(); err != nil {
		return err
	}
	shared.client = newClient(cfg)
	return nil
}

// applyPolicy sets the tenancy policy and limits the attacks run into.
func applyPolicy(cfg *harness.EdgegateConfig) {
	cfg.Clusters[0].TenantLabel = tenantLabel
	cfg.Tenancy = config.Tenancy{
		Hostnames: config.Hostnames{
			AllowedSuffixes: []string{"{tenant}.apps.test", freeSuffix},
			Reserved:        []string{"login." + named.brand},
		},
		CatchAllNamespaces: nil, // nobody may route hosts nobody owns
		Tenants: map[string]config.TenantPolicy{
			named.pinned: {PinnedHostnames: []string{"*." + named.brand}},
			named.quota:  {Quota: &config.Quota{MaxRoutes: quotaRoutes}},
			named.rated:  {HostLimits: &config.HostLimits{RequestsPerSecond: rateRPS, Burst: rateBurst}},
		},
		DeniedEndpointRanges: []string{shared.ctlNet.Prefix.String()},
	}
}

func saveConfigDump(path string) {
	dump, err := shared.edgegate.EnvoyConfigDump()
	if err == nil {
		err = os.WriteFile(path, []byte(dump), 0o644)
	}
	if err != nil {
		fmt.Println("attack: envoy config dump:", err)
		return
	}
	fmt.Println("attack: envoy config dump saved to", path)
}

func teardown() error {
	var err error
	if shared.edgegate != nil {
		err = shared.edgegate.Stop()
	}
	if shared.kube != nil {
		shared.kube.Close()
	}
	if shared.ctlBackend != nil {
		shared.ctlBackend.Stop()
	}
	for _, n := range []*harness.Netns{shared.ctlNet, shared.nodeNet} {
		if n != nil {
			if derr := n.Delete(); derr != nil && err == nil {
				err = derr
			}
		}
	}
	return err
}

func newClient(cfg harness.EdgegateConfig) *harness.Client {
	return &harness.Client{
		HTTPAddr:  harness.ListenerAddr(cfg, "http"),
		HTTPSAddr: harness.ListenerAddr(cfg, "https"),
		Roots:     shared.tlsCA.Pool(),
	}
}

// canary is a node-local HTTP service an attacker would like to reach through Envoy (on
// 127.0.0.1, or on one of the node's own addresses): it counts every request, so a test can
// assert that none arrived.
type canary struct {
	addr *net.TCPAddr
	srv  *http.Server
	hits atomic.Int64
}

// newCanary listens on a free port of ip in the main namespace until the test ends.
func newCanary(t testing.TB, ip string) *canary {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("canary on %s: %v", ip, err)
	}
	c := &canary{addr: l.Addr().(*net.TCPAddr)}
	c.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			c.hits.Add(1)
			_, _ = w.Write([]byte("node-local secret\n"))
		}),
		ReadHeaderTimeout: 5 * time.Second, // bounds a stuck client; never reached by a test
	}
	go func() { _ = c.srv.Serve(l) }()
	t.Cleanup(func() { _ = c.srv.Close() })
	return c
}

func (c *canary) ip() string      { return c.addr.IP.String() }
func (c *canary) port() int32     { return int32(c.addr.Port) }
func (c *canary) hitCount() int64 { return c.hits.Load() }

// reachable proves the canary answers a direct request, so "no hits" means Envoy did not send
// any, not that the canary was unreachable.
func (c *canary) reachable() error {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + c.addr.String() + "/")
	if err != nil {
		return fmt.Errorf("canary %s not reachable directly: %w", c.addr, err)
	}
	resp.Body.Close()
	c.hits.Add(-1) // the direct request is not an attack
	return nil
}
