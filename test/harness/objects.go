package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a namespace named after the test plus a random suffix.
// Namespaces never finish deleting without a controller-manager, so each test
// gets a fresh one and none is deleted.
func NewNamespace(t testing.TB, c kubernetes.Interface) string {
	t.Helper()
	name := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 40 {
		name = strings.Trim(name[:40], "-")
	}
	name += "-" + RandomSuffix()
	CreateNamespace(t, c, name)
	return name
}

// CreateNamespace creates the namespace name (for tests whose namespace must
// be known in advance, for example in edgegate's configuration).
func CreateNamespace(t testing.TB, c kubernetes.Interface, name string) {
	t.Helper()
	_, err := c.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// RandomSuffix is six random hex digits, for unique object names.
func RandomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

// ServicePort is a TCP Service port mapping port to targetPort.
func ServicePort(name string, port, targetPort int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(targetPort)}
}

// Service is a ClusterIP Service without a selector (endpoints are created by
// the tests, as there is no controller-manager).
func Service(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: ports},
	}
}

// EndpointPort is a named TCP EndpointSlice port.
func EndpointPort(name string, port int32) discoveryv1.EndpointPort {
	proto := corev1.ProtocolTCP
	return discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto}
}

// Endpoint is an EndpointSlice endpoint with the given readiness.
func Endpoint(ip string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
}

// EndpointSlice is an IPv4 EndpointSlice owned (by label) by Service svc.
func EndpointSlice(ns, svc, name string, ports []discoveryv1.EndpointPort, endpoints ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "edgegate-test"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
		Endpoints:   endpoints,
	}
}

// IngressClass is a cluster-scoped IngressClass; isDefault sets the
// ingressclass.kubernetes.io/is-default-class annotation.
func IngressClass(name, controller string, isDefault bool) *networkingv1.IngressClass {
	ic := &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       networkingv1.IngressClassSpec{Controller: controller},
	}
	if isDefault {
		ic.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	}
	return ic
}

// IngressBackend points at a Service port given by number (int32 / int) or
// by name (string).
func IngressBackend(svc string, port any) networkingv1.IngressBackend {
	b := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc}}
	switch p := port.(type) {
	case int32:
		b.Service.Port.Number = p
	case int:
		b.Service.Port.Number = int32(p)
	case string:
		b.Service.Port.Name = p
	default:
		panic(fmt.Sprintf("IngressBackend port must be a number or a name, got %T", port))
	}
	return b
}

// IngressPath is one HTTP path of a rule.
func IngressPath(pathType networkingv1.PathType, path, svc string, port any) networkingv1.HTTPIngressPath {
	pt := pathType
	return networkingv1.HTTPIngressPath{Path: path, PathType: &pt, Backend: IngressBackend(svc, port)}
}

// IngressRule is a host rule with HTTP paths; host "" matches every host.
func IngressRule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
		HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths},
	}}
}

// Ingress is an Ingress of class className ("" for none) with the rules.
func Ingress(ns, name, className string, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.IngressSpec{Rules: rules},
	}
	if className != "" {
		ing.Spec.IngressClassName = &className
	}
	return ing
}

// TLSSecret is a kubernetes.io/tls Secret holding cert.
func TLSSecret(ns, name string, cert *Cert) *corev1.Secret {
	return RawTLSSecret(ns, name, cert.CertPEM, cert.KeyPEM)
}

// RawTLSSecret is a kubernetes.io/tls Secret with arbitrary contents (for
// bad-input tests; the apiserver does not check them).
func RawTLSSecret(ns, name string, crt, key []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}
}

// EventsFor lists the Events in ns whose involvedObject is the named object
// of the given kind (core/v1 view; events.k8s.io/v1 Events appear there too,
// with regarding mapped to involvedObject).
func EventsFor(ctx context.Context, c kubernetes.Interface, ns, kind, name string) ([]corev1.Event, error) {
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name}.AsSelector().String()
	list, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list events for %s %s/%s: %w", kind, ns, name, err)
	}
	return list.Items, nil
}

// Ports collects EndpointSlice ports.
func Ports(ports ...discoveryv1.EndpointPort) []discoveryv1.EndpointPort { return ports }
