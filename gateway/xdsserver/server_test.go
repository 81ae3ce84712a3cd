package xdsserver

import (
	"context"
	"fmt"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// client is a minimal delta ADS client, playing Envoy.
type client struct {
	t      testing.TB
	stream discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	in     chan *discovery.DeltaDiscoveryResponse // one reader goroutine feeds it
}

func startServer(t testing.TB) (*Server, string) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := New(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ctx, lis) }()
	return s, lis.Addr().String()
}

func dial(t testing.TB, addr string, first *discovery.DeltaDiscoveryRequest) *client {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first.Node = &core.Node{Id: "test"}
	if err := st.Send(first); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, stream: st, in: make(chan *discovery.DeltaDiscoveryResponse, 16)}
	go func() {
		defer close(c.in)
		for {
			r, err := st.Recv()
			if err != nil {
				return
			}
			c.in <- r
		}
	}()
	return c
}

// recv waits for one response, ACKs it, and returns the names updated and removed.
func (c *client) recv() (updated, removed []string, versions map[string]string) {
	c.t.Helper()
	var resp *discovery.DeltaDiscoveryResponse
	select {
	case r, ok := <-c.in:
		if !ok {
			c.t.Fatal("stream closed")
		}
		resp = r
	case <-time.After(5 * time.Second):
		c.t.Fatal("no response within 5s")
	}
	versions = map[string]string{}
	for _, r := range resp.Resources {
		updated = append(updated, r.Name)
		versions[r.Name] = r.Version
	}
	sort.Strings(updated)
	removed = append(removed, resp.RemovedResources...)
	sort.Strings(removed)
	if err := c.stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.TypeUrl, ResponseNonce: resp.Nonce}); err != nil {
		c.t.Fatal(err)
	}
	return updated, removed, versions
}

// quiet checks that no response arrives for a while.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case r := <-c.in:
		c.t.Fatalf("unexpected response: %d resources, removed %v", len(r.Resources), r.RemovedResources)
	case <-time.After(d):
	}
}

func clusterNamed(name string, timeoutMs int) *cluster.Cluster {
	return &cluster.Cluster{Name: name, ConnectTimeout: nil, PerConnectionBufferLimitBytes: nil, LbPolicy: cluster.Cluster_LbPolicy(timeoutMs % 2)}
}

func TestDeltaSendsOnlyChanges(t *testing.T) {
	s, addr := startServer(t)
	const n = 2000
	var u Update
	var all []string
	for i := range n {
		name := fmt.Sprintf("c%05d", i)
		all = append(all, name)
		u.Put(resource.ClusterType, name, clusterNamed(name, 0))
	}
	if _, err := s.Apply(u); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr, &discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType})
	updated, removed, versions := c.recv()
	if len(updated) != n || len(removed) != 0 {
		t.Fatalf("initial: %d updated, %d removed; want %d, 0", len(updated), len(removed), n)
	}

	// One change → exactly that resource.
	var one Update
	one.Put(resource.ClusterType, "c00042", clusterNamed("c00042", 1))
	if _, err := s.Apply(one); err != nil {
		t.Fatal(err)
	}
	if up, rm, v := c.recv(); !cmp.Equal(up, []string{"c00042"}) || len(rm) != 0 {
		t.Fatalf("after one change: updated %v removed %v", up, rm)
	} else {
		versions["c00042"] = v["c00042"]
	}
	// A removal and an addition in one update.
	var mixed Update
	mixed.Remove(resource.ClusterType, "c00007")
	mixed.Put(resource.ClusterType, "new", clusterNamed("new", 0))
	if _, err := s.Apply(mixed); err != nil {
		t.Fatal(err)
	}
	if up, rm, v := c.recv(); !cmp.Equal(up, []string{"new"}) || !cmp.Equal(rm, []string{"c00007"}) {
		t.Fatalf("after mixed change: updated %v removed %v", up, rm)
	} else {
		versions["new"] = v["new"]
		delete(versions, "c00007")
	}
	// Re-applying an identical resource sends nothing.
	if _, err := s.Apply(one); err != nil {
		t.Fatal(err)
	}
	c.quiet(300 * time.Millisecond)

	// A reconnecting Envoy that announces what it has gets only what changed meanwhile.
	var later Update
	later.Put(resource.ClusterType, "c01999", clusterNamed("c01999", 1))
	if _, err := s.Apply(later); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, addr, &discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType, InitialResourceVersions: versions})
	if up, rm, _ := c2.recv(); !cmp.Equal(up, []string{"c01999"}) || len(rm) != 0 {
		t.Fatalf("reconnect: updated %v removed %v, want only c01999", up, rm)
	}
	_ = all
}

func TestDeltaExplicitSubscriptions(t *testing.T) {
	s, addr := startServer(t)
	var u Update
	for _, n := range []string{"a", "b", "c"} {
		u.Put(resource.EndpointType, n, &endpoint.ClusterLoadAssignment{ClusterName: n})
	}
	if _, err := s.Apply(u); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr, &discovery.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNamesSubscribe: []string{"a", "missing"}})
	// A name asked for that does not exist is answered as removed, so Envoy stops waiting.
	if up, rm, _ := c.recv(); !cmp.Equal(up, []string{"a"}) || !cmp.Equal(rm, []string{"missing"}) {
		t.Fatalf("subscribed a and missing: got updated %v removed %v", up, rm)
	}
	// A change to an unsubscribed name is not sent; a later subscription to an existing name is.
	var ub Update
	ub.Put(resource.EndpointType, "b", &endpoint.ClusterLoadAssignment{ClusterName: "b", Endpoints: []*endpoint.LocalityLbEndpoints{{}}})
	if _, err := s.Apply(ub); err != nil {
		t.Fatal(err)
	}
	c.quiet(200 * time.Millisecond)
	if err := c.stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNamesSubscribe: []string{"c"}}); err != nil {
		t.Fatal(err)
	}
	if up, _, _ := c.recv(); !cmp.Equal(up, []string{"c"}) {
		t.Fatalf("subscribed c later: got %v", up)
	}
	// A subscribed name that appears later is sent when it appears.
	var um Update
	um.Put(resource.EndpointType, "missing", &endpoint.ClusterLoadAssignment{ClusterName: "missing"})
	if _, err := s.Apply(um); err != nil {
		t.Fatal(err)
	}
	if up, _, _ := c.recv(); !cmp.Equal(up, []string{"missing"}) {
		t.Fatalf("late resource: got %v", up)
	}
}

// TestDeltaWildcardSecretAlias checks how a host name without a certificate of its own is served
// the wildcard's, under its own name: on subscription, when the wildcard changes, and falling back
// to the wildcard when the host's own certificate goes.
func TestDeltaWildcardSecretAlias(t *testing.T) {
	s, addr := startServer(t)
	cert := func(name, pem string) *tlsv3.Secret {
		return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: pem}}}}}
	}
	apply := func(put map[string]string, remove ...string) {
		t.Helper()
		var u Update
		for n, pem := range put {
			u.Put(resource.SecretType, n, cert(n, pem))
		}
		for _, n := range remove {
			u.Remove(resource.SecretType, n)
		}
		if _, err := s.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	apply(map[string]string{"*.example.com": "wild-1"})
	c := dial(t, addr, &discovery.DeltaDiscoveryRequest{TypeUrl: resource.SecretType, ResourceNamesSubscribe: []string{"a.example.com"}})
	// expect receives one response and checks which certificate each name carries.
	expect := func(step string, want map[string]string) {
		t.Helper()
		var resp *discovery.DeltaDiscoveryResponse
		select {
		case resp = <-c.in:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no response", step)
		}
		got := map[string]string{}
		for _, r := range resp.Resources {
			var sec tlsv3.Secret
			if err := r.Resource.UnmarshalTo(&sec); err != nil {
				t.Fatal(err)
			}
			if sec.Name != r.Name {
				t.Errorf("%s: resource %q carries a Secret named %q", step, r.Name, sec.Name)
			}
			got[r.Name] = sec.GetTlsCertificate().GetCertificateChain().GetInlineString()
		}
		if !cmp.Equal(got, want) || len(resp.RemovedResources) > 0 {
			t.Fatalf("%s: got %v removed %v, want %v", step, got, resp.RemovedResources, want)
		}
		if err := c.stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.SecretType, ResponseNonce: resp.Nonce}); err != nil {
			t.Fatal(err)
		}
	}
	expect("subscribe under a wildcard", map[string]string{"a.example.com": "wild-1"})
	apply(map[string]string{"*.example.com": "wild-2"})
	expect("wildcard renewed", map[string]string{"a.example.com": "wild-2"})
	apply(map[string]string{"a.example.com": "own"})
	expect("own certificate added", map[string]string{"a.example.com": "own"})
	apply(nil, "a.example.com")
	expect("own certificate removed", map[string]string{"a.example.com": "wild-2"})
	apply(map[string]string{"*.other.com": "other"})
	c.quiet(200 * time.Millisecond)
}

// BenchmarkOneChangeAt200k measures the control-plane cost of pushing one changed resource to one
// connected Envoy when 200k resources of that type are served.
func BenchmarkOneChangeAt200k(b *testing.B) {
	s, addr := startServer(b)
	var u Update
	for i := range 200_000 {
		name := fmt.Sprintf("c%06d", i)
		u.Put(resource.ClusterType, name, clusterNamed(name, 0))
	}
	if _, err := s.Apply(u); err != nil {
		b.Fatal(err)
	}
	c := dial(b, addr, &discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType})
	for got := 0; got < 200_000; { // in parts of at most maxResponseBytes
		up, _, _ := c.recv()
		got += len(up)
	}
	b.ResetTimer()
	for i := range b.N {
		var one Update
		one.Put(resource.ClusterType, "c000042", clusterNamed("c000042", i+1))
		if _, err := s.Apply(one); err != nil {
			b.Fatal(err)
		}
		if up, _, _ := c.recv(); len(up) != 1 {
			b.Fatalf("got %d resources", len(up))
		}
	}
}

// A table larger than one response's budget arrives in parts, each resource once; changes made
// after it are then sent alone (the cursor moved with the last part).
func TestDeltaLargeTableInParts(t *testing.T) {
	s, addr := startServer(t)
	const n = 3000
	pad := strings.Repeat("x", 4096) // 3000 × 4 KiB: three parts of at most maxResponseBytes
	var u Update
	for i := range n {
		name := fmt.Sprintf("c%05d", i)
		u.Put(resource.ClusterType, name, &cluster.Cluster{Name: name, AltStatName: pad})
	}
	if _, err := s.Apply(u); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr, &discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType})
	got := map[string]bool{}
	parts := 0
	for len(got) < n {
		updated, _, _ := c.recv()
		parts++
		for _, name := range updated {
			if got[name] {
				t.Fatalf("%s sent twice", name)
			}
			got[name] = true
		}
	}
	if parts < 3 {
		t.Errorf("%d resources of 4 KiB came in %d responses, want ≥ 3 (at most %d bytes each)", n, parts, maxResponseBytes)
	}
	c.quiet(300 * time.Millisecond)
	var one Update
	one.Put(resource.ClusterType, "c00042", &cluster.Cluster{Name: "c00042"})
	if _, err := s.Apply(one); err != nil {
		t.Fatal(err)
	}
	if up, rm, _ := c.recv(); !cmp.Equal(up, []string{"c00042"}) || len(rm) != 0 {
		t.Fatalf("after the table, one change: updated %d names, removed %v", len(up), rm)
	}
}

// The version text is made from the hash when sent; comparing one with a stream's version map
// must not allocate (a reconnecting Envoy's map is compared with every resource).
func TestEntryVersion(t *testing.T) {
	e, err := marshal(clusterNamed("a", 0))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := marshal(clusterNamed("a", 1))
	v := e.version()
	if !e.hasVersion(v) || e.hasVersion(other.version()) || e.hasVersion("") {
		t.Fatalf("hasVersion wrong for %q", v)
	}
	if n := testing.AllocsPerRun(100, func() { _ = e.hasVersion(v) }); n != 0 {
		t.Fatalf("hasVersion allocates %.0f times", n)
	}
}
