package gateway

import (
	"sort"
	"time"
	"unique"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/status"
	"github.com/edgegate/edgegate/gateway/tenancy"
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

func (k objKey) ref(kind string) model.ObjectRef {
	return model.ObjectRef{Cluster: k.cluster, Kind: kind, Namespace: k.namespace, Name: k.name}
}

// ingState is what the pipeline remembers of one Ingress of ours. The indexes below hold
// *ingState values, not keys: 8 bytes a value instead of 48 (three strings).
type ingState struct {
	key   objKey
	claim *claim
	// served is the claim the Ingress is served under (its hosts carry its routes), nil while it
	// is not served; clusters are the model clusters its routes use meanwhile. The parsed Ingress
	// is not kept (~330 B per Ingress, 33 MB at 100k): a flush keeps what it parses (parsedIn),
	// and a host rebuilt later parses its other Ingresses again from the cache.
	served    *claim
	clusters  []string
	rejection *model.Rejection // set while the Ingress is not served
	services  []objKey         // Services the spec names, served or not: their arrival re-translates it
	secrets   []objKey
}

// servedHost is what the pipeline remembers of a served virtual host.
type servedHost struct {
	tlsSecret      string
	maxConnections uint32
}

// state is the pipeline's index, owned by the Run goroutine. Everything here is derived from the
// remote objects, so a restart rebuilds the same state (and so the same host ownership).
type state struct {
	ings     map[objKey]*ingState
	byNS     index[objKey, *ingState] // Ingresses per namespace (name field empty)
	bySvc    index[objKey, *ingState] // Ingresses naming each Service
	bySecret index[objKey, *ingState] // Ingresses naming each Secret

	claims claims

	clusterUsers  map[string]int // model cluster name → served Ingresses using it
	clusterRefs   map[string]translate.ClusterRef
	clustersBySvc index[objKey, string]
	denied        map[string][]string // model cluster name → endpoint addresses refused

	// hosts holds what a rebuild of each served virtual host compares against, not the host
	// itself: its routes live in the xDS cache (marshalled) and are rebuilt from the Ingresses, and
	// keeping another copy cost ~0.5 KB per host (48 MB at 100k hosts).
	hosts       map[string]servedHost
	secretHosts index[string, string]   // served secret name → hosts using it
	secrets     map[string]model.Secret // served secrets

	rejected map[objKey]bool // Ingresses of ours that are rejected

	dirtyIngs     map[objKey]bool
	dirtyClusters map[string]bool
	// parsed holds the Ingresses parsed during one flush (nil outside a flush).
	parsed      map[objKey]*translate.Ingress
	listenersOK bool // false until listeners are built once
	// wholeTable is set by markAll until the flush that re-evaluates everything: its status writes
	// go to the status writer's rate-limited bulk queue.
	wholeTable bool
}

func newState() state {
	return state{
		ings: map[objKey]*ingState{}, byNS: index[objKey, *ingState]{},
		bySvc: index[objKey, *ingState]{}, bySecret: index[objKey, *ingState]{},
		claims:       newClaims(),
		clusterUsers: map[string]int{}, clusterRefs: map[string]translate.ClusterRef{}, clustersBySvc: index[objKey, string]{},
		denied: map[string][]string{},
		hosts:  map[string]servedHost{}, secretHosts: index[string, string]{}, secrets: map[string]model.Secret{},
		rejected: map[objKey]bool{}, dirtyIngs: map[objKey]bool{}, dirtyClusters: map[string]bool{},
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
		for ing := range s.bySvc.values(k) {
			s.dirtyIngs[ing.key] = true
		}
		for c := range s.clustersBySvc.values(k) {
			s.dirtyClusters[c] = true
		}
	case source.KindEndpointSlice:
		for c := range s.clustersBySvc.values(k) {
			s.dirtyClusters[c] = true
		}
	case source.KindSecret:
		for ing := range s.bySecret.values(k) {
			s.dirtyIngs[ing.key] = true
		}
	case source.KindNamespace:
		// A tenant label changed: the namespace's Ingresses may belong to another tenant now.
		for ing := range s.byNS.values(objKey{ev.Cluster, ev.Name, ""}) {
			s.dirtyIngs[ing.key] = true
		}
	case source.KindIngressClass:
		g.markCluster(ev.Cluster)
	case source.KindNodeAddresses:
		for name := range s.clusterRefs {
			s.dirtyClusters[name] = true
		}
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
	for _, n := range c.IngressNames() {
		g.st.dirtyIngs[objKey{cluster, n.Namespace, n.Name}] = true
	}
	for k := range g.st.ings {
		if k.cluster == cluster {
			g.st.dirtyIngs[k] = true
		}
	}
}

// markAll marks everything dirty: used for the first publication and the consistency pass.
func (g *Gateway) markAll() {
	if g.covered == nil {
		g.covered = map[string]bool{}
	}
	for name, c := range g.clusters {
		// Read before marking: a cluster that has synced has its whole first list in the cache.
		g.covered[name] = g.covered[name] || c.Health().Synced
		g.markCluster(name)
	}
	for name := range g.st.clusterRefs {
		g.st.dirtyClusters[name] = true
	}
	g.st.listenersOK = false
	g.st.wholeTable = true
}

// setStatus hands the desired status of an object to the status writer.
func (g *Gateway) setStatus(k status.Key, d status.Desired) {
	switch {
	case g.status == nil:
	case g.st.wholeTable:
		g.status.SetBulk(k, d)
	default:
		g.status.Set(k, d)
	}
}

// flush re-translates what is dirty and applies the changed resources to the xDS server.
//
// Order: refresh the claims of dirty Ingresses (hosts, routes, certificates; tenant; hostname
// policy), widen the set to every Ingress whose ownership or quota standing those changes can
// flip, evaluate each (ownership → quota → backends), then rebuild the touched hosts and clusters.
func (g *Gateway) flush() {
	began := time.Now()
	s := &g.st
	s.parsed = map[objKey]*translate.Ingress{}
	defer func() { s.parsed = nil }()
	evaluate := map[objKey]bool{}
	for _, k := range sortedSet(s.dirtyIngs, objKey.less) {
		evaluate[k] = true
		g.refreshClaim(k, evaluate)
	}
	s.dirtyIngs = map[objKey]bool{}
	for k := range s.claims.requota(g.cfg.Tenancy) {
		evaluate[k] = true
	}
	// Before the first publication nothing is served yet, and every claim is known (the clusters
	// have synced, or the startup grace ran out): the first configuration goes to Envoy in parts,
	// so that Envoy applies one part while the next is translated, on a core of its own. (On the
	// 2-core bench machine, with the apiserver busy too, the CPU is the limit: a cold start at 100k
	// went from 18.3–20.9 s to 18.5–20.8 s.) Later passes apply at once: a part could show a host
	// between two owners.
	keys := sortedSet(evaluate, objKey.less)
	part := len(keys)
	if !g.Published() {
		part = firstPublicationPart
	}
	dirtyHosts := map[string]bool{}
	changed, hosts := 0, 0
	for len(keys) > part {
		for _, k := range keys[:part] {
			g.evaluateIngress(k, dirtyHosts)
		}
		keys = keys[part:]
		changed += g.applyDirty(dirtyHosts)
		hosts += len(dirtyHosts)
		dirtyHosts = map[string]bool{}
		s.parsed = map[objKey]*translate.Ingress{} // a host of a later part parses its Ingresses again
	}
	for _, k := range keys {
		g.evaluateIngress(k, dirtyHosts)
	}
	s.wholeTable = false
	changed += g.applyDirty(dirtyHosts)
	hosts += len(dirtyHosts)
	took := time.Since(began)
	if changed > 0 {
		g.log.Debug("configuration updated", "resources", changed, "hosts", hosts, "took", took)
	}
	g.publishSnapshot(began, took)
}

// firstPublicationPart is how many Ingresses one part of the first configuration evaluates: at
// 200k Ingresses, ten parts.
var firstPublicationPart = 20_000 // a variable for tests

// applyDirty rebuilds the dirty clusters and the given hosts (and the listeners if needed), and
// applies the changes to the xDS server; it returns how many resources changed.
func (g *Gateway) applyDirty(dirtyHosts map[string]bool) int {
	s := &g.st
	var upd xdsserver.Update
	for name := range s.dirtyClusters {
		ref, used := s.clusterRefs[name]
		if !used {
			delete(s.denied, name)
			upd.Remove(resource.ClusterType, name)
			upd.Remove(resource.EndpointType, name)
			continue
		}
		src := g.clusters[ref.Cluster]
		c, denied := translate.Cluster(ref, src.Mode(), src, g.cfg.Tenancy.EndpointAllowed)
		c.Limits = g.cfg.Tenancy.BackendLimitsOf(g.cfg.Tenancy.TenantOf(ref.Cluster, ref.Namespace, src.NamespaceLabels(ref.Namespace)))
		svcKey := status.Key{Cluster: ref.Cluster, Kind: "Service", Namespace: ref.Namespace, Name: ref.Service}
		if len(denied) > 0 {
			s.denied[name] = denied
			g.log.Warn("endpoint addresses refused", "cluster", name, "addresses", denied, "reason", tenancy.ReasonBackendNotAllowed)
			g.setStatus(svcKey, status.Desired{Rejection: &model.Rejection{
				Object: model.ObjectRef{Cluster: ref.Cluster, Kind: "Service", Namespace: ref.Namespace, Name: ref.Service},
				Reason: tenancy.ReasonBackendNotAllowed, Message: deniedMessage(denied)}})
		} else if _, was := s.denied[name]; was {
			delete(s.denied, name)
			if g.status != nil {
				g.status.Forget(svcKey)
			}
		}
		upd.Put(resource.ClusterType, name, xdsbuild.Cluster(c))
		if c.ExternalName == nil {
			upd.Put(resource.EndpointType, name, xdsbuild.Endpoints(c))
		} else {
			upd.Remove(resource.EndpointType, name)
		}
	}
	s.dirtyClusters = map[string]bool{}

	listenersDirty := !s.listenersOK
	for host := range dirtyHosts {
		if g.retranslateHost(host, &upd) {
			listenersDirty = true
		}
	}
	if listenersDirty {
		g.rebuildListeners(&upd)
	}

	changed, err := g.xds.Apply(upd)
	if err != nil {
		g.log.Error("apply xds update", "error", err)
	}
	return changed
}

func (g *Gateway) rebuildListeners(upd *xdsserver.Update) {
	s := &g.st
	secrets := make([]model.Secret, 0, len(s.secretHosts))
	for _, name := range sortedSet(s.secretHosts, func(a, b string) bool { return a < b }) {
		sec := s.secrets[name]
		sec.Hosts = s.secretHosts.sorted(name, func(a, b string) bool { return a < b })
		sec.MaxConnections = 0
		for _, h := range sec.Hosts {
			if m := s.hosts[h].maxConnections; m > 0 && (sec.MaxConnections == 0 || m < sec.MaxConnections) {
				sec.MaxConnections = m
			}
		}
		secrets = append(secrets, sec)
	}
	ls, err := xdsbuild.Listeners(g.cfg.Listeners, secrets)
	if err != nil {
		g.log.Error("build listeners; keeping the served ones", "error", err)
		return
	}
	for _, l := range ls { // every configured listener, always
		upd.Put(resource.ListenerType, l.Name, l)
	}
	s.listenersOK = true
}

// refreshClaim re-reads one Ingress and updates its claim; every Ingress whose ownership standing
// the change can affect is added to evaluate.
func (g *Gateway) refreshClaim(k objKey, evaluate map[objKey]bool) {
	s := &g.st
	c := g.clusters[k.cluster]
	var cl *claim
	if c != nil {
		if ing := c.Ingress(k.namespace, k.name); ing != nil && g.ours(c, ing) {
			cl = newClaim(g.cfg.Tenancy, k, ing, c.NamespaceLabels(k.namespace))
		}
	}
	st := s.ings[k]
	if st == nil && cl == nil {
		return
	}
	var old *claim
	if st != nil {
		old = st.claim
	}
	for other := range s.claims.set(old, cl) {
		evaluate[other] = true
	}
	nsKey := objKey{k.cluster, k.namespace, ""}
	if cl == nil {
		if st != nil {
			st.claim = nil
		}
		s.byNS.remove(nsKey, st)
		return
	}
	if st == nil {
		st = &ingState{key: k}
		s.ings[k] = st
	}
	st.claim = cl
	s.byNS.add(nsKey, st)
}

// evaluateIngress decides whether one Ingress is served, and updates the indexes and the hosts it
// touches. The rules, in order: the claim itself (valid hosts, no snippets, hostname policy), host
// ownership (first claim wins), the tenant's quota, then backends and Secrets.
func (g *Gateway) evaluateIngress(k objKey, dirtyHosts map[string]bool) {
	s := &g.st
	st := s.ings[k]
	if st == nil {
		return
	}
	g.unserve(k, st, dirtyHosts)
	c := g.clusters[k.cluster]
	if st.claim == nil || c == nil {
		delete(s.ings, k)
		delete(s.rejected, k)
		if g.status != nil {
			g.status.Forget(statusKey(k))
		}
		return
	}
	ing := c.Ingress(k.namespace, k.name)
	if ing == nil {
		return
	}
	st.services, st.secrets = referencedServices(k, ing), referencedSecrets(k, ing)
	for _, svc := range st.services {
		s.bySvc.add(svc, st)
	}
	for _, sec := range st.secrets {
		s.bySecret.add(sec, st)
	}
	rej := s.claims.standing(st.claim)
	if rej == nil {
		parsed, prej := translate.ParseIngress(k.cluster, c.Mode(), ing, c, g.cfg.Tenancy.ExternalNameAllowed)
		if prej != nil {
			rej = prej
		} else {
			st.served = st.claim
			s.parsed[k] = parsed
			for _, h := range parsed.Hosts() {
				dirtyHosts[h] = true
			}
			st.clusters = make([]string, len(parsed.Clusters))
			for i, cr := range parsed.Clusters {
				g.useCluster(cr)
				st.clusters[i] = cr.Name
			}
		}
	}
	st.rejection = rej
	if rej != nil {
		s.rejected[k] = true
		g.log.Warn("ingress rejected", "ingress", rej.Object.String(), "reason", rej.Reason, "message", rej.Message)
	} else {
		delete(s.rejected, k)
	}
	g.setStatus(statusKey(k), statusDesired(rej, g.cfg.StatusAddresses))
}

// unserve removes what an Ingress contributed to the served configuration and indexes.
func (g *Gateway) unserve(k objKey, st *ingState, dirtyHosts map[string]bool) {
	s := &g.st
	if st.served != nil {
		// The claim it was served under: its hosts are the ones its routes were on.
		for _, h := range st.served.Hosts {
			dirtyHosts[h] = true
		}
		for _, name := range st.clusters {
			g.releaseCluster(name)
		}
		st.served, st.clusters = nil, nil
	}
	for _, svc := range st.services {
		s.bySvc.remove(svc, st)
	}
	for _, sec := range st.secrets {
		s.bySecret.remove(sec, st)
	}
	st.services, st.secrets = nil, nil
}

func (g *Gateway) useCluster(cr translate.ClusterRef) {
	s := &g.st
	if s.clusterUsers[cr.Name] == 0 {
		s.clusterRefs[cr.Name] = cr
		s.clustersBySvc.add(objKey{cr.Cluster, cr.Namespace, cr.Service}, cr.Name)
		s.dirtyClusters[cr.Name] = true
	}
	s.clusterUsers[cr.Name]++
}

func (g *Gateway) releaseCluster(name string) {
	s := &g.st
	s.clusterUsers[name]--
	if s.clusterUsers[name] > 0 {
		return
	}
	cr := s.clusterRefs[name]
	delete(s.clusterUsers, name)
	delete(s.clusterRefs, name)
	s.clustersBySvc.remove(objKey{cr.Cluster, cr.Namespace, cr.Service}, name)
	s.dirtyClusters[name] = true
}

// retranslateHost rebuilds one virtual host from the served Ingresses routing it. It reports
// whether the HTTPS listeners must be rebuilt (the hosts of a connection-limited certificate changed).
func (g *Gateway) retranslateHost(host string, upd *xdsserver.Update) (tlsChanged bool) {
	s := &g.st
	old, had := s.hosts[host]
	vh, ings, ok := g.buildHost(host)
	if !ok {
		delete(s.hosts, host)
		upd.Remove(resource.ScopedRouteType, xdsbuild.ScopeName(host))
	} else {
		s.hosts[host] = servedHost{tlsSecret: vh.TLSSecret, maxConnections: vh.Limits.MaxConnections}
		upd.Put(resource.ScopedRouteType, xdsbuild.ScopeName(host), xdsbuild.Scope(vh))
	}
	// Every TLS host's certificate is served under the host's name: the HTTPS listener's on-demand
	// selector asks for the client's SNI.
	if vh.TLSSecret == "" && had && old.tlsSecret != "" {
		upd.Remove(resource.SecretType, host)
	}
	var sec model.Secret
	if vh.TLSSecret != "" {
		for _, in := range ings {
			if t, has := in.TLS[host]; has && t.Name == vh.TLSSecret {
				sec = t
				sec.Hosts = nil
				break
			}
		}
		upd.Put(resource.SecretType, host, xdsbuild.HostSecret(host, sec))
	}
	// Certificates of hosts with a connection limit also get a filter chain of their own (Envoy
	// counts connections per chain), which names the certificate: the listener is rebuilt when the
	// hosts of such a certificate change.
	if had && old.tlsSecret != "" && old.tlsSecret != vh.TLSSecret {
		s.secretHosts.remove(old.tlsSecret, host)
		if s.secretHosts.count(old.tlsSecret) == 0 {
			delete(s.secrets, old.tlsSecret)
			upd.Remove(resource.SecretType, old.tlsSecret)
		}
		tlsChanged = tlsChanged || old.maxConnections > 0
	}
	if vh.TLSSecret != "" {
		s.secrets[sec.Name] = sec
		if vh.Limits.MaxConnections > 0 {
			upd.Put(resource.SecretType, sec.Name, xdsbuild.Secret(sec))
		}
		if !s.secretHosts.has(vh.TLSSecret, host) {
			s.secretHosts.add(vh.TLSSecret, host)
			tlsChanged = tlsChanged || vh.Limits.MaxConnections > 0
		}
	}
	return tlsChanged
}

// buildHost translates one virtual host from the served Ingresses routing it, with its owner
// tenant's limits; ings are those Ingresses. The served ones are found among the host's valid
// claims (every served Ingress has one), so there is no second host index.
func (g *Gateway) buildHost(host string) (vh model.VirtualHost, ings []*translate.Ingress, ok bool) {
	s := &g.st
	var tenant *unique.Handle[tenancy.ID]
	for c := range s.claims.byHost.values(host) {
		st := s.ings[c.key]
		if st == nil || st.served == nil {
			continue
		}
		if in := g.parsedIn(st.key); in != nil {
			ings = append(ings, in)
			// Every Ingress serving a host belongs to its owner tenant.
			tenant = &st.claim.tenant
		}
	}
	vh, ok = translate.Host(host, ings)
	if tenant != nil {
		vh.Limits = g.cfg.Tenancy.HostLimitsOf(tenant.Value())
	}
	return vh, ings, ok
}

// parsedIn returns a served Ingress parsed: as this flush parsed it, or parsed again from the
// cache. Parsing again gives what the last evaluation gave unless the Ingress or a Service it
// names changed since; that change's event is then pending, and its flush re-evaluates the
// Ingress (nil here, if it no longer parses, leaves its routes out meanwhile).
func (g *Gateway) parsedIn(k objKey) *translate.Ingress {
	if in, ok := g.st.parsed[k]; ok {
		return in
	}
	c := g.clusters[k.cluster]
	if c == nil {
		return nil
	}
	ing := c.Ingress(k.namespace, k.name)
	if ing == nil {
		return nil
	}
	in, rej := translate.ParseIngress(k.cluster, c.Mode(), ing, c, g.cfg.Tenancy.ExternalNameAllowed)
	if rej != nil {
		return nil
	}
	if g.st.parsed != nil {
		g.st.parsed[k] = in
	}
	return in
}

// rejections lists every rejected Ingress and every Service with refused endpoints, sorted.
func (g *Gateway) rejections() []model.Rejection {
	out := make([]model.Rejection, 0, len(g.st.rejected)+len(g.st.denied))
	for _, k := range sortedSet(g.st.rejected, objKey.less) {
		out = append(out, *g.st.ings[k].rejection)
	}
	for _, name := range sortedSet(g.st.denied, func(a, b string) bool { return a < b }) {
		ref := g.st.clusterRefs[name]
		out = append(out, model.Rejection{
			Object:  model.ObjectRef{Cluster: ref.Cluster, Kind: "Service", Namespace: ref.Namespace, Name: ref.Service},
			Reason:  tenancy.ReasonBackendNotAllowed,
			Message: deniedMessage(g.st.denied[name]),
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Object.Less(out[j].Object) })
	return out
}

func (g *Gateway) publishSnapshot(at time.Time, took time.Duration) {
	rejections := g.rejections()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.published = true
	g.snapshot = Snapshot{
		Published: true, Hosts: len(g.st.hosts), Clusters: len(g.st.clusterRefs), Secrets: len(g.st.secrets),
		Rejections: rejections, LastFlush: at, LastFlushDuration: took,
	}
}
