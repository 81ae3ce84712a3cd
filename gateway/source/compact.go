package source

import (
	"unique"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Ingresses, Services and EndpointSlices are cached in a compact form: the fields the pipeline
// reads and no more. Stripped but decoded, the large networkingv1/corev1/discoveryv1 structs (every
// field its own allocation) were the largest part of the daemon's heap. The cached objects of 100k
// routes (Ingress, Service, EndpointSlice each; BenchmarkPipelineHeap's objects-MiB,
// -pipeline-ingresses 100000) took 222 MiB stripped, 113 MiB with Services and EndpointSlices
// compact (~1.1 KB less per route) and 99 MiB with Ingresses compact too (~140 B less per
// Ingress: the unused metadata fields; the spec's contents are kept, shared, as decoded). The
// pipeline still reads networkingv1/corev1/discoveryv1 objects: ingress(), service() and slice()
// rebuild them on each read, which the pipeline does a few times per Ingress and once per Service
// port it (re-)translates.

// cachedMeta is what client-go's stores need of a compact object: namespace and name (the key;
// meta.Accessor accepts a metav1.ObjectMetaAccessor), the resourceVersion (an update whose version
// did not change is delivered as a resync, which this process does not ask for) and the UID
// (Events about an Ingress or a Service name it). The namespace is interned (a few hundred
// namespaces, one string each instead of one per object) and the UID kept as its 16 bytes, not
// as 36 characters of text: ObjectMeta strings in the daemon's heap at 100k routes went from 28 to
// 9 MB (pprof).
type cachedMeta struct {
	namespace, name, resourceVersion string
	uid                              uuid.UUID
	// otherUID holds a UID that is not a UUID (the apiserver always makes UUIDs; fakes may not).
	otherUID types.UID
}

func metaOf(m *metav1.ObjectMeta) cachedMeta {
	c := cachedMeta{namespace: unique.Make(m.Namespace).Value(), name: m.Name, resourceVersion: m.ResourceVersion}
	if u, err := uuid.Parse(string(m.UID)); err == nil && u.String() == string(m.UID) { // exactly as the apiserver writes it
		c.uid = u
	} else {
		c.otherUID = m.UID
	}
	return c
}

func (m *cachedMeta) objectUID() types.UID {
	if m.uid == (uuid.UUID{}) {
		return m.otherUID
	}
	return types.UID(m.uid.String())
}

// cachedMeta implements metav1.Object itself, so that client-go's key functions and this
// package's event handlers (meta.Accessor) read it without building an ObjectMeta: they do for
// every object of every list and watch event, ~1M ObjectMetas of garbage in a cold start at 100k
// routes. The fields a compact object does not keep read as empty, and setting them does nothing
// (nobody modifies cached objects; strip passes compact objects through).
var _ metav1.Object = (*cachedMeta)(nil)

func (m *cachedMeta) GetNamespace() string                          { return m.namespace }
func (m *cachedMeta) SetNamespace(string)                           {}
func (m *cachedMeta) GetName() string                               { return m.name }
func (m *cachedMeta) SetName(string)                                {}
func (m *cachedMeta) GetGenerateName() string                       { return "" }
func (m *cachedMeta) SetGenerateName(string)                        {}
func (m *cachedMeta) GetUID() types.UID                             { return m.objectUID() }
func (m *cachedMeta) SetUID(types.UID)                              {}
func (m *cachedMeta) GetResourceVersion() string                    { return m.resourceVersion }
func (m *cachedMeta) SetResourceVersion(string)                     {}
func (m *cachedMeta) GetGeneration() int64                          { return 0 }
func (m *cachedMeta) SetGeneration(int64)                           {}
func (m *cachedMeta) GetSelfLink() string                           { return "" }
func (m *cachedMeta) SetSelfLink(string)                            {}
func (m *cachedMeta) GetCreationTimestamp() metav1.Time             { return metav1.Time{} }
func (m *cachedMeta) SetCreationTimestamp(metav1.Time)              {}
func (m *cachedMeta) GetDeletionTimestamp() *metav1.Time            { return nil }
func (m *cachedMeta) SetDeletionTimestamp(*metav1.Time)             {}
func (m *cachedMeta) GetDeletionGracePeriodSeconds() *int64         { return nil }
func (m *cachedMeta) SetDeletionGracePeriodSeconds(*int64)          {}
func (m *cachedMeta) GetLabels() map[string]string                  { return nil }
func (m *cachedMeta) SetLabels(map[string]string)                   {}
func (m *cachedMeta) GetAnnotations() map[string]string             { return nil }
func (m *cachedMeta) SetAnnotations(map[string]string)              {}
func (m *cachedMeta) GetFinalizers() []string                       { return nil }
func (m *cachedMeta) SetFinalizers([]string)                        {}
func (m *cachedMeta) GetOwnerReferences() []metav1.OwnerReference   { return nil }
func (m *cachedMeta) SetOwnerReferences([]metav1.OwnerReference)    {}
func (m *cachedMeta) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (m *cachedMeta) SetManagedFields([]metav1.ManagedFieldsEntry)  {}

func (m *cachedMeta) objectMeta() metav1.ObjectMeta { // a value: the rebuilt object holds it, no second allocation
	return metav1.ObjectMeta{Namespace: m.namespace, Name: m.name, ResourceVersion: m.resourceVersion, UID: m.objectUID()}
}

// cachedIngress: the spec; the kept annotations (keepAnnotations: the class, the ingress-nginx
// ones, snippets to refuse); creationTimestamp (the oldest claim to a host wins); generation and
// deletionTimestamp (statusOnly compares them); and status.loadBalancer.ingress (the status writer
// compares it with what it would write). Labels, the rest of the metadata and of the status are
// never read.
type cachedIngress struct {
	cachedMeta
	created     metav1.Time
	generation  int64
	deleted     *metav1.Time
	annotations map[string]string
	spec        networkingv1.IngressSpec
	lb          []networkingv1.IngressLoadBalancerIngress
}

// compactIngress keeps i's annotations as they are: strip filters them first.
func compactIngress(i *networkingv1.Ingress) *cachedIngress {
	return &cachedIngress{cachedMeta: metaOf(&i.ObjectMeta), created: i.CreationTimestamp, generation: i.Generation,
		deleted: i.DeletionTimestamp, annotations: i.Annotations, spec: i.Spec, lb: i.Status.LoadBalancer.Ingress}
}

// The metadata a cachedIngress keeps beyond cachedMeta's reads as it is.
func (c *cachedIngress) GetGeneration() int64               { return c.generation }
func (c *cachedIngress) GetCreationTimestamp() metav1.Time  { return c.created }
func (c *cachedIngress) GetDeletionTimestamp() *metav1.Time { return c.deleted }
func (c *cachedIngress) GetAnnotations() map[string]string  { return c.annotations }

// ingress rebuilds the Ingress the pipeline reads; it shares the annotations, spec and status,
// which nobody modifies.
func (c *cachedIngress) ingress() *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: c.objectMeta(), Spec: c.spec,
		Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: c.lb}}}
	ing.CreationTimestamp, ing.Generation, ing.DeletionTimestamp, ing.Annotations = c.created, c.generation, c.deleted, c.annotations
	return ing
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
	return &corev1.Service{ObjectMeta: c.objectMeta(), Spec: corev1.ServiceSpec{Type: c.svcType, ExternalName: c.externalName, Ports: c.ports}}
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
	s := &discoveryv1.EndpointSlice{ObjectMeta: c.objectMeta(), AddressType: c.addressType, Ports: c.ports,
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
