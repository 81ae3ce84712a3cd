package gateway_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

// benchObjects makes n+extra Ingresses, each with its own host, Service and one-endpoint
// EndpointSlice at addr:port, spread over 100 namespaces.
func benchObjects(n, extra int, addr string, port int32) []runtime.Object {
	class := "edgegate"
	pt := networkingv1.PathTypePrefix
	ready := true
	objs := []runtime.Object{&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "edgegate"}, Spec: networkingv1.IngressClassSpec{Controller: "edgegate.io/ingress"}}}
	for i := range n + extra {
		ns := fmt.Sprintf("t%d", i%100)
		svc := fmt.Sprintf("s%d", i)
		objs = append(objs,
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: svc + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
				AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: strPtr("http"), Port: &port}},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}},
			&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns}, Spec: networkingv1.IngressSpec{IngressClassName: &class,
				Rules: []networkingv1.IngressRule{{Host: svc + "." + ns + ".example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
				}}}}}})
	}
	return objs
}

func strPtr(s string) *string { return &s }

// benchSource serves objs as cluster "main".
func benchSource(b *testing.B, objs []runtime.Object) *mutableSource {
	s, err := source.NewStatic("main", "pod", objs)
	if err != nil {
		b.Fatal(err)
	}
	return &mutableSource{Static: s}
}

// benchGateway is a pipeline over src with its own xDS server, silent, until the benchmark ends.
func benchGateway(b *testing.B, src gateway.Source, cfg gateway.Config) (*gateway.Gateway, *xdsserver.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Controller = "edgegate.io/ingress"
	if cfg.Tenancy == nil {
		cfg.Tenancy = &tenancy.Policy{}
	}
	xds := xdsserver.New(ctx, log)
	return gateway.New(cfg, log, []gateway.Source{src}, nil, xds, nil), xds
}

// BenchmarkProcessOneNewIngress measures the controller's work for one new Ingress (with its
// Service and EndpointSlice) when 50k are already served: it must not grow with the table.
func BenchmarkProcessOneNewIngress(b *testing.B) {
	const n = 50_000
	all := benchObjects(n, b.N, "198.18.0.10", 8080) // never sent traffic
	src := benchSource(b, all[:1+3*n])
	gw, _ := benchGateway(b, src, gateway.Config{})
	gw.TranslateAll()
	full, err := source.NewStatic("main", "pod", all)
	if err != nil {
		b.Fatal(err)
	}
	src.Static = full // every object is visible; only the events say what changed
	b.ResetTimer()
	for i := range b.N {
		k := n + i
		ns, name := fmt.Sprintf("t%d", k%100), fmt.Sprintf("s%d", k)
		gw.Process(
			source.Event{Cluster: "main", Kind: source.KindService, Namespace: ns, Name: name},
			source.Event{Cluster: "main", Kind: source.KindEndpointSlice, Namespace: ns, Name: name},
			source.Event{Cluster: "main", Kind: source.KindIngress, Namespace: ns, Name: name},
		)
	}
}

var (
	pipelineIngresses   = flag.Int("pipeline-ingresses", 50_000, "Ingresses for BenchmarkPipelineHeap")
	pipelineHeapProfile = flag.String("pipeline-heapprofile", "", "BenchmarkPipelineHeap: write a heap profile here while the pipeline is live")
)

// BenchmarkPipelineHeap reports the live heap the pipeline keeps for -pipeline-ingresses Ingresses
// (each with its Service and EndpointSlice), excluding the objects themselves (the informer caches'
// share, reported apart as objects-MiB), and the time of a full translation.
func BenchmarkPipelineHeap(b *testing.B) {
	n := *pipelineIngresses
	goruntime.GC()
	var empty goruntime.MemStats
	goruntime.ReadMemStats(&empty)
	objs := benchObjects(n, 0, "198.18.0.10", 8080) // never sent traffic
	src := benchSource(b, objs)
	goruntime.GC()
	var loaded goruntime.MemStats
	goruntime.ReadMemStats(&loaded)
	var live uint64
	var took time.Duration
	for range b.N {
		goruntime.GC()
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		gw, _ := benchGateway(b, src, gateway.Config{})
		start := time.Now()
		gw.TranslateAll()
		took = time.Since(start)
		goruntime.GC()
		goruntime.ReadMemStats(&after)
		live = after.HeapAlloc - before.HeapAlloc
		if *pipelineHeapProfile != "" {
			f, err := os.Create(*pipelineHeapProfile)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.WriteHeapProfile(f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		goruntime.KeepAlive(gw)
	}
	b.ReportMetric(float64(live)/(1<<20), "live-MiB")
	b.ReportMetric(float64(live)/float64(n)/1024, "live-KiB/ingress")
	b.ReportMetric(float64(loaded.HeapAlloc-empty.HeapAlloc)/(1<<20), "objects-MiB")
	b.ReportMetric(took.Seconds(), "translate-all-s")
}
