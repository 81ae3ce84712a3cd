package gateway

import (
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/status"
)

func referencedServices(k objKey, ing *networkingv1.Ingress) []objKey {
	set := map[objKey]bool{}
	add := func(b *networkingv1.IngressBackend) {
		if b != nil && b.Service != nil {
			set[objKey{k.cluster, k.namespace, b.Service.Name}] = true
		}
	}
	add(ing.Spec.DefaultBackend)
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for i := range r.HTTP.Paths {
			add(&r.HTTP.Paths[i].Backend)
		}
	}
	return sortedSet(set, objKey.less)
}

func referencedSecrets(k objKey, ing *networkingv1.Ingress) []objKey {
	set := map[objKey]bool{}
	for _, t := range ing.Spec.TLS {
		if t.SecretName != "" {
			set[objKey{k.cluster, k.namespace, t.SecretName}] = true
		}
	}
	return sortedSet(set, objKey.less)
}

func statusKey(k objKey) status.Key {
	return status.Key{Cluster: k.cluster, Namespace: k.namespace, Name: k.name}
}

func statusDesired(rej *model.Rejection, addresses []string) status.Desired {
	return status.Desired{Accepted: rej == nil, Addresses: addresses, Rejection: rej}
}

func deniedMessage(addrs []string) string {
	return "endpoint addresses refused (loopback, link-local, this node or a denied range): " + joinMax(addrs, 5)
}

// joinMax joins at most n items, noting how many were left out.
func joinMax(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + ", ..."
}
