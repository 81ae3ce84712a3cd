package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/edgegate/edgegate/test/harness"
)

func netipPort(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, harness.DefaultBackendPort) }

func splitHostPort(s string) (string, string, error) { return net.SplitHostPort(s) }

// apply creates the demo's objects in order.
func apply(ctx context.Context, c kubernetes.Interface, objs ...runtime.Object) error {
	for _, o := range objs {
		var err error
		opts := metav1.CreateOptions{}
		switch v := o.(type) {
		case *corev1.Namespace:
			_, err = c.CoreV1().Namespaces().Create(ctx, v, opts)
		case *corev1.Service:
			_, err = c.CoreV1().Services(v.Namespace).Create(ctx, v, opts)
		case *corev1.Secret:
			_, err = c.CoreV1().Secrets(v.Namespace).Create(ctx, v, opts)
		case *discoveryv1.EndpointSlice:
			_, err = c.DiscoveryV1().EndpointSlices(v.Namespace).Create(ctx, v, opts)
		case *networkingv1.IngressClass:
			_, err = c.NetworkingV1().IngressClasses().Create(ctx, v, opts)
		case *networkingv1.Ingress:
			_, err = c.NetworkingV1().Ingresses(v.Namespace).Create(ctx, v, opts)
		default:
			err = fmt.Errorf("unsupported %T", o)
		}
		if err != nil {
			return fmt.Errorf("create %T: %w", o, err)
		}
	}
	return nil
}
