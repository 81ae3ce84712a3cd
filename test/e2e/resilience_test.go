package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/test/harness"
)

// The tests in this file kill or restart components, so each has its own
// apiserver and edgegate and none runs in parallel.

// Request loops: one request every loadInterval, bounded in count and time.
// At 10 ms a loop covers a restart with a few hundred requests; the counts
// are upper bounds that are never reached unless something hangs.
const (
	loadInterval = 10 * time.Millisecond
	loadMaxCount = 3000
	loadMaxTime  = 90 * time.Second
)

// reconnectTimeout bounds how long edgegate may take to see changes again
// after the apiserver returns: client-go's watch backoff caps at 30 s.
const reconnectTimeout = 60 * time.Second

// privateEdgegate starts an apiserver with the shared IngressClass and an
// edgegate watching it; mutate adjusts the configuration first.
func privateEdgegate(t *testing.T, mutate func(*harness.EdgegateConfig)) (*harness.Kube, *harness.Edgegate, *harness.Client) {
	t.Helper()
	k := harness.NewKube(t)
	_, err := k.Client.NetworkingV1().IngressClasses().Create(context.Background(),
		harness.IngressClass(className, harness.IngressController, false), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := harness.NewEdgegateConfig(t.TempDir(), k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Ingress.StatusAddresses = statusAddresses
	if mutate != nil {
		mutate(&cfg)
	}
	return k, harness.NewEdgegate(t, shared.bin, cfg), newClient(cfg)
}

// TestAPIServerDown kills the remote cluster's apiserver: Envoy keeps serving
// the last configuration without a single failed request, edgegate stays up,
// and once the apiserver is back a new Ingress is picked up.
func TestAPIServerDown(t *testing.T) {
	k, eg, c := privateEdgegate(t, nil)
	if err := eg.StartAndWait(); err != nil {
		t.Fatal(err)
	}
	f := newFixtureOn(t, k, c)
	f.service("a")
	host := f.host("steady")
	f.ingress("steady", harness.IngressRule(host, harness.IngressPath(prefix, "/", "a", 80)))
	f.waitBackend(host, "/", "a")

	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	// ~500 requests over 5+ s: long enough for edgegate's watches to fail and
	// start retrying.
	res := c.Load(host, "/", "a", 500, loadInterval, loadMaxTime, nil)
	t.Logf("apiserver down: %d requests, %d failures", res.Sent, res.Failures)
	if res.Failures != 0 {
		t.Errorf("%d of %d requests failed while the apiserver was down: %v", res.Failures, res.Sent, res.Errors)
	}
	if exited, err := eg.Process().Exited(); exited {
		t.Fatalf("edgegate exited while the apiserver was down: %v", err)
	}

	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	f.service("b")
	after := f.host("after")
	created := time.Now()
	f.ingress("after", harness.IngressRule(after, harness.IngressPath(prefix, "/", "b", 80)))
	// client-go's reflectors back off exponentially (up to 30 s) while the
	// apiserver is down, so the first change after it returns may wait that long.
	harness.Eventually(t, reconnectTimeout, "new ingress served after the apiserver restart", func() error {
		return c.CheckBackend(after, "/", "b")
	})
	t.Logf("apiserver back: a new Ingress was served %v after its creation", time.Since(created).Round(time.Millisecond))
	f.expectBackend(host, "/", "a")
	f.waitStatus("after", statusAddresses)
}

// TestEdgegateRestart runs Envoy itself, as systemd does in production
// (envoy.mode external), and restarts edgegate twice, gracefully and by
// SIGKILL, under a steady request loop: no request may fail, and each new
// edgegate must take over Envoy's configuration and apply a new change.
func TestEdgegateRestart(t *testing.T) {
	k, eg, c := privateEdgegate(t, func(cfg *harness.EdgegateConfig) {
		cfg.Envoy.Mode = config.EnvoyExternal
		cfg.Envoy.Binary = ""
	})
	if err := eg.Start(); err != nil {
		t.Fatal(err)
	}
	bootstrap := eg.Config.Envoy.BootstrapPath
	harness.Eventually(t, harness.DefaultTimeout, "edgegate writes the envoy bootstrap", func() error {
		_, err := os.Stat(bootstrap)
		return err
	})
	envoy := harness.NewEnvoy(t, bootstrap, eg.Config.Envoy.AdminAddress)
	if err := eg.WaitReady(); err != nil {
		t.Fatalf("%v\n%s", err, eg.Logs())
	}
	if err := envoy.WaitReady(); err != nil {
		t.Fatal(err)
	}

	f := newFixtureOn(t, k, c)
	f.service("a")
	host := f.host("steady")
	f.ingress("steady", harness.IngressRule(host, harness.IngressPath(prefix, "/", "a", 80)))
	f.waitBackend(host, "/", "a")

	for i, how := range []string{"sigterm", "sigkill"} {
		t.Run(how, func(t *testing.T) {
			f := f.sub(t)
			stop := make(chan struct{})
			during := make(chan harness.LoadResult, 1)
			go func() { during <- c.Load(host, "/", "a", loadMaxCount, loadInterval, loadMaxTime, stop) }()

			var err error
			if how == "sigterm" {
				err = eg.Stop()
			} else {
				err = eg.Kill()
			}
			if err != nil {
				t.Errorf("stop edgegate (%s): %v", how, err)
			}
			if err := eg.StartAndWait(); err != nil {
				close(stop)
				<-during
				t.Fatal(err)
			}
			// Keep traffic flowing while the new edgegate takes over Envoy's
			// xDS stream and pushes its first configuration.
			settle := c.Load(host, "/", "a", 200, loadInterval, loadMaxTime, nil)
			close(stop)
			res := <-during
			t.Logf("restart by %s: %d requests during, %d after; %d and %d failures",
				how, res.Sent, settle.Sent, res.Failures, settle.Failures)
			if res.Failures+settle.Failures != 0 {
				t.Errorf("requests failed across the edgegate restart: %v %v", res.Errors, settle.Errors)
			}
			if exited, err := envoy.Exited(); exited {
				t.Fatalf("envoy exited during the edgegate restart: %v", err)
			}

			f.service(fmt.Sprintf("new%d", i))
			newHost := f.host(fmt.Sprintf("new%d", i))
			f.ingress(fmt.Sprintf("new%d", i), harness.IngressRule(newHost, harness.IngressPath(prefix, "/", fmt.Sprintf("new%d", i), 80)))
			f.waitBackend(newHost, "/", fmt.Sprintf("new%d", i))
			f.expectBackend(host, "/", "a")
		})
	}
}
