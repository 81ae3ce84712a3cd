package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

// Status is what GET /status returns and `edgegate status` prints.
type Status struct {
	Node       string                   `json:"node"`
	Ready      bool                     `json:"ready"`
	Reason     string                   `json:"reason"`
	EnvoyReady bool                     `json:"envoyReady"`
	Clusters   map[string]source.Health `json:"clusters"`
	Gateway    gateway.Snapshot         `json:"gateway"`
	XDS        xdsserver.Stats          `json:"xds"`
	Edge       EdgeStatus               `json:"edge"`
}

// Status returns the daemon's current status.
func (d *Daemon) Status() Status {
	ready, reason := d.Ready()
	s := Status{Node: d.cfg.Node.Name, Ready: ready, Reason: reason, EnvoyReady: d.envoyReady.Load(),
		Clusters: map[string]source.Health{}, Gateway: d.gateway.Snapshot(), XDS: d.xds.Stats()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.Edge = d.edge.status(ctx)
	for _, c := range d.clusters {
		s.Clusters[c.Name()] = c.Health()
	}
	return s
}

func (d *Daemon) serveAdmin(ctx context.Context, lis net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, reason := d.Ready()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(reason + "\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d.Status())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{}))
	// Profiles for diagnosing CPU and memory at scale; the admin API is loopback-only by default.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// registerMetrics exposes the daemon's state as Prometheus metrics, read at scrape time.
func (d *Daemon) registerMetrics() {
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.registry.MustRegister(&daemonCollector{d: d})
}

var (
	descReady      = prometheus.NewDesc("edgegate_ready", "1 when the node is fit to take traffic.", nil, nil)
	descSynced     = prometheus.NewDesc("edgegate_cluster_synced", "1 when the remote cluster's caches have synced.", []string{"cluster"}, nil)
	descReachable  = prometheus.NewDesc("edgegate_cluster_reachable", "1 when the last probe of the remote apiserver succeeded.", []string{"cluster"}, nil)
	descHosts      = prometheus.NewDesc("edgegate_hosts", "Virtual hosts served.", nil, nil)
	descRejections = prometheus.NewDesc("edgegate_rejected_objects", "Objects rejected by translation.", nil, nil)
	descPushed     = prometheus.NewDesc("edgegate_xds_resources_pushed_total", "Resources added or changed over xDS.", []string{"type"}, nil)
	descRemoved    = prometheus.NewDesc("edgegate_xds_resources_removed_total", "Resources removed over xDS.", []string{"type"}, nil)
	descSent       = prometheus.NewDesc("edgegate_xds_sent_bytes_total", "Bytes of delta xDS responses sent.", []string{"type"}, nil)
	descNacks      = prometheus.NewDesc("edgegate_xds_rejected_total", "Updates Envoy rejected (NACK).", []string{"type"}, nil)
	descFlush      = prometheus.NewDesc("edgegate_last_flush_seconds", "Duration of the last translation and xDS update.", nil, nil)
)

type daemonCollector struct{ d *Daemon }

func (c *daemonCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReady, descSynced, descReachable, descHosts, descRejections, descPushed, descRemoved, descSent, descNacks, descFlush} {
		ch <- d
	}
}

func (c *daemonCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.Status()
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, b2f(s.Ready))
	for name, h := range s.Clusters {
		ch <- prometheus.MustNewConstMetric(descSynced, prometheus.GaugeValue, b2f(h.Synced), name)
		ch <- prometheus.MustNewConstMetric(descReachable, prometheus.GaugeValue, b2f(h.Reachable), name)
	}
	ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, float64(s.Gateway.Hosts))
	ch <- prometheus.MustNewConstMetric(descRejections, prometheus.GaugeValue, float64(len(s.Gateway.Rejections)))
	ch <- prometheus.MustNewConstMetric(descFlush, prometheus.GaugeValue, s.Gateway.LastFlushDuration.Seconds())
	for t, n := range s.XDS.Pushed {
		ch <- prometheus.MustNewConstMetric(descPushed, prometheus.CounterValue, float64(n), t)
	}
	for t, n := range s.XDS.Removed {
		ch <- prometheus.MustNewConstMetric(descRemoved, prometheus.CounterValue, float64(n), t)
	}
	for t, n := range s.XDS.SentBytes {
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(n), t)
	}
	for t, n := range s.XDS.Rejected {
		ch <- prometheus.MustNewConstMetric(descNacks, prometheus.CounterValue, float64(n), t)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
