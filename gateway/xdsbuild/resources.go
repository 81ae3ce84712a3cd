package xdsbuild

import (
	"crypto/sha256"
	"encoding/base32"
	"sync"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/edgegate/edgegate/gateway/model"
)

// routeTimeout bounds a whole request; 60 s matches ingress-nginx's proxy-read-timeout default,
// which is what most Ingress users expect.
const routeTimeout = 60 * time.Second

// connectTimeout to a backend: long enough for a loaded pod, short enough to fail over quickly.
const connectTimeout = 5 * time.Second

// Scope builds the ScopedRouteConfiguration of one virtual host, with its routes inline. Its name
// and key are the host name.
//
// The message shares its constant parts (route metadata, timeouts, the per-host filter
// configuration of a set of limits, the 404 route) with every other scope: building a scope at
// 100k hosts allocated 3.7 KB, most of it these parts again, and a first configuration's garbage
// is what a memory-limited cold start spends its time collecting. Callers must not modify it.
func Scope(vh model.VirtualHost) *route.ScopedRouteConfiguration {
	timeout := routeTimeout
	if vh.Limits.RequestTimeoutMillis > 0 {
		timeout = time.Duration(vh.Limits.RequestTimeoutMillis) * time.Millisecond
	}
	var idle *durationpb.Duration
	if vh.Limits.IdleTimeoutMillis > 0 {
		idle = sharedDuration(time.Duration(vh.Limits.IdleTimeoutMillis) * time.Millisecond)
	}
	meta := routeFoundMeta()
	routes := make([]*route.Route, 0, len(vh.Routes)+1)
	for _, r := range vh.Routes {
		rt := &route.Route{Match: pathMatch(r), Metadata: meta}
		if r.DirectStatus != 0 {
			rt.Action = &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: uint32(r.DirectStatus)}}
		} else {
			rt.Action = &route.Route_Route{Route: &route.RouteAction{
				ClusterSpecifier: &route.RouteAction_Cluster{Cluster: r.Cluster},
				Timeout:          sharedDuration(timeout),
				IdleTimeout:      idle,
			}}
		}
		routes = append(routes, rt)
	}
	routes = append(routes, notFoundRoute())
	return &route.ScopedRouteConfiguration{
		Name: ScopeName(vh.Name),
		Key:  &route.ScopedRouteConfiguration_Key{Fragments: []*route.ScopedRouteConfiguration_Key_Fragment{{Type: &route.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: vh.Name}}}},
		RouteConfiguration: &route.RouteConfiguration{
			Name: "host:" + vh.Name,
			VirtualHosts: []*route.VirtualHost{{Name: vh.Name, Domains: anyDomain, Routes: routes,
				TypedPerFilterConfig: sharedHostFilterConfigs(vh.Limits)}},
			RequestHeadersToRemove: hostHeaderOnly,
			// A route may arrive before its cluster (they travel as separate resources); without
			// this Envoy rejects the whole scope and the host stays unserved until its next change.
			ValidateClusters: noValidation,
		},
	}
}

// The constant parts every scope shares (see Scope).
var (
	anyDomain      = []string{"*"}
	hostHeaderOnly = []string{HostHeader}
	noValidation   = wrapperspb.Bool(false)
	routeFoundMeta = sync.OnceValue(func() *core.Metadata {
		found, _ := structpb.NewStruct(map[string]any{routeFoundKey: true})
		return &core.Metadata{FilterMetadata: map[string]*structpb.Struct{luaFilterName: found}}
	})
	// notFoundRoute: the host exists but no path matched: answer 404 here rather than fall
	// through to a wildcard or catch-all scope that belongs to someone else.
	notFoundRoute = sync.OnceValue(func() *route.Route {
		return &route.Route{
			Match:    &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			Action:   &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 404}},
			Metadata: routeFoundMeta(),
		}
	})
	durations, hostFilters, protocolOptions sync.Map // a few distinct values each: the limits of each tenant
)

func sharedDuration(d time.Duration) *durationpb.Duration {
	return memo(&durations, d, func() *durationpb.Duration { return durationpb.New(d) })
}

func sharedHostFilterConfigs(l model.HostLimits) map[string]*anypb.Any {
	return memo(&hostFilters, l, func() map[string]*anypb.Any { return hostFilterConfigs(l) })
}

// memo returns the value stored under k, making it with build the first time.
func memo[K comparable, V any](m *sync.Map, k K, build func() V) V {
	if v, ok := m.Load(k); ok {
		return v.(V)
	}
	v, _ := m.LoadOrStore(k, build())
	return v.(V)
}

func pathMatch(r model.Route) *route.RouteMatch {
	switch {
	case r.PathMatch == model.PathExact:
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: r.Path}}
	case r.Path == "/":
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}
	default:
		// path_separated_prefix is exactly the Ingress Prefix semantics: "/foo" matches "/foo",
		// "/foo/" and "/foo/bar", never "/foobar".
		return &route.RouteMatch{PathSpecifier: &route.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: r.Path}}
	}
}

// edsFromADS: every EDS cluster's endpoints come over ADS (shared, like Scope's constant parts).
var edsFromADS = sync.OnceValue(func() *cluster.Cluster_EdsClusterConfig {
	return &cluster.Cluster_EdsClusterConfig{EdsConfig: ads()}
})

// Cluster builds the EDS cluster of one Service port. Like Scope, it shares its constant parts
// with other clusters; callers must not modify it.
func Cluster(c model.Cluster) *cluster.Cluster {
	out := &cluster.Cluster{
		Name:                 c.Name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig:     edsFromADS(),
		ConnectTimeout:       sharedDuration(connectTimeout),
		LbPolicy:             cluster.Cluster_ROUND_ROBIN,
		// Endpoints that leave the EndpointSlice are removed at once, even while health checks would
		// keep them: the Kubernetes view is the authority.
		IgnoreHealthOnHostRemoval: true,
	}
	if c.ExternalName != nil {
		// An admin-allowed ExternalName: Envoy resolves the name and keeps one connection pool
		// per resolved address (LOGICAL_DNS).
		out.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_LOGICAL_DNS}
		out.EdsClusterConfig = nil
		out.DnsLookupFamily = cluster.Cluster_V4_PREFERRED
		out.LoadAssignment = &endpoint.ClusterLoadAssignment{ClusterName: c.Name, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
					Address: c.ExternalName.Host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: c.ExternalName.Port},
				}}},
			}}}},
		}}}
	}
	idle := time.Duration(c.Limits.IdleTimeoutMillis) * time.Millisecond
	out.TypedExtensionProtocolOptions = memo(&protocolOptions, idle, func() map[string]*anypb.Any {
		return map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": upstreamHTTP(idle)}
	})
	applyBackendLimits(out, c.Limits)
	return out
}

// upstreamHTTP is a backend cluster's protocol options: HTTP/1.1 (Envoy's default, stated
// because the options must name a protocol) and how long a pooled connection may stay unused.
func upstreamHTTP(idle time.Duration) *anypb.Any {
	opts := &httpopts.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &core.Http1ProtocolOptions{}},
		}},
	}
	if idle > 0 {
		opts.CommonHttpProtocolOptions = &core.HttpProtocolOptions{IdleTimeout: durationpb.New(idle)}
	}
	a, _ := anypb.New(opts) // cannot fail: a known message
	return a
}

// Endpoints builds the ClusterLoadAssignment of one cluster.
func Endpoints(c model.Cluster) *endpoint.ClusterLoadAssignment {
	lbs := make([]*endpoint.LbEndpoint, 0, len(c.Endpoints))
	for _, e := range c.Endpoints {
		lbs = append(lbs, &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Address: e.Address, PortSpecifier: &core.SocketAddress_PortValue{PortValue: e.Port},
			}}},
		}}})
	}
	cla := &endpoint.ClusterLoadAssignment{ClusterName: c.Name}
	if len(lbs) > 0 {
		cla.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}}
	}
	return cla
}

// Secret builds the SDS Secret of one certificate.
// HostSecret is the certificate of one host under the host's own name ("*.parent" for a wildcard),
// the name Envoy's on-demand certificate selector asks for (the client's SNI).
func HostSecret(host string, s model.Secret) *tlsv3.Secret {
	s.Name = host
	return Secret(s)
}

// Secret is a certificate under its Kubernetes Secret's name, for the filter chain of a certificate
// whose hosts have a connection limit.
func Secret(s model.Secret) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: s.Name,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: s.CertPEM}},
			PrivateKey:       &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: s.KeyPEM}},
		}},
	}
}

// ScopeName is the resource name of a host's ScopedRouteConfiguration: "s" and 21 base32 characters
// of the host's SHA-256 (the host itself is the scope's key and its route configuration's name).
//
// Short on purpose: on every scope update Envoy copies its map of all scope names
// (ScopedRdsConfigSubscription::detectUpdateConflictAndCleanupRemoved), so a route change costs
// O(scopes) there. A name of at most 22 bytes fits libc++'s short-string buffer, which makes that
// copy one memcpy per scope instead of an allocation and a free (activation at 100k hosts, Envoy
// alone: see BenchmarkEnvoyTable). 104 bits: an accidental collision among 10^6 hosts has odds of
// 10^-19; a deliberate one needs ~2^52 hashes and can only pair two names of the same attacker
// (the second takes the first one's scope), while a victim's name needs a preimage (2^104).
// The prefix also keeps names from starting with "*", which delta xDS reserves.
func ScopeName(host string) string {
	sum := sha256.Sum256([]byte(host))
	return "s" + scopeNameEncoding.EncodeToString(sum[:13])
}

var scopeNameEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
