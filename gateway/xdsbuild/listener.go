package xdsbuild

import (
	"fmt"
	"sort"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	buffer "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/buffer/v3"
	localratelimit "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	lua "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	ondemand "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/on_demand/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	snimapper "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/cert_mappers/sni/v3"
	ondemandsecret "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/cert_selectors/on_demand_secret/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/edgegate/edgegate/gateway/model"
)

// Protocol of an admin-owned listener.
type Protocol string

const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTPS Protocol = "HTTPS"
)

// Listener is one admin-owned listener, as the appliance configuration declares it.
type Listener struct {
	Name     string
	Address  string
	Port     uint32
	Protocol Protocol
	// MinTLSVersion is "1.2" or "1.3" (HTTPS only).
	MinTLSVersion string
}

// HostHeader is the request header carrying the normalised host that selects the route scope.
// The Lua filter always overwrites it, so a client cannot choose a scope by sending it, and every
// route configuration removes it before the request goes upstream.
const HostHeader = "x-edgegate-host"

// routeFoundKey is set in the Lua filters' route metadata of every route edgegate generates, so
// they can tell "a scope exists for this key" (some route matched) from "no scope" (no route).
const routeFoundKey = "edgegate_scope"

// Both Lua filters read route metadata under this key (the Lua filter's canonical name).
const luaFilterName = "envoy.filters.http.lua"

// Scope selection runs in two Lua filters before the router. Envoy re-selects the scope whenever
// the route cache is cleared, but a Lua filter can observe the re-selected route only once (its
// metadata handle is cached per filter and stream), hence one filter per probe:
//
//	exactHostLua:    key = normalised host (lower case, no port, no trailing dot); if no route
//	                 matches, mark the request with missHeader.
//	fallbackHostLua: on a miss, key = "*.<parent>" (a wildcard covers exactly one label); if that
//	                 has no route either, key = "*" (the catch-all scope).
//
// The client cannot choose a scope: both headers are always overwritten or removed, and every
// route configuration strips HostHeader before the request goes upstream. The backend sees the
// Host header unchanged. Cost: a few microseconds per request.
const exactHostLua = `
function envoy_on_request(h)
  local headers = h:headers()
  local host = string.lower(headers:get(":authority") or "")
  if string.sub(host, 1, 1) ~= "[" then
    host = string.gsub(host, ":%d*$", "")
  end
  host = string.gsub(host, "%.$", "")
  headers:replace("` + HostHeader + `", host)
  headers:remove("` + missHeader + `")
  h:clearRouteCache()
  if h:metadata():get("` + routeFoundKey + `") == nil then
    headers:replace("` + missHeader + `", "1")
  end
end
`

const fallbackHostLua = `
function envoy_on_request(h)
  local headers = h:headers()
  if headers:get("` + missHeader + `") == nil then return end
  headers:remove("` + missHeader + `")
  local host = headers:get("` + HostHeader + `") or ""
  local dot = string.find(host, ".", 1, true)
  if dot ~= nil then
    headers:replace("` + HostHeader + `", "*" .. string.sub(host, dot))
    h:clearRouteCache()
    if h:metadata():get("` + routeFoundKey + `") ~= nil then return end
  end
  headers:replace("` + HostHeader + `", "` + model.CatchAllHost + `")
  h:clearRouteCache()
end
`

// onDemandTimeout bounds how long a request waits for its cluster to be discovered.
const onDemandTimeout = 5 * time.Second

// missHeader carries "the exact host has no scope" from the first Lua filter to the second.
const missHeader = "x-edgegate-scope-miss"

// Listeners builds the admin-owned listeners. An HTTPS listener has one filter chain for every
// certificate: Envoy's on-demand certificate selector asks edgegate for the client's SNI as a
// secret name during the handshake (HostSecret), so adding or changing a certificate never
// touches the listener. Of secrets, those whose hosts have a connection limit (MaxConnections)
// get a filter chain of their own, selected by SNI, because Envoy counts connections per chain.
func Listeners(ls []Listener, secrets []model.Secret) ([]*listener.Listener, error) {
	out := make([]*listener.Listener, 0, len(ls))
	for _, l := range ls {
		built, err := buildListener(l, secrets)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		out = append(out, built)
	}
	return out, nil
}

func buildListener(l Listener, secrets []model.Secret) (*listener.Listener, error) {
	manager, err := anypb.New(connectionManager(l.Name))
	if err != nil {
		return nil, err
	}
	hcmFilter := &listener.Filter{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: manager}}
	out := &listener.Listener{
		Name: l.Name,
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: l.Address, PortSpecifier: &core.SocketAddress_PortValue{PortValue: l.Port},
		}}},
		// Freebind lets a listener on a VIP start before the VIP arrives on this node.
		Freebind: wrapperspb.Bool(true),
		// Envoy's edge best practice: 32 KiB per connection bounds memory per slow client.
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(32 * 1024),
	}
	switch l.Protocol {
	case ProtocolHTTP:
		out.FilterChains = []*listener.FilterChain{{Filters: []*listener.Filter{hcmFilter}}}
	case ProtocolHTTPS:
		inspector, err := anypb.New(&tlsinspector.TlsInspector{})
		if err != nil {
			return nil, err
		}
		out.ListenerFilters = []*listener.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector", ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: inspector}}}
		for _, s := range secrets {
			if len(s.Hosts) == 0 || s.MaxConnections == 0 {
				continue
			}
			ts, err := downstreamTLS(sdsCertificate(s.Name), l.MinTLSVersion)
			if err != nil {
				return nil, err
			}
			limit, err := connectionLimit(s.MaxConnections)
			if err != nil {
				return nil, err
			}
			names := append([]string(nil), s.Hosts...)
			sort.Strings(names)
			out.FilterChains = append(out.FilterChains, &listener.FilterChain{
				Name:             s.Name,
				FilterChainMatch: &listener.FilterChainMatch{ServerNames: names},
				TransportSocket:  ts,
				Filters:          []*listener.Filter{limit, proto.Clone(hcmFilter).(*listener.Filter)},
			})
		}
		ts, err := downstreamTLS(onDemandCertificate(), l.MinTLSVersion)
		if err != nil {
			return nil, err
		}
		out.FilterChains = append(out.FilterChains, &listener.FilterChain{Name: "sni", TransportSocket: ts, Filters: []*listener.Filter{hcmFilter}})
	default:
		return nil, fmt.Errorf("unknown protocol %q", l.Protocol)
	}
	return out, nil
}

// noSNI is the secret name asked for when a client sends no SNI. No secret has it (host names
// cannot end in ".invalid"), so the handshake fails, as it would with no matching certificate.
const noSNI = "no-sni.invalid"

// onDemandCertificate selects the certificate during the handshake: the SNI is the secret name.
func onDemandCertificate() func(*tlsv3.CommonTlsContext) error {
	return func(c *tlsv3.CommonTlsContext) error {
		mapper, err := anypb.New(&snimapper.SNI{DefaultValue: noSNI})
		if err != nil {
			return err
		}
		selector, err := anypb.New(&ondemandsecret.Config{
			ConfigSource:      ads(),
			CertificateMapper: &core.TypedExtensionConfig{Name: "envoy.tls.certificate_mappers.sni", TypedConfig: mapper},
		})
		if err != nil {
			return err
		}
		c.CustomTlsCertificateSelector = &core.TypedExtensionConfig{Name: "envoy.tls.certificate_selectors.on_demand_secret", TypedConfig: selector}
		return nil
	}
}

// sdsCertificate offers one named SDS certificate.
func sdsCertificate(secret string) func(*tlsv3.CommonTlsContext) error {
	return func(c *tlsv3.CommonTlsContext) error {
		c.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{{Name: secret, SdsConfig: ads()}}
		return nil
	}
}

func downstreamTLS(certificate func(*tlsv3.CommonTlsContext) error, minVersion string) (*core.TransportSocket, error) {
	min := tlsv3.TlsParameters_TLSv1_2
	if minVersion == "1.3" {
		min = tlsv3.TlsParameters_TLSv1_3
	}
	common := &tlsv3.CommonTlsContext{
		TlsParams:     &tlsv3.TlsParameters{TlsMinimumProtocolVersion: min},
		AlpnProtocols: []string{"h2", "http/1.1"},
	}
	if err := certificate(common); err != nil {
		return nil, err
	}
	downstream := &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
	if common.CustomTlsCertificateSelector != nil {
		// Envoy 1.40 refuses on-demand certificates with TLS session resumption (a resumed session
		// would skip the certificate selection). Full handshakes cost some CPU on reconnects;
		// HTTP keep-alive and HTTP/2 make them rare.
		downstream.SessionTicketKeysType = &tlsv3.DownstreamTlsContext_DisableStatelessSessionResumption{DisableStatelessSessionResumption: true}
		downstream.DisableStatefulSessionResumption = true
	}
	ctx, err := anypb.New(downstream)
	if err != nil {
		return nil, err
	}
	return &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: ctx}}, nil
}

func connectionManager(statPrefix string) *hcm.HttpConnectionManager {
	exactCfg, _ := anypb.New(&lua.Lua{DefaultSourceCode: &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: exactHostLua}}})
	fallbackCfg, _ := anypb.New(&lua.Lua{DefaultSourceCode: &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: fallbackHostLua}}})
	routerCfg, _ := anypb.New(&router.Router{})
	// Per-host limits: both filters are configured per virtual host (see limits.go). The rate limit
	// has no bucket at the listener; the body limit here applies only to requests matching no scope.
	rateCfg, _ := anypb.New(&localratelimit.LocalRateLimit{StatPrefix: "host_rate_limit"})
	bodyCfg, _ := anypb.New(&buffer.Buffer{MaxRequestBytes: wrapperspb.UInt32(1 << 20)}) // replaced per host
	// Clusters are discovered on demand (see ClusterDiscovery): a request whose route names a
	// cluster Envoy does not have yet waits here while Envoy asks edgegate for it (and then for its
	// endpoints). A few milliseconds normally; 5 s covers an edgegate busy with a cold start.
	onDemandCfg, _ := anypb.New(&ondemand.OnDemand{Odcds: &ondemand.OnDemandCds{Source: ads(), Timeout: durationpb.New(onDemandTimeout)}})
	return &hcm.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcm.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcm.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcm.ScopedRoutes{
			Name: "edgegate",
			ScopeKeyBuilder: &hcm.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcm.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{{
				Type: &hcm.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{
					HeaderValueExtractor: &hcm.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{
						// No separator and index 0: the whole header value is the key.
						Name: HostHeader, ExtractType: &hcm.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_Index{Index: 0},
					},
				},
			}}},
			RdsConfigSource: ads(),
			ConfigSpecifier: &hcm.ScopedRoutes_ScopedRds{ScopedRds: &hcm.ScopedRds{ScopedRdsConfigSource: ads()}},
		}},
		HttpFilters: []*hcm.HttpFilter{
			{Name: "edgegate.scope.exact", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: exactCfg}},
			{Name: "edgegate.scope.fallback", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: fallbackCfg}},
			{Name: rateLimitFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: rateCfg}},
			{Name: bodyLimitFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: bodyCfg}},
			{Name: "envoy.filters.http.on_demand", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: onDemandCfg}},
			{Name: "envoy.filters.http.router", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: routerCfg}},
		},
		// Edge best practices (envoyproxy.io "Configuring Envoy as an edge proxy").
		UseRemoteAddress:             wrapperspb.Bool(true),
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcm.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
		CommonHttpProtocolOptions: &core.HttpProtocolOptions{
			IdleTimeout:                  durationpb.New(time.Hour),
			HeadersWithUnderscoresAction: core.HttpProtocolOptions_REJECT_REQUEST,
			MaxHeadersCount:              wrapperspb.UInt32(100),
		},
		// Slowloris: a client gets 10 s to send its headers.
		RequestHeadersTimeout: durationpb.New(10 * time.Second),
		MaxRequestHeadersKb:   wrapperspb.UInt32(60),
		Http2ProtocolOptions: &core.Http2ProtocolOptions{
			MaxConcurrentStreams:        wrapperspb.UInt32(100),
			InitialStreamWindowSize:     wrapperspb.UInt32(64 * 1024),
			InitialConnectionWindowSize: wrapperspb.UInt32(1024 * 1024),
		},
		StreamIdleTimeout: durationpb.New(5 * time.Minute),
		RequestTimeout:    durationpb.New(5 * time.Minute),
		UpgradeConfigs:    []*hcm.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
	}
}

// ads is the config source for every dynamic resource: the aggregated (delta) stream.
func ads() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}
