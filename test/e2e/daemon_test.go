package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/translate"
	"github.com/edgegate/edgegate/test/harness"
)

// TestHealthProbeFetchesOneIngress: the reachability probe lists one Ingress, not all of them.
// With resourceVersion=0 the apiserver answers from its watch cache and ignores the limit, which
// made every probe download (and decode) every Ingress in the cluster: 31 MB every 5 s at 100k.
func TestHealthProbeFetchesOneIngress(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := harness.NewNamespace(t, shared.kube.Client)
	for _, name := range []string{"a", "b", "c"} {
		ing := harness.Ingress(ns, name, className, harness.IngressRule(name+"."+ns+".test",
			harness.IngressPath("Prefix", "/", "svc", 80)))
		if _, err := shared.kube.Client.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Record how many items every limited Ingress list returned.
	var mu sync.Mutex
	var probes []int
	cfg := rest.CopyConfig(shared.kube.Config)
	cfg.ContentType, cfg.AcceptContentTypes = "application/json", "application/json" // to count the items
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err != nil || !strings.HasSuffix(req.URL.Path, "/ingresses") || req.URL.Query().Get("limit") != "1" {
				return resp, err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			resp.Body = io.NopCloser(strings.NewReader(string(body)))
			var list struct{ Items []json.RawMessage }
			if err == nil && json.Unmarshal(body, &list) == nil {
				mu.Lock()
				probes = append(probes, len(list.Items))
				mu.Unlock()
			}
			return resp, err
		})
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan source.Event, 1024)
	c, err := source.New("probe", translate.EndpointsPod, false, client, slog.New(slog.DiscardHandler), events)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-events:
			case <-rctx.Done():
				return
			}
		}
	}()
	go func() { _ = c.Run(rctx) }()
	defer func() { stop(); <-done }()

	for !c.Health().Reachable {
		if ctx.Err() != nil {
			t.Fatal("the probe never reported the apiserver reachable")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(probes) == 0 {
		t.Fatal("no limited Ingress list seen: the probe no longer lists Ingresses; update this test")
	}
	for _, n := range probes {
		if n != 1 {
			t.Fatalf("a probe received %d Ingresses (at least 3 exist), want 1: %v", n, probes)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// sharedMemoryLimit is the shared edgegate's memoryLimit (far above what the tests use).
const sharedMemoryLimit = "3Gi"

// TestMemoryLimitApplied: memoryLimit becomes the Go runtime's soft limit.
func TestMemoryLimitApplied(t *testing.T) {
	t.Parallel()
	metrics, _, err := shared.edgegate.Admin("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	const want = "go_gc_gomemlimit_bytes 3.221225472e+09"
	if !strings.Contains(metrics, want+"\n") {
		t.Fatalf("metrics lack %q (memoryLimit %s)", want, sharedMemoryLimit)
	}
}
