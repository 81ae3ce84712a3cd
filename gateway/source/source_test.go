package source

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStatusOnly(t *testing.T) {
	base := func() *networkingv1.Ingress {
		return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "a", Generation: 3, Annotations: map[string]string{"kubernetes.io/ingress.class": "edgegate"}}}
	}
	now := metav1.Now()
	for _, c := range []struct {
		name   string
		change func(*networkingv1.Ingress)
		want   bool
	}{
		{"status only", func(i *networkingv1.Ingress) {
			i.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1"}}
		}, true},
		{"spec (generation)", func(i *networkingv1.Ingress) { i.Generation++ }, false},
		{"kept annotation", func(i *networkingv1.Ingress) { i.Annotations["kubernetes.io/ingress.class"] = "other" }, false},
		{"deletion", func(i *networkingv1.Ingress) { i.DeletionTimestamp = &now }, false},
	} {
		old, updated := base(), base()
		c.change(updated)
		if got := statusOnly(cached(t, old), cached(t, updated)); got != c.want {
			t.Errorf("%s: statusOnly = %v, want %v", c.name, got, c.want)
		}
	}
	// An object without a generation cannot be told apart: every update counts.
	old, updated := base(), base()
	old.Generation, updated.Generation = 0, 0
	if statusOnly(cached(t, old), cached(t, updated)) {
		t.Error("no generation: statusOnly = true, want false")
	}
}

// cached is ing as the informer caches it and hands it to its update handlers.
func cached(t *testing.T, ing *networkingv1.Ingress) any {
	t.Helper()
	c, err := strip(ing)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
