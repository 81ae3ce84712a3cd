// Package envoy connects edgegate to its local Envoy: it writes Envoy's bootstrap (Envoy learns
// everything else over xDS), optionally runs Envoy as a supervised child process, and reports
// whether Envoy is ready (admin /ready).
package envoy

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	metrics "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	overload "github.com/envoyproxy/go-control-plane/envoy/config/overload/v3"
	downstreamconns "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	fixedheap "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"sigs.k8s.io/yaml"
)

// xdsCluster is the static cluster in the bootstrap that points at edgegate's xDS server.
const xdsCluster = "edgegate-xds"

// BootstrapOptions is what the bootstrap depends on.
type BootstrapOptions struct {
	NodeID string
	// XDSAddress is edgegate's xDS server: loopback host:port or unix:///path.
	XDSAddress string
	// AdminAddress is Envoy's admin interface: loopback host:port or unix:///path.
	AdminAddress string
	// MaxHeapBytes (0: off) and MaxDownstreamConnections feed the overload manager.
	MaxHeapBytes             uint64
	MaxDownstreamConnections uint64
}

// Bootstrap builds Envoy's bootstrap: a node identity, the admin interface, and one static cluster
// to reach edgegate's xDS server over the delta aggregated stream. Everything else (listeners,
// routes, clusters, secrets) arrives over xDS.
func Bootstrap(o BootstrapOptions) (*bootstrap.Bootstrap, error) {
	xdsAddr, err := address(o.XDSAddress)
	if err != nil {
		return nil, fmt.Errorf("xds address: %w", err)
	}
	adminAddr, err := address(o.AdminAddress)
	if err != nil {
		return nil, fmt.Errorf("admin address: %w", err)
	}
	h2, err := anypb.New(&httpopts.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{}},
		}},
	})
	if err != nil {
		return nil, err
	}
	overload, err := overloadManager(o)
	if err != nil {
		return nil, err
	}
	ads := &core.ConfigSource{ResourceApiVersion: core.ApiVersion_V3, ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
	return &bootstrap.Bootstrap{
		Node:            &core.Node{Id: o.NodeID, Cluster: "edgegate"},
		OverloadManager: overload,
		StatsConfig:     statsConfig(),
		Admin:           &bootstrap.Admin{Address: adminAddr},
		DynamicResources: &bootstrap.Bootstrap_DynamicResources{
			AdsConfig: &core.ApiConfigSource{
				ApiType:             core.ApiConfigSource_DELTA_GRPC,
				TransportApiVersion: core.ApiVersion_V3,
				GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: xdsCluster},
				}}},
				SetNodeOnFirstMessageOnly: true,
			},
			// No cds_config: clusters are not subscribed to as a whole. The HTTP connection manager's
			// on_demand filter asks for each cluster by name the first time a route needs it, so
			// Envoy holds only the backends that served traffic since it started (a cluster costs
			// Envoy ~25 KiB even without stats: 2.5 GB for 100k Services, most of them idle on a
			// multi-tenant edge), and a cold start is listeners and route scopes only.
			LdsConfig: ads,
		},
		// Per-worker cluster state is created on a worker's first request to the cluster. Measured
		// with every cluster sent and unused, 10k clusters, 4 workers: 427 → 314 MiB allocated
		// together with deferred cluster stats, of which the stats alone saved ~21 MiB. Deferred
		// stats are not used: with clusters on demand they saved nothing and cost 16 MiB at 10k
		// clusters in use.
		ClusterManager: &bootstrap.ClusterManager{EnableDeferredClusterCreation: true},
		StaticResources: &bootstrap.Bootstrap_StaticResources{Clusters: []*cluster.Cluster{{
			Name:                          xdsCluster,
			ClusterDiscoveryType:          &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			ConnectTimeout:                durationpb.New(time.Second),
			TypedExtensionProtocolOptions: map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2},
			LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: xdsCluster, Endpoints: []*endpoint.LocalityLbEndpoints{{
				LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: xdsAddr}}}},
			}}},
		}}},
	}, nil
}

// overloadManager protects the node: a cap on downstream connections, and with a heap budget,
// shrink the heap at 95% and stop accepting requests at 98% (Envoy's edge best practice).
func overloadManager(o BootstrapOptions) (*overload.OverloadManager, error) {
	m := &overload.OverloadManager{RefreshInterval: durationpb.New(250 * time.Millisecond)}
	if o.MaxDownstreamConnections > 0 {
		cfg, err := anypb.New(&downstreamconns.DownstreamConnectionsConfig{MaxActiveDownstreamConnections: int64(o.MaxDownstreamConnections)})
		if err != nil {
			return nil, err
		}
		m.ResourceMonitors = append(m.ResourceMonitors, &overload.ResourceMonitor{
			Name: "envoy.resource_monitors.global_downstream_max_connections", ConfigType: &overload.ResourceMonitor_TypedConfig{TypedConfig: cfg}})
	}
	if o.MaxHeapBytes > 0 {
		cfg, err := anypb.New(&fixedheap.FixedHeapConfig{MaxHeapSizeBytes: o.MaxHeapBytes})
		if err != nil {
			return nil, err
		}
		const heap = "envoy.resource_monitors.fixed_heap"
		m.ResourceMonitors = append(m.ResourceMonitors, &overload.ResourceMonitor{Name: heap, ConfigType: &overload.ResourceMonitor_TypedConfig{TypedConfig: cfg}})
		for _, a := range []struct {
			name      string
			threshold float64
		}{{"envoy.overload_actions.shrink_heap", 0.95}, {"envoy.overload_actions.stop_accepting_requests", 0.98}} {
			m.Actions = append(m.Actions, &overload.OverloadAction{Name: a.name, Triggers: []*overload.Trigger{{
				Name: heap, TriggerOneof: &overload.Trigger_Threshold{Threshold: &overload.ThresholdTrigger{Value: a.threshold}},
			}}})
		}
	}
	if len(m.ResourceMonitors) == 0 {
		return nil, nil
	}
	return m, nil
}

// statsConfig drops the stats that grow with the configuration: Envoy keeps ~144 stats per
// cluster (~95 KB each with their storage), which at 100k Service ports is gigabytes (measured by
// the scale benchmark: 1.44 million stats at 10k). Listener, HTTP connection manager and server
// stats stay; per-backend numbers come from edgegate's own metrics instead.
func statsConfig() *metrics.StatsConfig {
	prefix := func(p string) *matcher.StringMatcher {
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: p}}
	}
	// Backend clusters are named "<remote cluster>/<namespace>/<service>/<port>", which tells them
	// from Envoy's own clusters (the xDS cluster keeps its stats). Envoy's safe_regex must match
	// the whole stat name.
	backends := &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: `cluster\.[^./]+/[^./]+/[^./]+/[0-9]+\..*`}}}
	return &metrics.StatsConfig{StatsMatcher: &metrics.StatsMatcher{StatsMatcher: &metrics.StatsMatcher_ExclusionList{
		ExclusionList: &matcher.ListStringMatcher{Patterns: []*matcher.StringMatcher{backends, prefix("vhost."), prefix("sds.")}},
	}}}
}

// BootstrapYAML renders the bootstrap as YAML.
func BootstrapYAML(o BootstrapOptions) ([]byte, error) {
	b, err := Bootstrap(o)
	if err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(js)
}

// WriteBootstrap writes the bootstrap atomically (write, then rename), so an Envoy starting at the
// same moment never reads half a file.
func WriteBootstrap(path string, o BootstrapOptions) error {
	y, err := BootstrapYAML(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write bootstrap: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, y, 0o644); err != nil {
		return fmt.Errorf("write bootstrap: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write bootstrap: %w", err)
	}
	return nil
}

// address turns "host:port" or "unix:///path" into an Envoy address.
func address(s string) (*core.Address, error) {
	if path, ok := strings.CutPrefix(s, "unix://"); ok {
		return &core.Address{Address: &core.Address_Pipe{Pipe: &core.Pipe{Path: path}}}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return nil, fmt.Errorf("host %q must be an IP address", host)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", port, err)
	}
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(p)},
	}}}, nil
}
