package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/edgegate/edgegate/test/harness"
)

// route is one generated route: an Ingress with one host and one Prefix "/" path to a Service
// port whose EndpointSlice holds one of the few real backends.
type route struct {
	ns, name, host string
	svc            string // Service (and EndpointSlice base) name
	backend        int    // index of the backend that must answer
}

// workload names every object of a run. The base routes are 0..n-1; activation and churn routes
// get indexes from n on, so both controllers see exactly the same objects.
type workload struct {
	n        int
	numNS    int
	backends []*harness.Backend
	class    string // IngressClass name the Ingresses carry
}

// routesPerNamespace: real platforms spread Ingresses over many namespaces; 100 per namespace
// (capped at 100 namespaces) keeps per-namespace lists realistic without thousands of namespaces.
const (
	routesPerNamespace = 100
	maxNamespaces      = 100
)

func newWorkload(n int, backends []*harness.Backend, class string) *workload {
	return &workload{n: n, numNS: min(max(n/routesPerNamespace, 1), maxNamespaces), backends: backends, class: class}
}

func (w *workload) namespace(i int) string { return fmt.Sprintf("bench-%03d", i%w.numNS) }

// route i: i < n and the activation routes own a Service; shared routes (churn) reuse the
// Service of base route i mod n, so the change is the route alone.
func (w *workload) route(i int, ownService bool) route {
	base := i
	if !ownService {
		base = i % w.n
	}
	ns := w.namespace(base)
	return route{
		ns: ns, name: fmt.Sprintf("r%d", i), host: fmt.Sprintf("r%d.%s.bench.test", i, ns),
		svc: fmt.Sprintf("s%d", base), backend: base % len(w.backends),
	}
}

func (w *workload) backendName(r route) string { return w.backends[r.backend].Name }

// service is headless: the apiserver's ClusterIP range (10.96.0.0/16) holds 65k addresses, fewer
// than the 100k-200k Services of the large runs, and allocating one costs a second write (an
// IPAddress object) that slowed creation from ~400/s to ~150/s at 10k. Neither controller uses
// the ClusterIP (both route to EndpointSlice addresses).
func (w *workload) service(r route) *corev1.Service {
	s := harness.Service(r.ns, r.svc, harness.ServicePort("http", 80, harness.DefaultBackendPort))
	s.Spec.ClusterIP = corev1.ClusterIPNone
	return s
}

func (w *workload) endpointSlice(r route) *discoveryv1.EndpointSlice {
	return harness.EndpointSlice(r.ns, r.svc, r.svc+"-1",
		harness.Ports(harness.EndpointPort("http", harness.DefaultBackendPort)),
		harness.Endpoint(w.backends[r.backend].IP(), true))
}

func (w *workload) ingress(r route) *networkingv1.Ingress {
	return harness.Ingress(r.ns, r.name, w.class,
		harness.IngressRule(r.host, harness.IngressPath(networkingv1.PathTypePrefix, "/", r.svc, 80)))
}

// benchClient is a client for generating objects: protobuf (several times cheaper for the
// apiserver than JSON) and a rate limit far above what the apiserver takes (~1,000 creates/s
// measured on this machine), so the apiserver is the bottleneck, not client-go.
func benchClient(cfg *rest.Config) (kubernetes.Interface, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 20000, 40000
	c.ContentType = "application/vnd.kubernetes.protobuf"
	c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	c.UserAgent = "edgegate-bench"
	return kubernetes.NewForConfig(c)
}

// createWorkers: the apiserver takes creates in parallel on both cores; 32 in flight keep it busy
// without piling up requests in its queue (max-requests-inflight is 400).
const createWorkers = 32

// createBase creates the namespaces, then n routes (Service, EndpointSlice, Ingress each) with
// createWorkers in parallel. It returns the number of objects created.
func createBase(ctx context.Context, c kubernetes.Interface, w *workload) (int, error) {
	for i := range w.numNS {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.namespace(i)}}
		if err := retryCreate(ctx, func() error {
			_, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
			return err
		}); err != nil {
			return 0, fmt.Errorf("create namespace %s: %w", ns.Name, err)
		}
	}
	jobs := make(chan int)
	var created atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range createWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := createRoute(ctx, c, w, w.route(i, true), true); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				created.Add(3)
			}
		}()
	}
	start := time.Now()
	lastReport := start
feed:
	for i := range w.n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
		if time.Since(lastReport) > 10*time.Second {
			lastReport = time.Now()
			logf("  created %d/%d objects (%.0f/s)", created.Load(), 3*w.n, float64(created.Load())/time.Since(start).Seconds())
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return int(created.Load()), firstErr
	}
	return int(created.Load()) + w.numNS, ctx.Err()
}

// createRoute creates a route's Service and EndpointSlice (if withService) and then its Ingress.
func createRoute(ctx context.Context, c kubernetes.Interface, w *workload, r route, withService bool) error {
	if withService {
		if err := createService(ctx, c, w, r); err != nil {
			return err
		}
	}
	return createIngress(ctx, c, w, r)
}

func createService(ctx context.Context, c kubernetes.Interface, w *workload, r route) error {
	svc, eps := w.service(r), w.endpointSlice(r)
	if err := retryCreate(ctx, func() error {
		_, err := c.CoreV1().Services(r.ns).Create(ctx, svc, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create service %s/%s: %w", r.ns, r.svc, err)
	}
	if err := retryCreate(ctx, func() error {
		_, err := c.DiscoveryV1().EndpointSlices(r.ns).Create(ctx, eps, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create endpointslice %s/%s: %w", r.ns, eps.Name, err)
	}
	return nil
}

func createIngress(ctx context.Context, c kubernetes.Interface, w *workload, r route) error {
	ing := w.ingress(r)
	if err := retryCreate(ctx, func() error {
		_, err := c.NetworkingV1().Ingresses(r.ns).Create(ctx, ing, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create ingress %s/%s: %w", r.ns, r.name, err)
	}
	return nil
}

// retryCreate retries transient apiserver refusals (429, 5xx, timeouts) a few times; an object
// that already exists counts as created (a retried create whose first answer was lost).
func retryCreate(ctx context.Context, create func() error) error {
	const attempts = 6
	backoff := 50 * time.Millisecond
	var err error
	for range attempts {
		err = create()
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
			return nil
		case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
			apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err), errors.Is(err, context.DeadlineExceeded):
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return err
}
