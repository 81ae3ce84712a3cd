package gateway_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/appliance/envoy"
	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/internal/envoytest"
	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/xdsbuild"
)

var (
	tableHosts = flag.Int("table-hosts", 10_000, "hosts (each with its own Service) for BenchmarkEnvoyTable")
	tableSweep = flag.Bool("table-sweep", true, "BenchmarkEnvoyTable: use every host once (all-used memory, first-request cost); off for a quick activation figure")
)

// BenchmarkEnvoyTable measures Envoy alone with a large table: the time from its start to sampled
// hosts routed and its memory then (clusters are fetched on demand, so only the sampled ones
// exist), the cost of each host's first request (its cluster and endpoints fetched), and the
// memory once every host has been used. It isolates Envoy's cost per
// host and per cluster from the apiserver and the informers (test/bench measures everything
// together): `go test -run '^$' -bench EnvoyTable -benchtime 1x ./gateway/ -table-hosts 100000`.
func BenchmarkEnvoyTable(b *testing.B) {
	n := *tableHosts
	// Every cluster in use pools a connection to the backend this process serves: both ends need
	// more descriptors than a shell's usual limit. Root may raise it.
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20})
	port := startBackend(b, "table")
	const activations = 20
	all := benchObjects(n, activations, "127.0.0.1", int32(port))
	objs := all[:1+3*n]
	httpPort := envoytest.FreePort(b)
	// Pooled backend connections idle out after 2 s: the sweep uses every cluster once, and this
	// sandbox caps descriptors at 20000 (for Envoy, and for the backend this process serves).
	policy := &tenancy.Policy{BackendLimits: model.BackendLimits{IdleTimeoutMillis: 2000}}
	src := benchSource(b, objs)
	gw, xds := benchGateway(b, src, gateway.Config{Tenancy: policy,
		Listeners: []xdsbuild.Listener{{Name: "http", Address: "127.0.0.1", Port: uint32(httpPort), Protocol: xdsbuild.ProtocolHTTP}},
	})
	gw.TranslateAll()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = xds.Serve(ctx, lis) }()
	admin := fmt.Sprintf("127.0.0.1:%d", envoytest.FreePort(b))
	bootstrap := filepath.Join(b.TempDir(), "bootstrap.yaml")
	if err := envoy.WriteBootstrap(bootstrap, envoy.BootstrapOptions{NodeID: "bench", XDSAddress: lis.Addr().String(), AdminAddress: admin}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		cmd := envoytest.Start(b, bootstrap)
		client := &http.Client{Timeout: 10 * time.Second}
		deadline := start.Add(10 * time.Minute)
		for !sampledRouted(client, httpPort, n) {
			if time.Now().After(deadline) {
				b.Fatalf("table of %d hosts not applied within 10 minutes", n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		applied := time.Since(start)
		b.StopTimer()
		idleRSS := processRSS(cmd.Process.Pid)
		idleAlloc := allocated(client, admin)
		b.ReportMetric(applied.Seconds(), "apply-s")
		b.ReportMetric(float64(idleRSS)/(1<<20), "idle-rss-MiB")
		b.ReportMetric(float64(idleAlloc)/(1<<20), "idle-alloc-MiB")
		if *tableSweep {
			// Every host once: each first request makes Envoy fetch its cluster.
			sweepStart := time.Now()
			for k := range n {
				if code := getHost(client, httpPort, k); code != 200 {
					b.Fatalf("host %d answered %d in the sweep", k, code)
				}
			}
			sweep := time.Since(sweepStart)
			rss := processRSS(cmd.Process.Pid)
			mem, _ := adminStats(client, admin, "cluster_manager.active_clusters")
			if mem["cluster_manager.active_clusters"] < n {
				b.Errorf("%d active clusters after the sweep, want %d", mem["cluster_manager.active_clusters"], n)
			}
			b.ReportMetric(sweep.Seconds()*1e3/float64(n), "first-request-ms")
			b.ReportMetric(float64(rss)/(1<<20), "all-used-rss-MiB")
			b.ReportMetric(float64(allocated(client, admin))/(1<<20), "all-used-alloc-MiB")
		}
		// Activation with the table in place: a new Ingress, Service and EndpointSlice processed by
		// the pipeline → first 200 through Envoy (cluster fetched on demand). It isolates Envoy's
		// share of test/bench's activation time from the apiserver's.
		src.Static = benchSource(b, all).Static
		var took []time.Duration
		for i := range activations {
			k := n + i
			ns, name := fmt.Sprintf("t%d", k%100), fmt.Sprintf("s%d", k)
			start := time.Now()
			gw.Process(
				source.Event{Cluster: "main", Kind: source.KindService, Namespace: ns, Name: name},
				source.Event{Cluster: "main", Kind: source.KindEndpointSlice, Namespace: ns, Name: name},
				source.Event{Cluster: "main", Kind: source.KindIngress, Namespace: ns, Name: name},
			)
			for getHost(client, httpPort, k) != 200 {
				if time.Since(start) > time.Minute {
					b.Fatalf("new host %d not served within a minute", k)
				}
				time.Sleep(time.Millisecond)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "activation-p50-ms")
		b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "activation-max-ms")
		_ = cmd.Process.Kill()
		b.StartTimer()
	}
}

// getHost sends one request to host k of benchObjects and returns the status (0 on error).
func getHost(c *http.Client, port, k int) int {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	req.Host = fmt.Sprintf("s%d.t%d.example.com", k, k%100)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sampledRouted checks that 20 hosts spread over the table, including the last, answer 200.
func sampledRouted(c *http.Client, port, n int) bool {
	for i := range 20 {
		if getHost(c, port, n-1-i*(n/20)) != 200 {
			return false
		}
	}
	return true
}

// adminStats reads counters and gauges by exact name from Envoy's /stats.
func adminStats(c *http.Client, admin string, names ...string) (map[string]int, error) {
	out := map[string]int{}
	for _, name := range names {
		resp, err := c.Get("http://" + admin + "/stats?filter=^" + strings.ReplaceAll(name, ".", `\.`) + "$")
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		_, v, ok := strings.Cut(strings.TrimSpace(string(body)), ": ")
		if !ok {
			return nil, fmt.Errorf("stat %s: %q", name, body)
		}
		out[name], err = strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", name, err)
		}
	}
	return out, nil
}

// allocated reads the bytes Envoy's allocator has handed out, live from /memory (the stat of the same
// name is refreshed only every stats flush).
func allocated(c *http.Client, admin string) int64 {
	resp, err := c.Get("http://" + admin + "/memory")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var m struct {
		Allocated string `json:"allocated"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(m.Allocated, 10, 64)
	return v
}

// processRSS reads VmRSS in bytes from /proc.
func processRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
