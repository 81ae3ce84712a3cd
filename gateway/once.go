package gateway

import (
	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/translate"
)

// TranslateAll translates everything now, synchronously, and applies it to the xDS server. It is
// what `edgegate translate` runs over static sources; it must not be called while Run is running.
func (g *Gateway) TranslateAll() {
	g.markAll()
	g.flush()
}

// Model assembles the whole current model (sorted). It walks every host, so it is meant for
// `edgegate translate` and golden tests, not for the hot path; call it from the goroutine that
// owns the gateway (or after Run returned).
func (g *Gateway) Model() model.Config {
	var c model.Config
	for _, h := range sortedSet(g.st.hosts, func(a, b string) bool { return a < b }) {
		vh, _, _ := g.buildHost(h)
		c.Hosts = append(c.Hosts, vh)
	}
	for _, name := range sortedSet(g.st.clusterRefs, func(a, b string) bool { return a < b }) {
		ref := g.st.clusterRefs[name]
		src := g.clusters[ref.Cluster]
		cl, _ := translate.Cluster(ref, src.Mode(), src, g.cfg.Tenancy.EndpointAllowed)
		cl.Limits = g.cfg.Tenancy.BackendLimitsOf(g.cfg.Tenancy.TenantOf(ref.Cluster, ref.Namespace, src.NamespaceLabels(ref.Namespace)))
		c.Clusters = append(c.Clusters, cl)
	}
	for _, name := range sortedSet(g.st.secretHosts, func(a, b string) bool { return a < b }) {
		s := g.st.secrets[name]
		s.Hosts = g.st.secretHosts.sorted(name, func(a, b string) bool { return a < b })
		c.Secrets = append(c.Secrets, s)
	}
	c.Rejections = g.rejections()
	return c
}

// Process marks the given events and flushes at once, synchronously: the incremental path of Run
// without its timers, for callers that drive the pipeline themselves (tests, tools). It must not be
// called while Run is running.
func (g *Gateway) Process(events ...source.Event) {
	for _, ev := range events {
		g.mark(ev)
	}
	g.flush()
}
