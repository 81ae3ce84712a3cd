package xdsserver

import (
	"context"
	"fmt"
	"net"
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// BenchmarkLinearCacheOneChangeAt200k is BenchmarkOneChangeAt200k against go-control-plane's
// LinearCache, the baseline deltaCache replaces: run both to compare.
func BenchmarkLinearCacheOneChangeAt200k(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lc := cache.NewLinearCache(resource.ClusterType)
	initial := map[string]types.Resource{}
	for i := range 200_000 {
		name := fmt.Sprintf("c%06d", i)
		initial[name] = clusterNamed(name, 0)
	}
	lc.SetResources(initial)
	g := grpc.NewServer(grpc.MaxSendMsgSize(maxMessageBytes))
	discovery.RegisterAggregatedDiscoveryServiceServer(g, serverv3.NewServer(ctx, lc, nil))
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	c := dial(b, lis.Addr().String(), &discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType})
	if up, _, _ := c.recv(); len(up) != 200_000 {
		b.Fatalf("initial: %d", len(up))
	}
	b.ResetTimer()
	for i := range b.N {
		if err := lc.UpdateResource("c000042", clusterNamed("c000042", i+1)); err != nil {
			b.Fatal(err)
		}
		if up, _, _ := c.recv(); len(up) != 1 {
			b.Fatalf("got %d resources", len(up))
		}
	}
}
