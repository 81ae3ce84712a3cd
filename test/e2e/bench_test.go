package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/test/harness"
)

// benchPoll is how often the benchmarks probe Envoy: fine enough to measure
// activation latencies of tens of milliseconds.
const benchPoll = 2 * time.Millisecond

// waitFast polls check every benchPoll for up to DefaultTimeout.
func waitFast(b *testing.B, what string, check func() error) {
	b.Helper()
	deadline := time.Now().Add(harness.DefaultTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %v", what, err)
		}
		time.Sleep(benchPoll) // polling interval of a latency probe, not synchronisation
	}
}

// BenchmarkIngressActivation measures the time from creating an Ingress (for
// a new host, on an existing Service) to the first request Envoy routes for
// it: apiserver write, watch, debounce, translation, delta xDS, Envoy apply.
func BenchmarkIngressActivation(b *testing.B) {
	harness.RequireRoot(b)
	ctx := context.Background()
	k := shared.kube.Client
	ns := harness.NewNamespace(b, k)
	n := harness.NewNetns(b)
	be := n.Backend(b, "a")
	mustCreate(b)(k.CoreV1().Services(ns).Create(ctx, harness.Service(ns, "a", harness.ServicePort("http", 80, be.Port())), metav1.CreateOptions{}))
	mustCreate(b)(k.DiscoveryV1().EndpointSlices(ns).Create(ctx, harness.EndpointSlice(ns, "a", "a-1",
		harness.Ports(harness.EndpointPort("http", be.Port())), harness.Endpoint(be.IP(), true)), metav1.CreateOptions{}))
	for i := 0; b.Loop(); i++ {
		host := fmt.Sprintf("h%d.%s.test", i, ns)
		ing := harness.Ingress(ns, fmt.Sprintf("h%d", i), className,
			harness.IngressRule(host, harness.IngressPath(prefix, "/", "a", 80)))
		mustCreate(b)(k.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}))
		waitFast(b, "activation of "+host, func() error { return shared.client.CheckBackend(host, "/", "a") })
	}
}

// BenchmarkEndpointSwitch measures the time from moving a Service's only
// endpoint to another backend to the first request reaching the new one.
func BenchmarkEndpointSwitch(b *testing.B) {
	harness.RequireRoot(b)
	ctx := context.Background()
	k := shared.kube.Client
	ns := harness.NewNamespace(b, k)
	n := harness.NewNetns(b)
	backends := []*harness.Backend{n.Backend(b, "even"), n.Backend(b, "odd")}
	port := harness.Ports(harness.EndpointPort("http", harness.DefaultBackendPort))
	mustCreate(b)(k.CoreV1().Services(ns).Create(ctx, harness.Service(ns, "s", harness.ServicePort("http", 80, harness.DefaultBackendPort)), metav1.CreateOptions{}))
	slice, err := k.DiscoveryV1().EndpointSlices(ns).Create(ctx, harness.EndpointSlice(ns, "s", "s-1", port, harness.Endpoint(backends[0].IP(), true)), metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	host := "switch." + ns + ".test"
	mustCreate(b)(k.NetworkingV1().Ingresses(ns).Create(ctx, harness.Ingress(ns, "s", className,
		harness.IngressRule(host, harness.IngressPath(prefix, "/", "s", 80))), metav1.CreateOptions{}))
	waitFast(b, "first route", func() error { return shared.client.CheckBackend(host, "/", "even") })
	for i := 1; b.Loop(); i++ {
		to := backends[i%2]
		slice.Endpoints = []discoveryv1.Endpoint{harness.Endpoint(to.IP(), true)}
		if slice, err = k.DiscoveryV1().EndpointSlices(ns).Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitFast(b, "switch to "+to.Name, func() error { return shared.client.CheckBackend(host, "/", to.Name) })
	}
}

// mustCreate fails the benchmark if a create call failed; use as
// mustCreate(b)(client.Create(...)).
func mustCreate(b *testing.B) func(any, error) {
	return func(_ any, err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
}
