package source

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Services and EndpointSlices are cached in a compact form: the fields translation reads and no
// more. Stripped but decoded, the large corev1/discoveryv1 structs (every field its own allocation)
// were the largest part of the daemon's heap; compact, the cached objects of 100k routes (Ingress,
// Service, EndpointSlice each) take 113 MiB instead of 222 MiB (BenchmarkPipelineHeap's
// objects-MiB, -pipeline-ingresses 100000), ~1.1 KB less per route. The pipeline still reads
// corev1/discoveryv1 objects: service() and slice() rebuild them on each read, which translation
// does once per Service port it (re-)translates.

// cachedMeta is what client-go's stores need of a compact object: namespace and name (the key;
// meta.Accessor accepts a metav1.ObjectMetaAccessor), the resourceVersion (an update whose version
// did not change is delivered as a resync, which this process does not ask for) and the UID
// (Events about a Service name it).
type cachedMeta struct {
	namespace, name, resourceVersion string
	uid                              types.UID
}

func metaOf(m *metav1.ObjectMeta) cachedMeta {
	return cachedMeta{namespace: m.Namespace, name: m.Name, resourceVersion: m.ResourceVersion, uid: m.UID}
}

// GetObjectMeta implements metav1.ObjectMetaAccessor.
func (m *cachedMeta) GetObjectMeta() metav1.Object { return m.objectMeta() }

func (m *cachedMeta) objectMeta() *metav1.ObjectMeta {
	return &metav1.ObjectMeta{Namespace: m.namespace, Name: m.name, ResourceVersion: m.resourceVersion, UID: m.uid}
}

// cachedService: type, externalName and ports.
type cachedService struct {
	cachedMeta
	svcType      corev1.ServiceType
	externalName string
	ports        []corev1.ServicePort
}

func compactService(s *corev1.Service) *cachedService {
	return &cachedService{cachedMeta: metaOf(&s.ObjectMeta), svcType: s.Spec.Type, externalName: s.Spec.ExternalName, ports: s.Spec.Ports}
}

// service rebuilds the Service translation reads; it shares the ports, which nobody modifies.
func (c *cachedService) service() *corev1.Service {
	return &corev1.Service{ObjectMeta: *c.objectMeta(), Spec: corev1.ServiceSpec{Type: c.svcType, ExternalName: c.externalName, Ports: c.ports}}
}

// cachedEndpoint is an endpoint's first address (the one consumers use) and whether it is
// explicitly not ready (an unset condition means ready).
type cachedEndpoint struct {
	address  string
	notReady bool
}

// cachedSlice: the Service it belongs to, the address type, ports and endpoints.
type cachedSlice struct {
	cachedMeta
	service     string
	addressType discoveryv1.AddressType
	ports       []discoveryv1.EndpointPort
	endpoints   []cachedEndpoint
}

func compactSlice(s *discoveryv1.EndpointSlice) *cachedSlice {
	c := &cachedSlice{cachedMeta: metaOf(&s.ObjectMeta), service: s.Labels[discoveryv1.LabelServiceName],
		addressType: s.AddressType, ports: s.Ports, endpoints: make([]cachedEndpoint, 0, len(s.Endpoints))}
	for _, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			continue
		}
		c.endpoints = append(c.endpoints, cachedEndpoint{address: e.Addresses[0], notReady: e.Conditions.Ready != nil && !*e.Conditions.Ready})
	}
	return c
}

// slice rebuilds the EndpointSlice translation reads.
func (c *cachedSlice) slice() *discoveryv1.EndpointSlice {
	notReady := false
	s := &discoveryv1.EndpointSlice{ObjectMeta: *c.objectMeta(), AddressType: c.addressType, Ports: c.ports,
		Endpoints: make([]discoveryv1.Endpoint, len(c.endpoints))}
	s.Labels = map[string]string{discoveryv1.LabelServiceName: c.service}
	for i, e := range c.endpoints {
		s.Endpoints[i].Addresses = []string{e.address}
		if e.notReady {
			s.Endpoints[i].Conditions.Ready = &notReady
		}
	}
	return s
}
