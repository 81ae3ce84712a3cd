// Package appliance assembles the edgegate daemon: configuration, the gateway pipeline, the xDS
// server, the local Envoy, the admin API and the command line. Start and stop order live here.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/appliance/envoy"
	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/status"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/translate"
	"github.com/edgegate/edgegate/gateway/xdsbuild"
	"github.com/edgegate/edgegate/gateway/xdsserver"
	"github.com/edgegate/edgegate/systemd"
)

// eventBuffer absorbs bursts of informer events while the pipeline flushes; beyond it informers
// wait (backpressure), which is harmless because they only mark objects dirty.
const eventBuffer = 4096

// Daemon is one running edgegate. Construct with NewDaemon, then Run.
type Daemon struct {
	cfg      *config.Config
	log      *slog.Logger
	registry *prometheus.Registry

	clusters []*source.Cluster
	events   chan source.Event
	xds      *xdsserver.Server
	status   *status.Writer
	gateway  *gateway.Gateway
	admin    *envoy.Admin
	envoy    *envoy.Process

	notify     *systemd.Notifier
	policy     *tenancy.Policy
	edge       *edge
	envoyReady atomic.Bool
	stopping   atomic.Bool
	stopXDS    context.CancelFunc
}

// NewDaemon builds every component from the configuration; it starts nothing and fails on the
// first component that cannot be built (e.g. an unreadable kubeconfig).
func NewDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: log, registry: prometheus.NewRegistry(), events: make(chan source.Event, eventBuffer),
		notify: systemd.New(log.With("component", "systemd"))}
	// The xDS server outlives the stop signal: Envoy drains after it, and must keep (and be able
	// to re-open) its stream meanwhile. Run ends it after Envoy has stopped.
	xdsCtx, stopXDS := context.WithCancel(context.Background())
	d.stopXDS = stopXDS
	d.xds = xdsserver.New(xdsCtx, log.With("component", "xds"))
	targets := map[string]status.Target{}
	var sources []gateway.Source
	for _, cc := range cfg.Clusters {
		client, err := kubeClient(cc)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cc.Name, err)
		}
		c, err := source.New(cc.Name, translate.EndpointMode(cc.EndpointMode), cc.TenantLabel != "", client, log.With("component", "source", "cluster", cc.Name), d.events)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cc.Name, err)
		}
		d.clusters = append(d.clusters, c)
		sources = append(sources, c)
		targets[cc.Name] = status.Target{Client: client, Ingress: c.Ingress, Service: c.Service}
	}
	d.status = status.New(log.With("component", "status"), targets)
	gc := GatewayConfig(cfg)
	d.policy = gc.Tenancy
	d.gateway = gateway.New(gc, log.With("component", "gateway"), sources, d.events, d.xds, d.status)
	d.admin = envoy.NewAdmin(cfg.Envoy.AdminAddress)
	if cfg.Envoy.Mode == config.EnvoySupervise {
		d.envoy = &envoy.Process{
			Binary: cfg.Envoy.Binary, Bootstrap: cfg.Envoy.BootstrapPath, Admin: d.admin,
			Concurrency: cfg.Envoy.Concurrency, DrainTime: cfg.Envoy.DrainTime.Duration, ExtraArgs: cfg.Envoy.ExtraArgs,
			Log: log.With("component", "envoy"),
		}
	}
	edge, err := newEdge(d)
	if err != nil {
		return nil, err
	}
	d.edge = edge
	d.registerMetrics()
	return d, nil
}

// statusAddresses are the configured ones, or else the VIPs: what clients reach edgegate on.
func statusAddresses(cfg *config.Config) []string {
	if len(cfg.Ingress.StatusAddresses) > 0 || cfg.VIP == nil {
		return cfg.Ingress.StatusAddresses
	}
	_, addrs, err := poolVIPs(cfg.VIP.IPAddressPools, cfg.VIP.Interfaces)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// BootstrapOptions maps the appliance configuration onto Envoy's bootstrap.
func BootstrapOptions(cfg *config.Config) envoy.BootstrapOptions {
	return envoy.BootstrapOptions{
		NodeID: cfg.Node.Name, XDSAddress: cfg.XDS.Address, AdminAddress: cfg.Envoy.AdminAddress,
		MaxHeapBytes: uint64(cfg.Limits.Node.MaxHeapBytes), MaxDownstreamConnections: uint64(cfg.Limits.Node.MaxDownstreamConnections),
	}
}

// GatewayConfig maps the appliance configuration onto the pipeline's.
func GatewayConfig(cfg *config.Config) gateway.Config {
	gc := gateway.Config{
		Controller:          cfg.Ingress.Controller,
		StatusAddresses:     statusAddresses(cfg),
		Holdoff:             cfg.Ingress.Holdoff.Duration,
		MaxDelay:            cfg.Ingress.MaxDelay.Duration,
		StartupGrace:        cfg.Ingress.StartupGrace.Duration,
		ConsistencyInterval: consistencyInterval,
		Tenancy:             TenancyPolicy(cfg),
	}
	for _, l := range cfg.Listeners {
		xl := xdsbuild.Listener{Name: l.Name, Address: l.Address, Port: uint32(l.Port), Protocol: xdsbuild.Protocol(l.Protocol)}
		if l.TLS != nil {
			xl.MinTLSVersion = l.TLS.MinVersion
		}
		gc.Listeners = append(gc.Listeners, xl)
	}
	return gc
}

// TenancyPolicy maps the appliance configuration onto the tenancy rules.
func TenancyPolicy(cfg *config.Config) *tenancy.Policy {
	t := cfg.Tenancy
	p := &tenancy.Policy{
		TenantLabel:        map[string]string{},
		AllowedSuffixes:    t.Hostnames.AllowedSuffixes,
		Reserved:           t.Hostnames.Reserved,
		CatchAllNamespaces: t.CatchAllNamespaces,
		ExternalNames:      t.ExternalNames,
		DefaultQuota:       quota(t.Quota),
		Tenants:            map[string]tenancy.Tenant{},
		HostLimits:         hostLimits(cfg.Limits.Host),
		BackendLimits:      backendLimits(cfg.Limits.Backend),
	}
	for _, c := range cfg.Clusters {
		if c.TenantLabel != "" {
			p.TenantLabel[c.Name] = c.TenantLabel
		}
	}
	for name, tp := range t.Tenants {
		tt := tenancy.Tenant{AllowedSuffixes: tp.AllowedSuffixes, Pinned: tp.PinnedHostnames}
		if tp.Quota != nil {
			q := quota(*tp.Quota)
			tt.Quota = &q
		}
		if tp.HostLimits != nil {
			h := hostLimits(*tp.HostLimits)
			tt.HostLimits = &h
		}
		if tp.BackendLimits != nil {
			b := backendLimits(*tp.BackendLimits)
			tt.BackendLimits = &b
		}
		p.Tenants[name] = tt
	}
	p.DeniedRanges = append(p.DeniedRanges, tenancy.AlwaysDenied...)
	for _, r := range t.DeniedEndpointRanges {
		if pfx, err := netip.ParsePrefix(r); err == nil {
			p.DeniedRanges = append(p.DeniedRanges, pfx)
		}
	}
	// This node's own addresses are never backends; the address watcher keeps them current.
	p.NodeAddresses = tenancy.NewAddressSet(nodeAddresses(cfg)...)
	return p
}

// nodeAddresses lists this node's own addresses now: listener and status addresses, and every
// address on its interfaces.
func nodeAddresses(cfg *config.Config) []netip.Addr {
	var out []netip.Addr
	for _, l := range cfg.Listeners {
		if a, err := netip.ParseAddr(l.Address); err == nil && !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	for _, s := range cfg.Ingress.StatusAddresses {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil {
				out = append(out, pfx.Addr())
			}
		}
	}
	return out
}

func hostLimits(h config.HostLimits) model.HostLimits {
	return model.HostLimits{
		RequestsPerSecond: uint32(h.RequestsPerSecond), Burst: uint32(h.Burst), MaxRequestBytes: uint32(h.MaxRequestBodyBytes),
		RequestTimeoutMillis: uint32(h.RequestTimeout.Milliseconds()), IdleTimeoutMillis: uint32(h.IdleTimeout.Milliseconds()),
		MaxConnections: uint32(h.MaxConnections),
	}
}

func backendLimits(b config.BackendLimits) model.BackendLimits {
	l := model.BackendLimits{
		MaxConnections: uint32(b.MaxConnections), MaxPendingRequests: uint32(b.MaxPendingRequests),
		MaxRequests: uint32(b.MaxRequests), MaxRetries: uint32(b.MaxRetries),
		IdleTimeoutMillis: uint32(b.IdleTimeout.Milliseconds()),
	}
	if od := b.OutlierDetection; od.Consecutive5xx > 0 {
		l.Consecutive5xx = uint32(od.Consecutive5xx)
		l.OutlierIntervalMillis = uint32(od.Interval.Milliseconds())
		l.EjectionMillis = uint32(od.BaseEjectionTime.Milliseconds())
		l.MaxEjectionPercent = uint32(od.MaxEjectionPercent)
	}
	return l
}

// quota maps configured quotas (-1 unlimited) onto tenancy quotas (0 unlimited).
func quota(q config.Quota) tenancy.Quota {
	lim := func(v int) int {
		if v < 0 {
			return 0
		}
		return v
	}
	return tenancy.Quota{MaxRoutes: lim(q.MaxRoutes), MaxHosts: lim(q.MaxHosts), MaxCertificates: lim(q.MaxCertificates)}
}

// consistencyInterval: how often everything is re-translated to repair anything a lost event left
// stale. Rare, because events are reliable and a full pass costs O(objects).
const consistencyInterval = 10 * time.Minute

func kubeClient(cc config.Cluster) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cc.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", cc.Kubeconfig, err)
	}
	rc.QPS, rc.Burst = cc.QPS, cc.Burst
	rc.DisableCompression = !cc.Compression
	rc.UserAgent = "edgegate"
	// Protobuf is several times cheaper than JSON to decode for lists of 100k objects.
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return kubernetes.NewForConfig(rc)
}

// Run starts everything in order and blocks until ctx is done, then stops in reverse order.
//
// Start: bootstrap file → Envoy (supervise mode) → cluster watches → pipeline → first complete
// configuration → xDS served (never before: a restarted edgegate must not hand Envoy an empty
// configuration) → ready. Stop: not ready → Envoy drained (supervise mode) → exit.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.cfg
	d.setMemoryLimit()
	if err := envoy.WriteBootstrap(cfg.Envoy.BootstrapPath, BootstrapOptions(cfg)); err != nil {
		return err
	}
	xdsLis, err := listen(cfg.XDS.Address)
	if err != nil {
		return fmt.Errorf("xds: %w", err)
	}
	defer xdsLis.Close()
	adminLis, err := net.Listen("tcp", cfg.Admin.Address)
	if err != nil {
		return fmt.Errorf("admin api: %w", err)
	}

	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	g, gctx := errgroup.WithContext(workCtx)
	for _, c := range d.clusters {
		g.Go(func() error { return c.Run(gctx) })
	}
	g.Go(func() error { return d.status.Run(gctx) })
	g.Go(func() error { return d.gateway.Run(gctx) })
	g.Go(func() error { return d.serveAdmin(gctx, adminLis) })
	g.Go(func() error {
		// Serve xDS only once the first complete configuration is in the caches.
		if err := waitFor(gctx, 20*time.Millisecond, d.gateway.Published); err != nil {
			return nil
		}
		d.log.Info("first configuration ready; serving xds", "address", cfg.XDS.Address)
		return d.xds.Serve(gctx, xdsLis)
	})
	envoyCtx, stopEnvoy := context.WithCancel(context.Background())
	defer stopEnvoy()
	envoyDone := make(chan error, 1)
	if d.envoy != nil {
		go func() { envoyDone <- d.envoy.Run(envoyCtx) }()
	} else {
		close(envoyDone)
	}
	g.Go(func() error { d.watchEnvoy(gctx); return nil })
	g.Go(func() error { d.watchNodeAddresses(gctx); return nil })
	edgeCtx, stopEdge := context.WithCancel(context.Background())
	defer stopEdge()
	edgeDone := make(chan error, 1)
	go func() { edgeDone <- d.edge.run(edgeCtx) }()
	g.Go(func() error { return d.notify.RunWatchdog(gctx, d.healthy) })
	g.Go(func() error { d.announceReady(gctx); return nil })

	select {
	case <-ctx.Done():
		d.log.Info("stopping")
	case <-gctx.Done():
	}
	d.stopping.Store(true)
	_ = d.notify.Stopping()
	_ = d.notify.Status("stopping: draining")
	// Traffic moves away first (BGP withdraw, VIP handover) while Envoy still serves it all.
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), edgeDrainTimeout)
	d.edge.drain(drainCtx)
	cancelDrain()
	stopEdge()
	if err := <-edgeDone; err != nil {
		d.log.Warn("vip/bgp stopped with an error", "error", err)
	}
	// Envoy drains while the xDS server still answers, so it keeps its configuration to the end.
	stopEnvoy()
	<-envoyDone
	// Only now the BGP VIPs leave the loopback: packets still routed here during the drain are served.
	d.edge.release()
	d.stopXDS()
	stopWork()
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Ready reports whether this node is fit to take traffic: configuration published, Envoy ready, and
// not stopping. It is what /readyz answers and what vip/bgp will publish as fitness.
func (d *Daemon) Ready() (bool, string) {
	switch {
	case d.stopping.Load():
		return false, "stopping"
	case !d.gateway.Published():
		return false, "waiting for the first configuration (cluster sync)"
	case !d.envoyReady.Load():
		return false, "envoy not ready"
	}
	return true, "ready"
}

// edgeDrainTimeout bounds the BGP graceful shutdown (drainWait, 5 s by default) plus the VIP
// handover (drain.timeout, 3 s by default), inside systemd's 60 s stop timeout.
const edgeDrainTimeout = 20 * time.Second

// watchdogPing bounds how long the gateway loop may take to answer the watchdog: a flush of a
// large change can hold it for a while, far less than this.
const watchdogPing = 10 * time.Second

// healthy is the systemd watchdog's check: the owner loops answer. Readiness (Envoy, sync) is not
// part of it: restarting edgegate fixes neither.
func (d *Daemon) healthy() error {
	ctx, cancel := context.WithTimeout(context.Background(), watchdogPing)
	defer cancel()
	return d.gateway.Ping(ctx)
}

// announceReady tells systemd READY=1 once the node is first fit, and keeps STATUS= current.
func (d *Daemon) announceReady(ctx context.Context) {
	t := time.NewTicker(envoyPoll)
	defer t.Stop()
	sentReady, lastReason := false, ""
	for {
		ready, reason := d.Ready()
		if reason != lastReason {
			_ = d.notify.Status(reason)
			lastReason = reason
		}
		if ready && !sentReady {
			_ = d.notify.Ready()
			sentReady = true
			d.log.Info("ready")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// envoyPoll: how often Envoy's readiness is checked; fast enough that fitness changes are
// published well within the 1 s failover budget.
const envoyPoll = 200 * time.Millisecond

func (d *Daemon) watchEnvoy(ctx context.Context) {
	t := time.NewTicker(envoyPoll)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := d.admin.Ready(cctx)
		cancel()
		if was := d.envoyReady.Swap(err == nil); was != (err == nil) {
			d.log.Info("envoy readiness changed", "ready", err == nil, "detail", errString(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func waitFor(ctx context.Context, every time.Duration, cond func() bool) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// listen opens host:port or unix:///path (removing a stale socket file first).
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		_ = os.Remove(path)
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

// setMemoryLimit sets the Go runtime's soft memory limit: memoryLimit from the configuration, else
// 90% of the cgroup's memory limit (automemlimit reads cgroup v1 and v2), else none; a GOMEMLIMIT
// environment variable wins over both.
func (d *Daemon) setMemoryLimit() {
	configured, _ := d.cfg.MemoryLimitBytes() // validated at load
	provider, ratio := memlimit.FromCgroup, 0.9
	if configured > 0 {
		provider, ratio = memlimit.Limit(uint64(configured)), 1
	}
	limit, err := memlimit.SetGoMemLimitWithOpts(memlimit.WithProvider(provider), memlimit.WithRatio(ratio))
	switch {
	case err != nil:
		d.log.Warn("memory limit not set", "error", err)
	case configured > 0:
		d.log.Info("memory limit set from memoryLimit", "bytes", limit)
	case limit > 0:
		d.log.Info("memory limit set to 90% of the cgroup's", "bytes", limit)
	}
}
