package source

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/edgegate/edgegate/gateway/translate"
)

// Static is a remote cluster frozen as a list of objects: `edgegate translate` runs the daemon's
// pipeline over it. It is read-only after NewStatic and safe for concurrent reads.
type Static struct {
	name string
	mode translate.EndpointMode
	// Ingresses, Services and EndpointSlices are cached as the informers cache them (compact.go).
	ingresses map[string]*cachedIngress
	classes   []*networkingv1.IngressClass
	services  map[string]*cachedService
	slices    map[string][]*cachedSlice
	secrets   map[string]*corev1.Secret
	nodes     []*corev1.Node
	ns        map[string]map[string]string
}

// NewStatic indexes objects (Ingress, IngressClass, Service, EndpointSlice, Secret, Node); any other
// kind is an error. Secrets that are not kubernetes.io/tls are dropped, as the daemon never sees them.
func NewStatic(name string, mode translate.EndpointMode, objs []runtime.Object) (*Static, error) {
	s := &Static{name: name, mode: mode, ingresses: map[string]*cachedIngress{}, services: map[string]*cachedService{},
		slices: map[string][]*cachedSlice{}, secrets: map[string]*corev1.Secret{}, ns: map[string]map[string]string{}}
	for _, o := range objs {
		c, err := strip(o)
		if err != nil {
			return nil, err
		}
		switch v := c.(type) {
		case *cachedIngress:
			s.ingresses[v.namespace+"/"+v.name] = v
		case *networkingv1.IngressClass:
			s.classes = append(s.classes, v)
		case *cachedService:
			s.services[v.namespace+"/"+v.name] = v
		case *cachedSlice:
			if v.service != "" {
				s.slices[v.namespace+"/"+v.service] = append(s.slices[v.namespace+"/"+v.service], v)
			}
		case *corev1.Secret:
			if v.Type == corev1.SecretTypeTLS {
				s.secrets[v.Namespace+"/"+v.Name] = v
			}
		case *corev1.Node:
			s.nodes = append(s.nodes, v)
		case *corev1.Namespace:
			s.ns[v.Name] = v.Labels
		default:
			return nil, fmt.Errorf("unsupported object %T", o)
		}
	}
	return s, nil
}

func (s *Static) Name() string                 { return s.name }
func (s *Static) Mode() translate.EndpointMode { return s.mode }
func (s *Static) Health() Health               { return Health{Synced: true, Reachable: true} }

func (s *Static) Ingress(namespace, name string) *networkingv1.Ingress {
	if c := s.ingresses[namespace+"/"+name]; c != nil {
		return c.ingress()
	}
	return nil
}

func (s *Static) IngressNames() []types.NamespacedName {
	out := make([]types.NamespacedName, 0, len(s.ingresses))
	for _, c := range s.ingresses {
		out = append(out, types.NamespacedName{Namespace: c.namespace, Name: c.name})
	}
	return out
}

func (s *Static) IngressClasses() []*networkingv1.IngressClass { return s.classes }

func (s *Static) Service(namespace, name string) *corev1.Service {
	if c := s.services[namespace+"/"+name]; c != nil {
		return c.service()
	}
	return nil
}

func (s *Static) EndpointSlices(namespace, service string) []*discoveryv1.EndpointSlice {
	cached := s.slices[namespace+"/"+service]
	out := make([]*discoveryv1.EndpointSlice, len(cached))
	for i, c := range cached {
		out[i] = c.slice()
	}
	return out
}

func (s *Static) TLSSecret(namespace, name string) *corev1.Secret {
	return s.secrets[namespace+"/"+name]
}

func (s *Static) NamespaceLabels(name string) map[string]string { return s.ns[name] }

func (s *Static) ReadyNodeAddresses() []string {
	var out []string
	for _, n := range s.nodes {
		for _, c := range n.Status.Conditions {
			if c.Type != corev1.NodeReady || c.Status != corev1.ConditionTrue {
				continue
			}
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					out = append(out, a.Address)
					break
				}
			}
		}
	}
	return out
}
