package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/test/harness"
)

// clusterStatus reads edgegate's /status for the health of each remote cluster.
func clusterStatus(t *testing.T, eg *harness.Edgegate) map[string]struct {
	Synced    bool   `json:"synced"`
	LastError string `json:"lastError"`
} {
	t.Helper()
	body, code, err := eg.Admin("/status")
	if err != nil || code != 200 {
		t.Fatalf("GET /status: %d %v", code, err)
	}
	var st struct {
		Clusters map[string]struct {
			Synced    bool   `json:"synced"`
			LastError string `json:"lastError"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("decode /status: %v\n%s", err, body)
	}
	return st.Clusters
}

// TestClusterDownLeavesOthersServing watches two remote clusters. When one apiserver dies, Envoy keeps
// serving both clusters' routes, changes in the other cluster still go live, and /status names the
// failing cluster with its error.
func TestClusterDownLeavesOthersServing(t *testing.T) {
	second := harness.NewKube(t)
	if _, err := second.Client.NetworkingV1().IngressClasses().Create(context.Background(),
		harness.IngressClass(className, harness.IngressController, false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first, eg, c := privateEdgegate(t, func(cfg *harness.EdgegateConfig) {
		cfg.Clusters = append(cfg.Clusters, config.Cluster{Name: "second", Kubeconfig: second.Kubeconfig, EndpointMode: config.EndpointsPod})
	})
	if err := eg.StartAndWait(); err != nil {
		t.Fatal(err)
	}
	f1, f2 := newFixtureOn(t, first, c), newFixtureOn(t, second, c)
	f1.service("one")
	f2.service("two")
	h1, h2 := f1.host("one"), f2.host("two")
	f1.ingress("one", harness.IngressRule(h1, harness.IngressPath(prefix, "/", "one", 80)))
	f2.ingress("two", harness.IngressRule(h2, harness.IngressPath(prefix, "/", "two", 80)))
	f1.waitBackend(h1, "/", "one")
	f2.waitBackend(h2, "/", "two")

	if err := second.Kill(); err != nil {
		t.Fatal(err)
	}
	res := c.Load(h2, "/", "two", 300, loadInterval, loadMaxTime, nil)
	if res.Failures != 0 {
		t.Errorf("the dead cluster's route failed %d of %d requests: %v", res.Failures, res.Sent, res.Errors)
	}
	// The live cluster's changes still go through, promptly.
	h3 := f1.host("three")
	f1.ingress("three", harness.IngressRule(h3, harness.IngressPath(prefix, "/", "one", 80)))
	f1.waitBackend(h3, "/", "one")
	f2.expectBackend(h2, "/", "two")

	harness.Eventually(t, 60*time.Second, "the dead cluster shows in /status", func() error {
		st := clusterStatus(t, eg)
		if st["second"].LastError == "" {
			return fmt.Errorf("/status shows no error for the dead cluster: %+v", st)
		}
		if st["main"].LastError != "" {
			return fmt.Errorf("/status shows an error for the live cluster: %+v", st)
		}
		return nil
	})
}

// TestUnauthorisedClusterAtStart starts edgegate with one good cluster and one whose credentials
// the apiserver refuses: after the start-up grace the good cluster is served, and /status shows the
// refused one as not synced with its error.
func TestUnauthorisedClusterAtStart(t *testing.T) {
	var badKubeconfig string
	k, eg, c := privateEdgegate(t, func(cfg *harness.EdgegateConfig) {
		cfg.Ingress.StartupGrace = config.Duration{Duration: 3 * time.Second}
		badKubeconfig = filepath.Join(t.TempDir(), "bad.kubeconfig")
		cfg.Clusters = append(cfg.Clusters, config.Cluster{Name: "refused", Kubeconfig: badKubeconfig, EndpointMode: config.EndpointsPod})
	})
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, certificate-authority-data: %q}}]
users: [{name: u, user: {token: not-a-valid-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, k.URL, encodeBase64(k.CA.CertPEM))
	if err := os.WriteFile(badKubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixtureOn(t, k, c)
	f.service("a")
	host := f.host("good")
	f.ingress("good", harness.IngressRule(host, harness.IngressPath(prefix, "/", "a", 80)))
	if err := eg.StartAndWait(); err != nil {
		t.Fatal(err)
	}
	f.waitBackend(host, "/", "a")
	st := clusterStatus(t, eg)
	if st["refused"].Synced || st["refused"].LastError == "" {
		t.Errorf("refused cluster: %+v, want not synced with an error", st["refused"])
	}
	if !st["main"].Synced {
		t.Errorf("good cluster not synced: %+v", st["main"])
	}
}

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
