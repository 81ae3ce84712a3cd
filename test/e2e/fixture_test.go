package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/edgegate/edgegate/test/harness"
)

// fixture is one test's view of a cluster and an edgegate: its namespace,
// its network namespace for backends, and a client for Envoy's listeners.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	kube   kubernetes.Interface
	ns     string
	net    *harness.Netns
	client *harness.Client
}

// newFixture uses the package's shared apiserver and edgegate.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, shared.kube, shared.client)
}

func newFixtureOn(t *testing.T, k *harness.Kube, c *harness.Client) *fixture {
	t.Helper()
	return &fixture{
		t: t, ctx: context.Background(), kube: k.Client,
		ns: harness.NewNamespace(t, k.Client), net: harness.NewNetns(t), client: c,
	}
}

// newFixtureIn uses the shared apiserver and edgegate with namespace ns,
// which it creates (for namespaces named in edgegate's configuration).
func newFixtureIn(t *testing.T, ns string) *fixture {
	t.Helper()
	harness.CreateNamespace(t, shared.kube.Client, ns)
	return &fixture{
		t: t, ctx: context.Background(), kube: shared.kube.Client,
		ns: ns, net: harness.NewNetns(t), client: shared.client,
	}
}

// sub is the fixture for subtest t (same namespace, network and client):
// failures must be reported on the test whose goroutine runs.
func (f *fixture) sub(t *testing.T) *fixture {
	c := *f
	c.t = t
	return &c
}

// host is a host name owned by this test.
func (f *fixture) host(label string) string { return label + "." + f.ns + ".test" }

// service starts a backend called name, and publishes it as Service name
// (port "http" 80 → DefaultBackendPort) with a ready endpoint.
func (f *fixture) service(name string) *harness.Backend {
	f.t.Helper()
	b := f.net.Backend(f.t, name)
	f.create(harness.Service(f.ns, name, harness.ServicePort("http", 80, b.Port())))
	f.create(harness.EndpointSlice(f.ns, name, name+"-1",
		harness.Ports(harness.EndpointPort("http", b.Port())), harness.Endpoint(b.IP(), true)))
	return b
}

// create creates a Kubernetes object of one of the kinds the tests use.
func (f *fixture) create(obj runtime.Object) {
	f.t.Helper()
	var err error
	switch o := obj.(type) {
	case *corev1.Service:
		_, err = f.kube.CoreV1().Services(o.Namespace).Create(f.ctx, o, metav1.CreateOptions{})
	case *corev1.Secret:
		_, err = f.kube.CoreV1().Secrets(o.Namespace).Create(f.ctx, o, metav1.CreateOptions{})
	case *discoveryv1.EndpointSlice:
		_, err = f.kube.DiscoveryV1().EndpointSlices(o.Namespace).Create(f.ctx, o, metav1.CreateOptions{})
	case *networkingv1.Ingress:
		_, err = f.kube.NetworkingV1().Ingresses(o.Namespace).Create(f.ctx, o, metav1.CreateOptions{})
	case *networkingv1.IngressClass:
		_, err = f.kube.NetworkingV1().IngressClasses().Create(f.ctx, o, metav1.CreateOptions{})
	default:
		f.t.Fatalf("create: unsupported type %T", obj)
	}
	if err != nil {
		f.t.Fatalf("create %T: %v", obj, err)
	}
}

// ingress creates an Ingress of the shared class.
func (f *fixture) ingress(name string, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	f.t.Helper()
	ing := harness.Ingress(f.ns, name, className, rules...)
	f.create(ing)
	return ing
}

// updateIngress applies mutate to the current Ingress, retrying on conflict.
func (f *fixture) updateIngress(name string, mutate func(*networkingv1.Ingress)) {
	f.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ing, err := f.kube.NetworkingV1().Ingresses(f.ns).Get(f.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(ing)
		_, err = f.kube.NetworkingV1().Ingresses(f.ns).Update(f.ctx, ing, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		f.t.Fatalf("update ingress %s: %v", name, err)
	}
}

// updateSlice applies mutate to the current EndpointSlice, retrying on conflict.
func (f *fixture) updateSlice(name string, mutate func(*discoveryv1.EndpointSlice)) {
	f.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := f.kube.DiscoveryV1().EndpointSlices(f.ns).Get(f.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(s)
		_, err = f.kube.DiscoveryV1().EndpointSlices(f.ns).Update(f.ctx, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		f.t.Fatalf("update endpointslice %s: %v", name, err)
	}
}

// waitBackend waits until host+path is answered by backend want.
func (f *fixture) waitBackend(host, path, want string) {
	f.t.Helper()
	f.client.WaitBackend(f.t, host, path, want)
}

// expectBackend checks, with one request, that host+path is answered by want.
// Use it once a wait has shown that the configuration in question is live.
func (f *fixture) expectBackend(host, path, want string) {
	f.t.Helper()
	if err := f.client.CheckBackend(host, path, want); err != nil {
		f.t.Error(err)
	}
}

// expectNotRouted checks, with one request, that no backend answers host+path
// (Envoy itself answers, normally 404).
func (f *fixture) expectNotRouted(host, path string) {
	f.t.Helper()
	if err := f.notRouted(host, path); err != nil {
		f.t.Error(err)
	}
}

func (f *fixture) notRouted(host, path string) error {
	r, err := f.client.Get(host, path)
	if err != nil {
		return err
	}
	if r.Echo != nil {
		return fmt.Errorf("GET %s%s: got %s, want no route", host, path, r)
	}
	return nil
}

// waitNotRouted waits until no backend answers host+path any more.
func (f *fixture) waitNotRouted(host, path string) {
	f.t.Helper()
	harness.Eventually(f.t, harness.DefaultTimeout, "wait for "+host+path+" to have no route", func() error {
		return f.notRouted(host, path)
	})
}

// waitEvent waits until an Event is recorded on the Ingress and returns it.
func (f *fixture) waitEvent(ingress string) corev1.Event {
	f.t.Helper()
	var found corev1.Event
	harness.Eventually(f.t, harness.DefaultTimeout, "wait for an event on ingress "+ingress, func() error {
		evs, err := harness.EventsFor(f.ctx, f.kube, f.ns, "Ingress", ingress)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return fmt.Errorf("no event on ingress %s/%s yet", f.ns, ingress)
		}
		found = evs[0]
		return nil
	})
	return found
}

// seenBackends sends up to n requests and returns which backends answered how often.
func (f *fixture) seenBackends(host, path string, n int) (map[string]int, error) {
	seen := map[string]int{}
	for range n {
		r, err := f.client.Get(host, path)
		if err != nil {
			return seen, err
		}
		if r.Status != 200 || r.Echo == nil {
			return seen, fmt.Errorf("GET %s%s: %s", host, path, r)
		}
		seen[r.Echo.Backend]++
	}
	return seen, nil
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
