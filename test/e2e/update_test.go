package e2e

import (
	"fmt"
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/test/harness"
)

func TestUpdatePath(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("a")
	host := f.host("upd")
	f.ingress("upd", harness.IngressRule(host, harness.IngressPath(prefix, "/old", "a", 80)))
	f.waitBackend(host, "/old", "a")

	f.updateIngress("upd", func(ing *networkingv1.Ingress) {
		ing.Spec.Rules[0].HTTP.Paths[0].Path = "/new"
	})
	f.waitBackend(host, "/new", "a")
	f.waitNotRouted(host, "/old")
}

func TestUpdateBackend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("a")
	f.service("b")
	host := f.host("swap")
	f.ingress("swap", harness.IngressRule(host, harness.IngressPath(prefix, "/", "a", 80)))
	f.waitBackend(host, "/", "a")

	f.updateIngress("swap", func(ing *networkingv1.Ingress) {
		ing.Spec.Rules[0].HTTP.Paths[0].Backend = harness.IngressBackend("b", 80)
	})
	f.waitBackend(host, "/", "b")
	if seen, err := f.seenBackends(host, "/", 10); err != nil || seen["b"] != 10 {
		t.Errorf("after the switch: seen %v, %v; want only b", seen, err)
	}
}

func TestUpdateHostAndEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.service("a")
	a2 := f.net.Backend(t, "a2")
	h1, h2 := f.host("before"), f.host("after")
	f.ingress("host", harness.IngressRule(h1, harness.IngressPath(prefix, "/", "a", 80)))
	f.waitBackend(h1, "/", "a")

	// The Service's only endpoint moves to another address.
	f.updateSlice("a-1", func(s *discoveryv1.EndpointSlice) {
		s.Endpoints = []discoveryv1.Endpoint{harness.Endpoint(a2.IP(), true)}
	})
	f.waitBackend(h1, "/", "a2")
	before := a.Requests()

	f.updateIngress("host", func(ing *networkingv1.Ingress) { ing.Spec.Rules[0].Host = h2 })
	f.waitBackend(h2, "/", "a2")
	f.waitNotRouted(h1, "/")
	if a.Requests() != before {
		t.Errorf("old endpoint served %d requests after it left the EndpointSlice", a.Requests()-before)
	}
}

func TestDeleteIngress(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("a")
	host, keep := f.host("gone"), f.host("kept")
	f.ingress("gone", harness.IngressRule(host, harness.IngressPath(prefix, "/", "a", 80)))
	f.ingress("kept", harness.IngressRule(keep, harness.IngressPath(prefix, "/", "a", 80)))
	f.waitBackend(host, "/", "a")
	f.waitBackend(keep, "/", "a")

	if err := f.kube.NetworkingV1().Ingresses(f.ns).Delete(f.ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.client.WaitStatus(t, host, "/", 404)
	f.expectBackend(keep, "/", "a")
}

func TestIngressStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.service("a")
	host := f.host("status")
	ing := harness.Ingress(f.ns, "status", className, harness.IngressRule(host, harness.IngressPath(prefix, "/", "a", 80)))
	// Metadata edgegate strips from its cache must survive its status writes.
	ing.Labels = map[string]string{"team": "blue"}
	ing.Annotations = map[string]string{"example.com/owner": "blue-team"}
	f.create(ing)
	f.waitStatus("status", statusAddresses)
	f.expectBackend(host, "/", "a")
	got, err := f.kube.NetworkingV1().Ingresses(f.ns).Get(f.ctx, "status", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["team"] != "blue" || got.Annotations["example.com/owner"] != "blue-team" {
		t.Errorf("status write changed the Ingress' metadata: labels %v annotations %v", got.Labels, got.Annotations)
	}
}

// waitStatus waits until the Ingress' status.loadBalancer.ingress lists
// exactly the IPs want (in any order).
func (f *fixture) waitStatus(name string, want []string) {
	f.t.Helper()
	want = slices.Sorted(slices.Values(want))
	harness.Eventually(f.t, harness.DefaultTimeout, "wait for status of ingress "+name, func() error {
		ing, err := f.kube.NetworkingV1().Ingresses(f.ns).Get(f.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var got []string
		for _, lb := range ing.Status.LoadBalancer.Ingress {
			if lb.Hostname != "" {
				return fmt.Errorf("status has hostname %q, want only IPs %v", lb.Hostname, want)
			}
			got = append(got, lb.IP)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("status.loadBalancer.ingress IPs %v, want %v", got, want)
		}
		return nil
	})
}
