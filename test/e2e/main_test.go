// Package e2e runs edgegate end to end: a real kube-apiserver (the remote
// cluster), the edgegate daemon built from this repository, the real Envoy it
// configures over delta xDS, and HTTP backends in a network namespace. Each
// test applies Kubernetes objects and asserts, through Envoy's listeners on
// 127.0.0.1, which backend answered.
//
// One apiserver and one edgegate (supervising its Envoy) are shared by the
// package (TestMain): starting them costs seconds and hundreds of MiB each,
// and edgegate serving many tenants at once is the product's normal case.
// Tests stay independent by using a fresh namespace and host names under
// <namespace>.test. Tests that change cluster-wide state (default
// IngressClass, catch-all routes) do not call t.Parallel, so they run before
// the parallel ones start; tests that kill or restart components get their
// own apiserver and edgegate.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/test/harness"
)

// className is the IngressClass every test uses unless it tests class
// selection; it is created once, not default.
const className = "edgegate"

// statusAddresses are what the shared edgegate writes into Ingress status:
// 127.0.0.1 (where the listeners are) and a TEST-NET-1 address nobody sends
// traffic to, so the test sees the configured list rather than a guess.
var statusAddresses = []string{"127.0.0.1", "192.0.2.10"}

// catchAll names the namespaces edgegate's tenancy policy lets route hosts
// nobody owns (rules without a host, defaultBackend without rules): one per
// test that needs it, named at start-up because the configuration lists them.
var catchAll = struct{ hostless, defaultOnly string }{
	hostless:    "e2e-catchall-hostless-" + harness.RandomSuffix(),
	defaultOnly: "e2e-catchall-default-" + harness.RandomSuffix(),
}

// shared is the package's apiserver, edgegate and client, set by TestMain.
var shared struct {
	dir      string
	bin      string
	kube     *harness.Kube
	edgegate *harness.Edgegate
	client   *harness.Client
	tlsCA    *harness.CA // signs the certificates of TLS Secrets
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	return harness.RunMain(m, harness.Suite{
		Name: "e2e",
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
	if shared.tlsCA, err = harness.NewCA("edgegate-e2e-tls-ca"); err != nil {
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
	cfg.Ingress.StatusAddresses = statusAddresses
	cluster := cfg.Clusters[0].Name
	cfg.Tenancy.CatchAllNamespaces = []string{cluster + "/" + catchAll.hostless, cluster + "/" + catchAll.defaultOnly}
	cfg.MemoryLimit = sharedMemoryLimit
	if shared.edgegate, err = harness.WriteEdgegate(bin, egDir, cfg); err != nil {
		return err
	}
	if err := shared.edgegate.StartAndWait(); err != nil {
		return err
	}
	shared.client = newClient(cfg)
	return nil
}

// saveConfigDump keeps what Envoy was serving when a test failed.
func saveConfigDump(path string) {
	dump, err := shared.edgegate.EnvoyConfigDump()
	if err == nil {
		err = os.WriteFile(path, []byte(dump), 0o644)
	}
	if err != nil {
		fmt.Println("e2e: envoy config dump:", err)
		return
	}
	fmt.Println("e2e: envoy config dump saved to", path)
}

func teardown() error {
	var err error
	if shared.edgegate != nil {
		err = shared.edgegate.Stop()
	}
	if shared.kube != nil {
		shared.kube.Close()
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
