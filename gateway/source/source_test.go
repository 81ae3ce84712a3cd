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
		{"no generation", func(i *networkingv1.Ingress) { i.Generation = 0 }, false},
	} {
		old, updated := base(), base()
		c.change(updated)
		if c.name == "no generation" {
			old.Generation = 0
		}
		if got := statusOnly(old, updated); got != c.want {
			t.Errorf("%s: statusOnly = %v, want %v", c.name, got, c.want)
		}
	}
}
