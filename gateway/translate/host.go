package translate

import (
	"sort"

	"github.com/edgegate/edgegate/gateway/model"
)

// Host merges the accepted Ingresses that put routes on host into its virtual host. ingresses may be
// in any order and may include Ingresses without routes for host (they contribute nothing). When two
// Ingresses declare the same path (same match kind), the older one wins; the result does not depend
// on the order of ingresses. ok is false when no Ingress routes this host.
func Host(host string, ingresses []*Ingress) (vh model.VirtualHost, ok bool) {
	sorted := append([]*Ingress(nil), ingresses...)
	sort.Slice(sorted, func(i, j int) bool { return Older(sorted[i], sorted[j]) })

	type key struct {
		kind model.PathMatchKind
		path string
	}
	seen := map[key]bool{}
	var defaults []model.Route
	sources := map[model.ObjectRef]bool{}
	vh.Name = host
	for _, in := range sorted {
		contributed := false
		for _, r := range in.Rules {
			if r.Host != host {
				continue
			}
			contributed = true
			k := key{r.Match, r.Path}
			if seen[k] {
				continue
			}
			seen[k] = true
			vh.Routes = append(vh.Routes, model.Route{PathMatch: r.Match, Path: r.Path, Cluster: r.Cluster, Source: in.Ref})
		}
		if in.DefaultCluster != "" && (contributed || (len(in.Rules) == 0 && host == model.CatchAllHost)) {
			contributed = true
			defaults = append(defaults, model.Route{PathMatch: model.PathPrefix, Path: "/", Cluster: in.DefaultCluster, Source: in.Ref})
		}
		if !contributed {
			continue
		}
		sources[in.Ref] = true
		if s, has := in.TLS[host]; has && vh.TLSSecret == "" {
			vh.TLSSecret = s.Name
		}
	}
	if len(sources) == 0 {
		return model.VirtualHost{}, false
	}
	sortRoutes(vh.Routes)
	// The oldest defaultBackend catches what no rule matched; it only applies when no rule already
	// covers "/" as a prefix.
	if len(defaults) > 0 && !seen[key{model.PathPrefix, "/"}] {
		vh.Routes = append(vh.Routes, defaults[0])
	}
	for ref := range sources {
		vh.Sources = append(vh.Sources, ref)
	}
	sort.Slice(vh.Sources, func(i, j int) bool { return vh.Sources[i].Less(vh.Sources[j]) })
	return vh, true
}

// sortRoutes orders routes so that the first match is the one Ingress semantics choose: the longest
// path wins, and at equal length Exact beats Prefix.
func sortRoutes(routes []model.Route) {
	sort.SliceStable(routes, func(i, j int) bool {
		a, b := routes[i], routes[j]
		if len(a.Path) != len(b.Path) {
			return len(a.Path) > len(b.Path)
		}
		if a.PathMatch != b.PathMatch {
			return a.PathMatch == model.PathExact
		}
		return a.Path < b.Path
	})
}
