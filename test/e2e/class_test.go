package e2e

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/edgegate/edgegate/test/harness"
)

// TestIngressClassSelection does not run in parallel: it makes an
// IngressClass the cluster default, which changes how every class-less
// Ingress is treated.
func TestIngressClassSelection(t *testing.T) {
	f := newFixture(t)
	f.service("mine")
	f.service("theirs")
	classes, err := f.kube.NetworkingV1().IngressClasses().List(f.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range classes.Items {
		if c.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			t.Fatalf("precondition: IngressClass %s is already the default", c.Name)
		}
	}
	own, other := "eg-"+f.ns, "other-"+f.ns
	f.create(harness.IngressClass(own, harness.IngressController, false))
	f.create(harness.IngressClass(other, "example.com/other", false))

	route := func(svc string) networkingv1.HTTPIngressPath { return harness.IngressPath(prefix, "/", svc, 80) }
	hTheirs, hMissing, hClassless, hMine := f.host("theirs"), f.host("missing"), f.host("classless"), f.host("mine")
	// The ignored Ingresses are created first: once the served one is live,
	// edgegate has seen them.
	f.create(harness.Ingress(f.ns, "theirs", other, harness.IngressRule(hTheirs, route("theirs"))))
	f.create(harness.Ingress(f.ns, "missing", "no-such-class-"+f.ns, harness.IngressRule(hMissing, route("theirs"))))
	f.create(harness.Ingress(f.ns, "classless", "", harness.IngressRule(hClassless, route("mine"))))
	f.create(harness.Ingress(f.ns, "mine", own, harness.IngressRule(hMine, route("mine"))))

	f.waitBackend(hMine, "/", "mine")
	f.expectNotRouted(hTheirs, "/")
	f.expectNotRouted(hMissing, "/")
	f.expectNotRouted(hClassless, "/") // no default class yet
	f.waitStatus("mine", statusAddresses)
	if ing, err := f.kube.NetworkingV1().Ingresses(f.ns).Get(f.ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Error(err)
	} else if len(ing.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("edgegate wrote status on an Ingress of another class: %+v", ing.Status.LoadBalancer.Ingress)
	}

	setDefault := func(isDefault bool) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			ic, err := f.kube.NetworkingV1().IngressClasses().Get(f.ctx, own, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if isDefault {
				ic.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
			} else {
				delete(ic.Annotations, networkingv1.AnnotationIsDefaultIngressClass)
			}
			_, err = f.kube.NetworkingV1().IngressClasses().Update(f.ctx, ic, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("set default class %v: %v", isDefault, err)
		}
	}
	setDefault(true)
	t.Cleanup(func() { setDefault(false) })

	// A class-less Ingress created before the class became the default is
	// served through the annotation.
	f.waitBackend(hClassless, "/", "mine")
	f.expectNotRouted(hTheirs, "/")

	// One created now gets spec.ingressClassName from the apiserver's
	// DefaultIngressClass admission plugin.
	hLater := f.host("later")
	f.create(harness.Ingress(f.ns, "later", "", harness.IngressRule(hLater, route("mine"))))
	f.waitBackend(hLater, "/", "mine")

	// Without a default class, the class-less Ingress is no longer edgegate's.
	setDefault(false)
	f.waitNotRouted(hClassless, "/")
	f.expectBackend(hLater, "/", "mine")
	f.expectBackend(hMine, "/", "mine")
}
