package xdsbuild

import (
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	buffer "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/buffer/v3"
	localratelimit "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	connectionlimit "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/edgegate/edgegate/gateway/model"
)

const (
	rateLimitFilter = "envoy.filters.http.local_ratelimit"
	// The buffer filter is Envoy's per-route body limit (body_size_limit has no per-route config in
	// 1.40); it buffers the body up to the limit before forwarding.
	bodyLimitFilter = "envoy.filters.http.buffer"
)

// hostFilterConfigs turns per-host limits into per-virtual-host filter configuration.
func hostFilterConfigs(l model.HostLimits) map[string]*anypb.Any {
	out := map[string]*anypb.Any{}
	if l.RequestsPerSecond > 0 {
		burst := l.Burst
		if burst < l.RequestsPerSecond {
			burst = l.RequestsPerSecond
		}
		always := &core.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}}
		rl, _ := anypb.New(&localratelimit.LocalRateLimit{
			StatPrefix: "host_rate_limit",
			// One bucket per host, shared by every worker thread of this Envoy.
			TokenBucket:    &typev3.TokenBucket{MaxTokens: burst, TokensPerFill: wrapperspb.UInt32(l.RequestsPerSecond), FillInterval: durationpb.New(time.Second)},
			FilterEnabled:  always,
			FilterEnforced: always,
		})
		out[rateLimitFilter] = rl
	}
	// Every host states its body limit, or that it has none: the listener-level filter cannot be
	// disabled and enabled per host, because Envoy decides that before the Lua filters pick the scope.
	if l.MaxRequestBytes > 0 {
		out[bodyLimitFilter], _ = anypb.New(&buffer.BufferPerRoute{Override: &buffer.BufferPerRoute_Buffer{Buffer: &buffer.Buffer{MaxRequestBytes: wrapperspb.UInt32(l.MaxRequestBytes)}}})
	} else {
		out[bodyLimitFilter], _ = anypb.New(&buffer.BufferPerRoute{Override: &buffer.BufferPerRoute_Disabled{Disabled: true}})
	}
	return out
}

// circuitBreakers and outlierDetection keep one backend from taking all of Envoy's capacity.
func applyBackendLimits(c *cluster.Cluster, l model.BackendLimits) {
	if l.MaxConnections+l.MaxPendingRequests+l.MaxRequests+l.MaxRetries > 0 {
		t := &cluster.CircuitBreakers_Thresholds{Priority: core.RoutingPriority_DEFAULT}
		if l.MaxConnections > 0 {
			t.MaxConnections = wrapperspb.UInt32(l.MaxConnections)
		}
		if l.MaxPendingRequests > 0 {
			t.MaxPendingRequests = wrapperspb.UInt32(l.MaxPendingRequests)
		}
		if l.MaxRequests > 0 {
			t.MaxRequests = wrapperspb.UInt32(l.MaxRequests)
		}
		if l.MaxRetries > 0 {
			t.MaxRetries = wrapperspb.UInt32(l.MaxRetries)
		}
		c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{t}}
	}
	if l.Consecutive5xx > 0 {
		od := &cluster.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(l.Consecutive5xx)}
		if l.OutlierIntervalMillis > 0 {
			od.Interval = durationpb.New(time.Duration(l.OutlierIntervalMillis) * time.Millisecond)
		}
		if l.EjectionMillis > 0 {
			od.BaseEjectionTime = durationpb.New(time.Duration(l.EjectionMillis) * time.Millisecond)
		}
		if l.MaxEjectionPercent > 0 {
			od.MaxEjectionPercent = wrapperspb.UInt32(l.MaxEjectionPercent)
		}
		c.OutlierDetection = od
	}
}

// connectionLimit caps the concurrent connections of one filter chain (one certificate's hosts).
// Envoy counts them per chain across its workers; a connection over the cap is closed at once:
// a delayed close would slow a flooding client down but hold one more file descriptor per attempt
// on the node, the resource the cap protects.
func connectionLimit(max uint32) (*listener.Filter, error) {
	cfg, err := anypb.New(&connectionlimit.ConnectionLimit{StatPrefix: "host_connection_limit", MaxConnections: wrapperspb.UInt64(uint64(max))})
	if err != nil {
		return nil, err
	}
	return &listener.Filter{Name: "envoy.filters.network.connection_limit", ConfigType: &listener.Filter_TypedConfig{TypedConfig: cfg}}, nil
}
