// Package edge tests the whole edgegate daemon at the edge: real `edgegate run` processes, each in
// its own node network namespace and supervising its own Envoy, fed by the real kube-apiserver of the
// harness, serving an Ingress through a VIP to a client namespace. In L2 mode the VIP moves between
// nodes by gossip (vip/); in BGP mode an FRR router spreads it over the nodes by ECMP (bgp/).
//
// The apiserver stays on the host's 127.0.0.1; each node namespace reaches it through a forwarder
// listening on the same 127.0.0.1 address inside the namespace, so the kubeconfig and its
// certificates stay valid. Every address (198.18.0.0/15) lives only inside namespaces the test
// creates and that are not routed from the host, so parallel runs cannot collide. One apiserver is
// shared by the package (TestMain); each test builds its own lab and daemons and removes them.
package edge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/test/harness"
)

// className is the IngressClass every test uses.
const className = "edgegate"

// shared is the package's apiserver and edgegate binary, set by TestMain.
var shared struct {
	dir  string
	bin  string
	kube *harness.Kube
}

func TestMain(m *testing.M) {
	os.Exit(harness.RunMain(m, harness.Suite{
		Name:  "edge",
		Setup: setup,
		Teardown: func() error {
			if shared.kube != nil {
				shared.kube.Close()
			}
			return nil
		},
	}))
}

func setup(dir string) error {
	shared.dir = dir
	binDir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	bin, err := harness.BuildEdgegate(binDir)
	if err != nil {
		return err
	}
	shared.bin = bin
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
	return nil
}
