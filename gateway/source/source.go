// Package source watches one remote Kubernetes cluster with client-go informers and hands the gateway
// pipeline two things: change notifications (Event) and read access to the cached objects
// (translate.Objects).
//
// Only what translation needs is cached: Ingress, IngressClass, Service, EndpointSlice, Node (in
// nodePort mode) and Secrets of type kubernetes.io/tls (field-selected on the server, so no other
// Secret ever reaches this process). A transform strips managedFields and the last-applied
// annotation from every object, and everything but tls.crt/tls.key from Secrets, before it is
// cached. When the apiserver is unreachable the informers keep their caches (so the last
// configuration keeps serving) and client-go retries with backoff; the last error is kept for
// status.
package source

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	networkinginformers "k8s.io/client-go/informers/networking/v1"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	listersnetworkingv1 "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/edgegate/edgegate/gateway/translate"
)

// Kind names the type of object an Event is about.
type Kind string

const (
	KindIngress       Kind = "Ingress"
	KindIngressClass  Kind = "IngressClass"
	KindService       Kind = "Service"
	KindEndpointSlice Kind = "EndpointSlice"
	KindSecret        Kind = "Secret"
	KindNode          Kind = "Node"
	KindNamespace     Kind = "Namespace"
	// KindNodeAddresses says this edge node's own addresses changed (no object; Cluster is empty):
	// every endpoint must be checked against them again.
	KindNodeAddresses Kind = "NodeAddresses"
)

// Event says that an object was added, changed or deleted. Namespace/Name identify it; for an
// EndpointSlice, Name is the Service it belongs to.
type Event struct {
	Cluster   string
	Kind      Kind
	Namespace string
	Name      string
	// Initial marks an object of the informer's first list. Once the cluster has synced, the
	// cache holds every such object, so a pass over the whole cache already covers them: the
	// gateway drops these notifications (at 200k routes, 600k of them still arrive after the
	// sync and would trigger a second pass over everything).
	Initial bool
}

// resyncPeriod 0: no periodic resync. Informers re-list on watch failures on their own, and the
// gateway runs its own periodic consistency pass.
const resyncPeriod = 0

// Cluster is the informer set of one remote cluster. Construct with New, then Run.
// Its read methods (translate.Objects, Ingress, IngressClasses) are safe for concurrent use.
type Cluster struct {
	name string
	mode translate.EndpointMode

	log       *slog.Logger
	client    kubernetes.Interface
	factory   informers.SharedInformerFactory
	secrets   informers.SharedInformerFactory
	informers []cache.SharedIndexInformer
	// slicesSynced: the EndpointSlice handler has the whole first list (it fills sliceIndex); the
	// cluster counts as synced only then.
	slicesSynced cache.InformerSynced

	ingresses cache.Indexer // *cachedIngress
	classes   listersnetworkingv1.IngressClassLister
	services  cache.Indexer // *cachedService
	slices    cache.Indexer // *cachedSlice
	byService *sliceIndex
	tls       listerscorev1.SecretLister
	nodes     listerscorev1.NodeLister
	ns        listerscorev1.NamespaceLister

	mu        sync.Mutex
	lastError string
	errorAt   time.Time
	synced    bool
	reachable bool
}

// probeInterval: how often the apiserver is probed for the health shown in /status. Informers
// alone do not tell: a reflector whose watch is refused retries quietly without reporting.
const probeInterval = 5 * time.Second

// New builds the informers of a remote cluster; events are sent to out (the send blocks while the
// pipeline is busy, which is the backpressure we want). Namespaces are watched only when tenants
// are grouped by a namespace label (tenantLabel). It starts nothing.
func New(name string, mode translate.EndpointMode, tenantLabel bool, client kubernetes.Interface, log *slog.Logger, out chan<- Event) (*Cluster, error) {
	c := &Cluster{name: name, mode: mode, log: log, client: client, byService: newSliceIndex()}
	c.factory = informers.NewSharedInformerFactoryWithOptions(client, resyncPeriod, informers.WithTransform(strip))
	c.secrets = informers.NewSharedInformerFactoryWithOptions(client, resyncPeriod, informers.WithTransform(strip),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "type=" + string(corev1.SecretTypeTLS) }))

	// The three kinds there is one of per route get no namespace index (the factory's default):
	// every read is by key, and at 100k routes the index held 34 MB of key sets.
	ing := c.factory.InformerFor(&networkingv1.Ingress{}, func(cl kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return networkinginformers.NewIngressInformer(cl, metav1.NamespaceAll, resync, cache.Indexers{})
	})
	svc := c.factory.InformerFor(&corev1.Service{}, func(cl kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewServiceInformer(cl, metav1.NamespaceAll, resync, cache.Indexers{})
	})
	eps := c.factory.InformerFor(&discoveryv1.EndpointSlice{}, func(cl kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return discoveryinformers.NewEndpointSliceInformer(cl, metav1.NamespaceAll, resync, cache.Indexers{}) // see sliceIndex
	})
	cls := c.factory.Networking().V1().IngressClasses()
	sec := c.secrets.Core().V1().Secrets()
	c.ingresses, c.classes, c.services, c.slices, c.tls = ing.GetIndexer(), cls.Lister(), svc.GetIndexer(), eps.GetIndexer(), sec.Lister()

	type watched struct {
		kind Kind
		inf  cache.SharedIndexInformer
	}
	list := []watched{{KindIngress, ing}, {KindIngressClass, cls.Informer()}, {KindService, svc},
		{KindEndpointSlice, eps}, {KindSecret, sec.Informer()}}
	if tenantLabel {
		nsInf := c.factory.Core().V1().Namespaces()
		c.ns = nsInf.Lister()
		list = append(list, watched{KindNamespace, nsInf.Informer()})
	}
	if mode == translate.EndpointsNodePort {
		nodes := c.factory.Core().V1().Nodes()
		c.nodes = nodes.Lister()
		list = append(list, watched{KindNode, nodes.Informer()})
	}
	for _, w := range list {
		kind := w.kind
		notify := func(obj any, initial bool) {
			if ev, ok := c.event(kind, obj); ok {
				ev.Initial = initial
				out <- ev
			}
		}
		// EndpointSlices update sliceIndex first, then notify (see sliceIndex).
		track := func(old, obj any, deleted bool) {}
		if kind == KindEndpointSlice {
			track = c.byService.track
		}
		reg, err := w.inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
			AddFunc: func(obj any, initial bool) {
				track(nil, obj, false)
				notify(obj, initial)
			},
			UpdateFunc: func(old, obj any) {
				track(old, obj, false)
				if !statusOnly(old, obj) {
					notify(obj, false)
				}
			},
			DeleteFunc: func(obj any) {
				track(nil, obj, true)
				notify(obj, false)
			},
		})
		if err != nil {
			return nil, fmt.Errorf("%s handler: %w", kind, err)
		}
		if kind == KindEndpointSlice {
			c.slicesSynced = reg.HasSynced // the index is complete once the handler has the first list
		}
		if err := w.inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			c.mu.Lock()
			c.lastError, c.errorAt = err.Error(), time.Now()
			c.mu.Unlock()
			c.log.Warn("watch failed; serving the last known state and retrying", "cluster", name, "kind", kind, "error", err)
		}); err != nil {
			return nil, fmt.Errorf("%s error handler: %w", kind, err)
		}
		c.informers = append(c.informers, w.inf)
	}
	return c, nil
}

func (c *Cluster) event(kind Kind, obj any) (Event, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return Event{}, false
	}
	ev := Event{Cluster: c.name, Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()}
	if kind == KindEndpointSlice {
		s, ok := obj.(*cachedSlice)
		if !ok || s.service == "" {
			return Event{}, false
		}
		ev.Name = s.service
	}
	return ev, true
}

// Run starts the informers and blocks until ctx is done. Synced reports when the first list of
// every informer has arrived.
func (c *Cluster) Run(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	c.secrets.Start(ctx.Done())
	syncs := []cache.InformerSynced{c.slicesSynced}
	for _, inf := range c.informers {
		syncs = append(syncs, inf.HasSynced)
	}
	go c.probe(ctx)
	if cache.WaitForCacheSync(ctx.Done(), syncs...) {
		c.mu.Lock()
		c.synced = true
		c.mu.Unlock()
		c.log.Info("cluster synced", "cluster", c.name)
	}
	<-ctx.Done()
	// Shutdown waits for every informer goroutine; a reflector sleeping in client-go's watch-list
	// backoff (up to 30 s against an unreachable cluster) does not heed the stop channel, so the
	// wait is bounded: the process is stopping, and nothing informers do after this matters.
	done := make(chan struct{})
	go func() {
		c.factory.Shutdown()
		c.secrets.Shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(shutdownWait):
		c.log.Debug("informers still stopping; not waiting for them", "cluster", c.name)
	}
	return nil
}

// shutdownWait bounds how long Run waits for the informers to stop.
const shutdownWait = time.Second

// probe lists one Ingress every probeInterval, with the same credentials the informers use, so an
// unreachable or unauthorised cluster shows in /status. No resourceVersion: with "0" the apiserver
// serves the list from its watch cache and ignores the limit, so each probe fetched (and this
// process decoded) every Ingress — 31 MB every 5 s at 100k.
func (c *Cluster) probe(ctx context.Context) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, probeInterval)
		_, err := c.client.NetworkingV1().Ingresses("").List(pctx, metav1.ListOptions{Limit: 1})
		cancel()
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		was := c.reachable
		c.reachable = err == nil
		if err != nil {
			c.lastError, c.errorAt = err.Error(), time.Now()
		} else {
			c.lastError = ""
		}
		c.mu.Unlock()
		if was != (err == nil) {
			if err != nil {
				c.log.Warn("apiserver unreachable; serving the last known state", "cluster", c.name, "error", err)
			} else {
				c.log.Info("apiserver reachable", "cluster", c.name)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Health is the state of a cluster for status and readiness.
type Health struct {
	// Synced: the first full list of every informer arrived (the configuration covers this cluster).
	Synced bool `json:"synced"`
	// Reachable: the last probe of the apiserver succeeded.
	Reachable bool      `json:"reachable"`
	LastError string    `json:"lastError,omitempty"`
	ErrorAt   time.Time `json:"errorAt,omitzero"`
}

// Health returns the sync state and the last probe or watch error.
func (c *Cluster) Health() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Health{Synced: c.synced, Reachable: c.reachable, LastError: c.lastError, ErrorAt: c.errorAt}
}

// Name is the remote cluster's configured name.
func (c *Cluster) Name() string { return c.name }

// Mode is how the cluster's Services are reached.
func (c *Cluster) Mode() translate.EndpointMode { return c.mode }

// Client is the cluster's clientset (for status writes).
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// Ingress returns the cached Ingress, or nil.
func (c *Cluster) Ingress(namespace, name string) *networkingv1.Ingress {
	o, ok, _ := c.ingresses.GetByKey(namespace + "/" + name)
	if i, isIng := o.(*cachedIngress); ok && isIng {
		return i.ingress()
	}
	return nil
}

// IngressNames returns the namespace and name of every cached Ingress (from the cache's keys:
// listing the Ingresses themselves would rebuild each from its compact form).
func (c *Cluster) IngressNames() []types.NamespacedName {
	keys := c.ingresses.ListKeys()
	out := make([]types.NamespacedName, 0, len(keys))
	for _, k := range keys {
		if ns, name, err := cache.SplitMetaNamespaceKey(k); err == nil {
			out = append(out, types.NamespacedName{Namespace: ns, Name: name})
		}
	}
	return out
}

// IngressClasses returns every cached IngressClass.
func (c *Cluster) IngressClasses() []*networkingv1.IngressClass {
	out, _ := c.classes.List(labels.Everything())
	return out
}

// Service implements translate.Objects.
func (c *Cluster) Service(namespace, name string) *corev1.Service {
	o, ok, _ := c.services.GetByKey(namespace + "/" + name)
	if s, isSvc := o.(*cachedService); ok && isSvc {
		return s.service()
	}
	return nil
}

// EndpointSlices implements translate.Objects.
func (c *Cluster) EndpointSlices(namespace, service string) []*discoveryv1.EndpointSlice {
	names := c.byService.get(namespace, service)
	out := make([]*discoveryv1.EndpointSlice, 0, len(names))
	for _, name := range names {
		o, ok, _ := c.slices.GetByKey(namespace + "/" + name)
		if s, isSlice := o.(*cachedSlice); ok && isSlice && s.service == service {
			out = append(out, s.slice())
		}
	}
	return out
}

// TLSSecret implements translate.Objects.
func (c *Cluster) TLSSecret(namespace, name string) *corev1.Secret {
	s, err := c.tls.Secrets(namespace).Get(name)
	if err != nil {
		return nil
	}
	return s
}

// NamespaceLabels returns a namespace's labels (nil when namespaces are not watched or unknown).
func (c *Cluster) NamespaceLabels(name string) map[string]string {
	if c.ns == nil {
		return nil
	}
	n, err := c.ns.Get(name)
	if err != nil {
		return nil
	}
	return n.Labels
}

// ReadyNodeAddresses implements translate.Objects.
func (c *Cluster) ReadyNodeAddresses() []string {
	if c.nodes == nil {
		return nil
	}
	nodes, _ := c.nodes.List(labels.Everything())
	var out []string
	for _, n := range nodes {
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				out = append(out, a.Address)
				break
			}
		}
	}
	return out
}

// statusOnly reports an Ingress update that changed nothing translation reads: the same spec
// (generation) and kept annotations, only its status — what edgegate's own status writes cause,
// 100k of them after a first start at 100k Ingresses. The status writer reads the cache itself.
func statusOnly(old, obj any) bool {
	a, ok1 := old.(*cachedIngress)
	b, ok2 := obj.(*cachedIngress)
	return ok1 && ok2 && a.generation != 0 && a.generation == b.generation &&
		a.deleted.Equal(b.deleted) && maps.Equal(a.annotations, b.annotations)
}

// strip drops what translation never reads before the object is cached, so 200k Ingresses with
// their Services and EndpointSlices fit in a bounded heap: managedFields, owner references,
// finalizers and the last-applied annotation everywhere; per kind, every field the pipeline does
// not use (see each case). It modifies the freshly decoded object in place, which is what
// client-go transforms are for, except Ingresses, Services and EndpointSlices: those are replaced
// by their compact forms (compact.go). Already compact objects pass through unchanged.
func strip(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		m.SetOwnerReferences(nil)
		m.SetFinalizers(nil)
		m.SetGenerateName("")
	}
	switch o := obj.(type) {
	case *networkingv1.Ingress:
		// Of the annotations, only the legacy class annotation, the ingress-nginx ones (parsed and
		// validated by the annotation layer) and anything looking like a snippet (so it can be
		// refused) are kept.
		o.Annotations = keepAnnotations(o.Annotations)
		return compactIngress(o), nil
	case *corev1.Service:
		return compactService(o), nil
	case *discoveryv1.EndpointSlice:
		return compactSlice(o), nil
	case *corev1.Secret:
		o.Labels, o.Annotations = nil, nil
		data := map[string][]byte{}
		for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
			if v, has := o.Data[k]; has {
				data[k] = v
			}
		}
		o.Data, o.StringData = data, nil
	case *corev1.Node:
		o.Labels, o.Annotations = nil, nil
		o.Spec = corev1.NodeSpec{}
		o.Status = corev1.NodeStatus{Addresses: o.Status.Addresses, Conditions: readyOnly(o.Status.Conditions)}
	case *corev1.Namespace:
		o.Annotations = nil
	}
	return obj, nil
}

func keepAnnotations(a map[string]string) map[string]string {
	var out map[string]string
	for k, v := range a {
		lk := strings.ToLower(k)
		if k == "kubernetes.io/ingress.class" || strings.HasPrefix(k, "nginx.ingress.kubernetes.io/") || strings.Contains(lk, "snippet") {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

func readyOnly(conds []corev1.NodeCondition) []corev1.NodeCondition {
	for _, c := range conds {
		if c.Type == corev1.NodeReady {
			return []corev1.NodeCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return nil
}
