package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/translate"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

// FuzzIngress translates an arbitrary attacker Ingress, created after a victim tenant's Ingress, and checks
// that translation never panics, every generated resource passes Envoy's proto validation, and the
// victim's host is still served by the victim alone. Run longer with
// go test ./gateway -run '^$' -fuzz FuzzIngress -fuzztime 60s.
func FuzzIngress(f *testing.F) {
	f.Add("victim.example.com", "/", uint8(1), "web", int32(80), "", "", "secret", "victim.example.com")
	f.Add("*.example.com", "/x", uint8(0), "web", int32(0), "http", "nginx.ingress.kubernetes.io/server-snippet", "", "")
	f.Add("VICTIM.example.com.", "/a/../b", uint8(2), "nope", int32(9), "", "x", "v", "*.example.com")
	f.Add("", "/%2e%2e/", uint8(3), "web", int32(80), "", "", "", "")
	f.Add("a.b.c.example.com", "/p ath?q#f", uint8(1), "web", int32(-1), "grpc", "", "", "a.b.c.example.com")
	f.Fuzz(func(t *testing.T, host, path string, pathType uint8, svc string, portNum int32, portName, annKey, tlsSecret, tlsHost string) {
		pt := []networkingv1.PathType{networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific, "Regex"}[int(pathType)%4]
		class := "edgegate"
		backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: portName, Number: portNum}}}
		attacker := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "attack", Namespace: "evil", CreationTimestamp: metav1.Date(2026, 1, 1, 0, 50, 0, 0, time.UTC), // after the victim
				Annotations: map[string]string{annKey: path}},
			Spec: networkingv1.IngressSpec{
				IngressClassName: &class,
				DefaultBackend:   &backend,
				Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: path, PathType: &pt, Backend: backend}},
				}}}},
				TLS: []networkingv1.IngressTLS{{Hosts: []string{tlsHost}, SecretName: tlsSecret}},
			},
		}
		victim := decode(t, ingressClass, nsService("victim", "198.18.0.10"), ing("victim", "site", 1, "victim.example.com"))
		objs := append(decode(t, nsService("evil", "198.18.0.66")), attacker,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tlsSecret, Namespace: "evil"}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{"tls.crt": []byte(host), "tls.key": []byte(path)}})
		src, err := source.NewStatic("main", translate.EndpointsPod, append(victim, objs...))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		xds := xdsserver.New(ctx, log)
		gw := translateOnce(t, &tenancy.Policy{DeniedRanges: tenancy.AlwaysDenied}, src, xds, log)
		m := gw.Model()
		for _, h := range m.Hosts {
			for _, s := range h.Sources {
				if h.Name == "victim.example.com" && s.Namespace != "victim" {
					t.Fatalf("attacker %s routes the victim's host", s)
				}
				if s.Namespace == "victim" && h.Name != "victim.example.com" {
					t.Fatalf("victim's Ingress ended up on host %q", h.Name)
				}
			}
		}
		found := false
		for _, h := range m.Hosts {
			if h.Name == "victim.example.com" {
				found = len(h.Routes) == 1 && h.Routes[0].Cluster == "main/victim/web/80"
			}
		}
		if !found {
			t.Fatalf("victim's host is not served as before: %+v", m.Hosts)
		}
	})
}
