package gateway

import (
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/status"
	"github.com/edgegate/edgegate/gateway/translate"
	"github.com/edgegate/edgegate/gateway/xdsbuild"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

// objKey names a namespaced object in a remote cluster.
type objKey struct{ cluster, namespace, name string }

func (k objKey) less(o objKey) bool {
	if k.cluster != o.cluster {
		return k.cluster < o.cluster
	}
	if k.namespace != o.namespace {
		return k.namespace < o.namespace
	}
	return k.name < o.name
}

// ingState is what the pipeline remembers of one Ingress of ours.
type ingState struct {
	parsed    *translate.Ingress // nil when rejected
	rejection *model.Rejection
	services  []objKey // Services the spec names, accepted or not: their arrival re-translates it
	secrets   []objKey
}

// state is the pipeline's index, owned by the Run goroutine. Everything here is derived from the
// remote objects, so a restart rebuilds the same state.
type state struct {
	ings     map[objKey]*ingState
	byHost   map[string]map[objKey]bool // accepted Ingresses routing each host
	bySvc    map[objKey]map[objKey]bool // Ingresses naming each Service
	bySecret map[objKey]map[objKey]bool // Ingresses naming each Secret

	clusterUsers  map[string]int // model cluster name → accepted Ingresses using it
	clusterRefs   map[string]translate.ClusterRef
	clustersBySvc map[objKey]map[string]bool

	hosts       map[string]model.VirtualHost // served virtual hosts
	secretHosts map[string]map[string]bool   // served secret name → hosts using it
	secrets     map[string]model.Secret      // served secrets

	rejected map[objKey]bool // Ingresses of ours that are rejected

	dirtyIngs     map[objKey]bool
	dirtyClusters map[string]bool
	listenersOK   bool // false until listeners are built once
}

func newState() state {
	return state{
		ings: map[objKey]*ingState{}, byHost: map[string]map[objKey]bool{},
		bySvc: map[objKey]map[objKey]bool{}, bySecret: map[objKey]map[objKey]bool{},
		clusterUsers: map[string]int{}, clusterRefs: map[string]translate.ClusterRef{}, clustersBySvc: map[objKey]map[string]bool{},
		hosts: map[string]model.VirtualHost{}, secretHosts: map[string]map[string]bool{}, secrets: map[string]model.Secret{},
		rejected: map[objKey]bool{}, dirtyIngs: map[objKey]bool{}, dirtyClusters: map[string]bool{},
	}
}

func addTo[K comparable, V comparable](m map[K]map[V]bool, k K, v V) {
	if m[k] == nil {
		m[k] = map[V]bool{}
	}
	m[k][v] = true
}

func removeFrom[K comparable, V comparable](m map[K]map[V]bool, k K, v V) {
	delete(m[k], v)
	if len(m[k]) == 0 {
		delete(m, k)
	}
}

// mark records what an event makes dirty. It is cheap: all work happens in flush.
func (g *Gateway) mark(ev source.Event) {
	s := &g.st
	k := objKey{ev.Cluster, ev.Namespace, ev.Name}
	switch ev.Kind {
	case source.KindIngress:
		s.dirtyIngs[k] = true
	case source.KindService:
		for ing := range s.bySvc[k] {
			s.dirtyIngs[ing] = true
		}
		for c := range s.clustersBySvc[k] {
			s.dirtyClusters[c] = true
		}
	case source.KindEndpointSlice:
		for c := range s.clustersBySvc[k] {
			s.dirtyClusters[c] = true
		}
	case source.KindSecret:
		for ing := range s.bySecret[k] {
			s.dirtyIngs[ing] = true
		}
	case source.KindIngressClass:
		g.markCluster(ev.Cluster)
	case source.KindNode:
		for name, ref := range s.clusterRefs {
			if ref.Cluster == ev.Cluster {
				s.dirtyClusters[name] = true
			}
		}
	}
}

// markCluster marks every Ingress of a remote cluster, cached or remembered, dirty.
func (g *Gateway) markCluster(cluster string) {
	c := g.clusters[cluster]
	if c == nil {
		return
	}
	for _, ing := range c.Ingresses() {
		g.st.dirtyIngs[objKey{cluster, ing.Namespace, ing.Name}] = true
	}
	for k := range g.st.ings {
		if k.cluster == cluster {
			g.st.dirtyIngs[k] = true
		}
	}
}

// markAll marks everything dirty: used for the first publication and the consistency pass.
func (g *Gateway) markAll() {
	for name := range g.clusters {
		g.markCluster(name)
	}
	for name := range g.st.clusterRefs {
		g.st.dirtyClusters[name] = true
	}
	g.st.listenersOK = false
}

// flush re-translates what is dirty and applies the changed resources to the xDS server.
func (g *Gateway) flush() {
	began := time.Now()
	s := &g.st
	var upd xdsserver.Update
	dirtyHosts := map[string]bool{}

	for _, k := range sortedSet(s.dirtyIngs, objKey.less) {
		g.retranslateIngress(k, dirtyHosts)
	}
	s.dirtyIngs = map[objKey]bool{}

	for name := range s.dirtyClusters {
		ref, used := s.clusterRefs[name]
		if !used {
			upd.Remove(resource.ClusterType, name)
			upd.Remove(resource.EndpointType, name)
			continue
		}
		c := translate.Cluster(ref, g.clusters[ref.Cluster].Mode(), g.clusters[ref.Cluster])
		upd.Put(resource.ClusterType, name, xdsbuild.Cluster(c))
		upd.Put(resource.EndpointType, name, xdsbuild.Endpoints(c))
	}
	s.dirtyClusters = map[string]bool{}

	listenersDirty := !s.listenersOK
	for host := range dirtyHosts {
		if g.retranslateHost(host, &upd) {
			listenersDirty = true
		}
	}
	if listenersDirty {
		secrets := make([]model.Secret, 0, len(s.secrets))
		for _, name := range sortedSet(s.secretHosts, func(a, b string) bool { return a < b }) {
			sec := s.secrets[name]
			sec.Hosts = sortedSet(s.secretHosts[name], func(a, b string) bool { return a < b })
			secrets = append(secrets, sec)
		}
		ls, err := xdsbuild.Listeners(g.cfg.Listeners, secrets)
		if err != nil {
			g.log.Error("build listeners; keeping the served ones", "error", err)
		} else {
			served := map[string]bool{}
			for _, l := range ls {
				served[l.Name] = true
				upd.Put(resource.ListenerType, l.Name, l)
			}
			for _, l := range g.cfg.Listeners {
				if !served[l.Name] {
					upd.Remove(resource.ListenerType, l.Name)
				}
			}
			s.listenersOK = true
		}
	}

	changed, err := g.xds.Apply(upd)
	if err != nil {
		g.log.Error("apply xds update", "error", err)
	}
	took := time.Since(began)
	if changed > 0 {
		g.log.Debug("configuration updated", "resources", changed, "hosts", len(dirtyHosts), "took", took)
	}
	g.publishSnapshot(began, took)
}

// retranslateIngress re-reads one Ingress, re-parses it and updates the indexes; the hosts whose
// routes may change are added to dirtyHosts.
func (g *Gateway) retranslateIngress(k objKey, dirtyHosts map[string]bool) {
	s := &g.st
	if old := s.ings[k]; old != nil {
		if old.parsed != nil {
			for _, h := range old.parsed.Hosts() {
				removeFrom(s.byHost, h, k)
				dirtyHosts[h] = true
			}
			for _, c := range old.parsed.Clusters {
				g.releaseCluster(c)
			}
		}
		for _, svc := range old.services {
			removeFrom(s.bySvc, svc, k)
		}
		for _, sec := range old.secrets {
			removeFrom(s.bySecret, sec, k)
		}
		delete(s.ings, k)
		delete(s.rejected, k)
	}
	skey := status.Key{Cluster: k.cluster, Namespace: k.namespace, Name: k.name}
	c := g.clusters[k.cluster]
	var ing *networkingv1.Ingress
	if c != nil {
		ing = c.Ingress(k.namespace, k.name)
	}
	if ing == nil || !g.ours(c, ing) {
		if g.status != nil {
			g.status.Forget(skey)
		}
		return
	}
	st := &ingState{services: referencedServices(k, ing), secrets: referencedSecrets(k, ing)}
	for _, svc := range st.services {
		addTo(s.bySvc, svc, k)
	}
	for _, sec := range st.secrets {
		addTo(s.bySecret, sec, k)
	}
	parsed, rej := translate.ParseIngress(k.cluster, c.Mode(), ing, c)
	if rej != nil {
		st.rejection = rej
		s.rejected[k] = true
		g.log.Warn("ingress rejected", "ingress", rej.Object.String(), "reason", rej.Reason, "message", rej.Message)
	} else {
		st.parsed = parsed
		for _, h := range parsed.Hosts() {
			addTo(s.byHost, h, k)
			dirtyHosts[h] = true
		}
		for _, cr := range parsed.Clusters {
			g.useCluster(cr)
		}
	}
	s.ings[k] = st
	if g.status != nil {
		g.status.Set(skey, status.Desired{Accepted: rej == nil, Addresses: g.cfg.StatusAddresses, Rejection: rej})
	}
}

func (g *Gateway) useCluster(cr translate.ClusterRef) {
	s := &g.st
	if s.clusterUsers[cr.Name] == 0 {
		s.clusterRefs[cr.Name] = cr
		addTo(s.clustersBySvc, objKey{cr.Cluster, cr.Namespace, cr.Service}, cr.Name)
		s.dirtyClusters[cr.Name] = true
	}
	s.clusterUsers[cr.Name]++
}

func (g *Gateway) releaseCluster(cr translate.ClusterRef) {
	s := &g.st
	s.clusterUsers[cr.Name]--
	if s.clusterUsers[cr.Name] > 0 {
		return
	}
	delete(s.clusterUsers, cr.Name)
	delete(s.clusterRefs, cr.Name)
	removeFrom(s.clustersBySvc, objKey{cr.Cluster, cr.Namespace, cr.Service}, cr.Name)
	s.dirtyClusters[cr.Name] = true
}

// retranslateHost rebuilds one virtual host from the accepted Ingresses routing it. It reports
// whether the TLS certificate selection changed (the HTTPS listeners must then be rebuilt).
func (g *Gateway) retranslateHost(host string, upd *xdsserver.Update) (tlsChanged bool) {
	s := &g.st
	var ings []*translate.Ingress
	for k := range s.byHost[host] {
		ings = append(ings, s.ings[k].parsed)
	}
	old, had := s.hosts[host]
	vh, ok := translate.Host(host, ings)
	if !ok {
		delete(s.hosts, host)
		upd.Remove(resource.ScopedRouteType, xdsbuild.ScopeName(host))
	} else {
		s.hosts[host] = vh
		upd.Put(resource.ScopedRouteType, xdsbuild.ScopeName(host), xdsbuild.Scope(vh))
	}
	if had && old.TLSSecret != "" && old.TLSSecret != vh.TLSSecret {
		removeFrom(s.secretHosts, old.TLSSecret, host)
		if s.secretHosts[old.TLSSecret] == nil {
			delete(s.secrets, old.TLSSecret)
			upd.Remove(resource.SecretType, old.TLSSecret)
		}
		tlsChanged = true
	}
	if vh.TLSSecret != "" {
		for _, in := range ings {
			if sec, has := in.TLS[host]; has && sec.Name == vh.TLSSecret {
				sec.Hosts = nil
				s.secrets[sec.Name] = sec
				upd.Put(resource.SecretType, sec.Name, xdsbuild.Secret(sec))
				break
			}
		}
		if !s.secretHosts[vh.TLSSecret][host] {
			addTo(s.secretHosts, vh.TLSSecret, host)
			tlsChanged = true
		}
	}
	return tlsChanged
}

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

func (g *Gateway) publishSnapshot(at time.Time, took time.Duration) {
	rejections := make([]model.Rejection, 0, len(g.st.rejected))
	for _, k := range sortedSet(g.st.rejected, objKey.less) {
		rejections = append(rejections, *g.st.ings[k].rejection)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.published = true
	g.snapshot = Snapshot{
		Published: true, Hosts: len(g.st.hosts), Clusters: len(g.st.clusterRefs), Secrets: len(g.st.secrets),
		Rejections: rejections, LastFlush: at, LastFlushDuration: took,
	}
}
