package source

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
)

func TestCompactService(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u-1", ResourceVersion: "42", Labels: map[string]string{"a": "b"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("web"), NodePort: 30080, Protocol: corev1.ProtocolTCP}}},
	}
	c, err := strip(svc)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := strip(c); again != c {
		t.Fatal("strip is not idempotent on a compact Service")
	}
	key, err := cache.MetaNamespaceKeyFunc(c)
	if err != nil || key != "ns/web" {
		t.Fatalf("key = %q, %v; want ns/web", key, err)
	}
	if m, err := meta.Accessor(c); err != nil || m.GetResourceVersion() != "42" {
		t.Fatalf("resourceVersion lost (updates would look like resyncs): %v", err)
	}
	got := c.(*cachedService).service()
	if got.Namespace != "ns" || got.Name != "web" || got.UID != "u-1" || got.Spec.Type != corev1.ServiceTypeExternalName ||
		got.Spec.ExternalName != "db.example.com" || len(got.Spec.Ports) != 1 || got.Spec.Ports[0] != svc.Spec.Ports[0] {
		t.Fatalf("rebuilt Service lost what translation reads: %+v", got)
	}
}

func TestCompactEndpointSlice(t *testing.T) {
	yes, no := true, false
	name, port, tcp := "http", int32(8080), corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "web-abc", ResourceVersion: "7", Labels: map[string]string{discoveryv1.LabelServiceName: "web", "x": "y"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &tcp}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.1", "10.0.0.9"}}, // ready unset: ready
			{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &yes}},
			{Addresses: []string{"10.0.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: &no}},
			{}, // no address: never usable
		},
	}
	c, _ := strip(slice)
	cs := c.(*cachedSlice)
	if cs.service != "web" {
		t.Fatalf("service = %q, want web", cs.service)
	}
	got := cs.slice()
	if got.Labels[discoveryv1.LabelServiceName] != "web" || got.AddressType != discoveryv1.AddressTypeIPv4 || len(got.Ports) != 1 || *got.Ports[0].Port != 8080 {
		t.Fatalf("rebuilt slice lost its service, type or ports: %+v", got)
	}
	if len(got.Endpoints) != 3 {
		t.Fatalf("%d endpoints, want 3 (the one without an address dropped)", len(got.Endpoints))
	}
	for i, want := range []struct {
		addr  string
		ready bool
	}{{"10.0.0.1", true}, {"10.0.0.2", true}, {"10.0.0.3", false}} {
		e := got.Endpoints[i]
		ready := e.Conditions.Ready == nil || *e.Conditions.Ready
		if len(e.Addresses) != 1 || e.Addresses[0] != want.addr || ready != want.ready {
			t.Errorf("endpoint %d = %v ready=%v, want %s ready=%v", i, e.Addresses, ready, want.addr, want.ready)
		}
	}
}

func TestCompactIngress(t *testing.T) {
	class, pt := "edgegate", networkingv1.PathTypePrefix
	created, deleted := metav1.Unix(1700000000, 0), metav1.Unix(1700000100, 0)
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}
	full := func() *networkingv1.Ingress {
		return &networkingv1.Ingress{
			TypeMeta: metav1.TypeMeta{Kind: "Ingress", APIVersion: "networking.k8s.io/v1"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u-1", ResourceVersion: "42", Generation: 3,
				CreationTimestamp: created, DeletionTimestamp: &deleted, Labels: map[string]string{"app": "web"},
				Annotations: map[string]string{
					"kubernetes.io/ingress.class":                      "edgegate",
					"nginx.ingress.kubernetes.io/rewrite-target":       "/",
					"example.com/server-snippet":                       "return 200;",
					"kubectl.kubernetes.io/last-applied-configuration": "{}",
					"unrelated.example.com/owner":                      "team-a",
				},
				ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
				OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web"}},
				Finalizers:      []string{"example.com/f"},
			},
			Spec: networkingv1.IngressSpec{IngressClassName: &class, DefaultBackend: &backend,
				TLS: []networkingv1.IngressTLS{{Hosts: []string{"web.example.com"}, SecretName: "web-tls"}},
				Rules: []networkingv1.IngressRule{{Host: "web.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pt, Backend: backend}}}}}}},
			Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{
				Ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1", Ports: []networkingv1.IngressPortStatus{{Port: 443}}}}}},
		}
	}
	c, err := strip(full())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*cachedIngress); !ok {
		t.Fatalf("strip cached a %T, want *cachedIngress", c)
	}
	if again, _ := strip(c); again != c {
		t.Fatal("strip is not idempotent on a compact Ingress")
	}
	key, err := cache.MetaNamespaceKeyFunc(c)
	if err != nil || key != "ns/web" {
		t.Fatalf("key = %q, %v; want ns/web", key, err)
	}
	if m, err := meta.Accessor(c); err != nil || m.GetResourceVersion() != "42" {
		t.Fatalf("resourceVersion lost (updates would look like resyncs): %v", err)
	}

	want := full()
	want.ObjectMeta = metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u-1", ResourceVersion: "42", Generation: 3,
		CreationTimestamp: created, DeletionTimestamp: &deleted, Annotations: map[string]string{
			"kubernetes.io/ingress.class":                "edgegate",
			"nginx.ingress.kubernetes.io/rewrite-target": "/",
			"example.com/server-snippet":                 "return 200;",
		}}
	want.TypeMeta = metav1.TypeMeta{} // as decoded list items arrive; Events look the kind up in the scheme
	if diff := cmp.Diff(want, c.(*cachedIngress).ingress()); diff != "" {
		t.Fatalf("rebuilt Ingress differs from what the pipeline reads (-want +got):\n%s", diff)
	}
}

// TestCompactUID: a UUID (what the apiserver makes) is kept as its 16 bytes and comes back as the
// same text; anything else comes back unchanged.
func TestCompactUID(t *testing.T) {
	for _, uid := range []types.UID{"0b9f6a3e-5c1d-4e2f-9a8b-7c6d5e4f3a2b", "0B9F6A3E-5C1D-4E2F-9A8B-7C6D5E4F3A2B", "u-1", ""} {
		m := metaOf(&metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: uid})
		if got := m.objectMeta().UID; got != uid {
			t.Errorf("UID %q came back as %q", uid, got)
		}
		if uid == "0b9f6a3e-5c1d-4e2f-9a8b-7c6d5e4f3a2b" && m.otherUID != "" {
			t.Errorf("a UUID was kept as text")
		}
	}
}

// meta.Accessor reads a compact object without building an ObjectMeta, and an Ingress's kept
// metadata reads as it was.
func TestCompactAccessor(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	obj, _ := strip(&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: "9",
		Generation: 4, CreationTimestamp: created, Annotations: map[string]string{"kubernetes.io/ingress.class": "x"}}})
	var m metav1.Object
	if n := testing.AllocsPerRun(100, func() { m, _ = meta.Accessor(obj) }); n != 0 {
		t.Fatalf("meta.Accessor allocates %.0f times", n)
	}
	if key, _ := cache.MetaNamespaceKeyFunc(obj); key != "ns/web" || m.GetResourceVersion() != "9" || m.GetGeneration() != 4 ||
		!m.GetCreationTimestamp().Time.Equal(created.Time) || m.GetAnnotations()["kubernetes.io/ingress.class"] != "x" {
		t.Fatalf("key %q, metadata %+v", key, m)
	}
}
