package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Phase is the component's lifecycle phase.
type Phase string

// Phases.
const (
	PhaseRunning  Phase = "running"  // announcing while fit
	PhaseDraining Phase = "draining" // announcing with GRACEFUL_SHUTDOWN, waiting DrainWait
	PhaseDrained  Phase = "drained"  // everything withdrawn; stays so until the process ends
)

// retryInterval is how soon failed speaker operations are retried: short next to a hold time, long
// enough not to spin on a persistent error (each retry logs).
const retryInterval = 2 * time.Second

// Component announces the VIPs while the node is fit. One goroutine (Run) owns the speaker; the other
// methods are safe to call from any goroutine at any time (before Run, their input is kept for it).
type Component struct {
	log      *slog.Logger
	speaker  Speaker
	node     Node
	readFile func(string) ([]byte, error)
	m        *metrics

	mu     sync.Mutex
	cfg    Config
	fit    bool
	reason string
	vips   []VIP
	wake   chan struct{}
	reqs   chan request
	names  sync.Map // netip.Addr -> peer name, for session events
	status atomic.Pointer[snapshot]
}

type request struct {
	cfg   *Config // reconfigure; nil: drain
	reply chan error
}

type snapshot struct {
	fit       bool
	reason    string
	phase     Phase
	announced []netip.Prefix
	peers     map[netip.Addr]PeerConfig
	lastErr   string
}

// New returns a component for a config (defaulted here, and validated), the local node, and a speaker.
// Metrics are registered on reg (nil: not registered). It starts nothing; the node starts unfit.
func New(cfg Config, node Node, speaker Speaker, log *slog.Logger, reg prometheus.Registerer) (*Component, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bgp config: %w", err)
	}
	for _, w := range cfg.Warnings() {
		log.Warn("bgp config warning", "warning", w)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Component{
		log: log, speaker: speaker, node: node, readFile: os.ReadFile, m: m, cfg: cfg,
		reason: "not yet reported", wake: make(chan struct{}, 1), reqs: make(chan request),
	}
	c.status.Store(&snapshot{phase: PhaseRunning, reason: c.reason})
	m.phase.WithLabelValues(string(PhaseRunning)).Set(1)
	return c, nil
}

// SetReadFile replaces os.ReadFile for password files (tests). Call before Run.
func (c *Component) SetReadFile(f func(string) ([]byte, error)) { c.readFile = f }

func (c *Component) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// SetFitness reports whether the node may announce (Envoy ready, config synced, not draining). It never
// blocks; Run withdraws at once when fit turns false (well within a second).
func (c *Component) SetFitness(fit bool, reason string) {
	c.mu.Lock()
	changed := c.fit != fit
	c.fit, c.reason = fit, reason
	c.mu.Unlock()
	if changed {
		c.log.Info("bgp fitness changed", "fit", fit, "reason", reason)
	}
	c.poke()
}

// SetVIPs replaces the addresses to announce. It never blocks.
func (c *Component) SetVIPs(vips []VIP) {
	c.mu.Lock()
	c.vips = slices.Clone(vips)
	c.mu.Unlock()
	c.poke()
}

// Reconfigure validates and applies a new config: peers are added, removed or updated by address, routes
// re-planned. A validation error leaves the running config alone. Speaker failures are partial: what
// worked stays applied, the rest is retried, and the error lists every failed operation. Blocks until
// Run applied it or ctx is done.
func (c *Component) Reconfigure(ctx context.Context, cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("bgp config: %w", err)
	}
	for _, w := range cfg.Warnings() {
		c.log.Warn("bgp config warning", "warning", w)
	}
	return c.request(ctx, request{cfg: &cfg, reply: make(chan error, 1)})
}

// Drain performs the RFC 8326 graceful shutdown: routes are re-announced with GRACEFUL_SHUTDOWN
// (65535:0, and local-pref 0 toward iBGP peers), DrainWait passes, then everything is withdrawn. It
// returns once withdrawn (nil) or when ctx is done. Sessions stay up; the node stays drained.
func (c *Component) Drain(ctx context.Context) error {
	return c.request(ctx, request{reply: make(chan error, 1)})
}

func (c *Component) request(ctx context.Context, r request) error {
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runState is owned by Run's goroutine.
type runState struct {
	cfg      Config
	phase    Phase
	applied  Desired
	drainC   <-chan time.Time
	drainers []chan error
	retryC   <-chan time.Time
	lastErr  error
	anyGR    bool
	started  time.Time        // Run's start: graceful-restart peers are held back from it (holdRestarting)
	everFit  bool             // fit at some reconcile since Run started
	holdC    <-chan time.Time // end of the earliest hold
	holding  bool             // some peer is held back now (logged on change)
}

// Run starts the speaker and reconciles it with the plan until ctx is done. On return, if the node was
// drained or no peer uses graceful restart, the sessions are closed (routers withdraw at once);
// otherwise they are left to die with the process, so routers keep our routes for the restart time.
func (c *Component) Run(ctx context.Context) error {
	c.mu.Lock()
	cfg := c.cfg
	c.mu.Unlock()
	g := Global{ASN: cfg.ASN, RouterID: netip.MustParseAddr(cfg.RouterID), ListenPort: *cfg.ListenPort}
	if err := c.speaker.Start(ctx, g, c.onPeer); err != nil {
		return fmt.Errorf("start bgp speaker: %w", err)
	}
	c.log.Info("bgp speaker started", "asn", g.ASN, "router_id", g.RouterID, "listen_port", g.ListenPort)
	st := &runState{cfg: cfg, phase: PhaseRunning, started: time.Now(), applied: Desired{
		Peers: map[netip.Addr]PeerConfig{}, Routes: map[netip.Prefix]Route{}, Export: map[netip.Addr][]netip.Prefix{},
	}}
	dirty := true
	for {
		if dirty {
			c.reconcile(ctx, st)
		}
		dirty = true
		select {
		case <-ctx.Done():
			return c.shutdown(st)
		case <-c.wake:
		case <-st.retryC:
			st.retryC = nil
		case <-st.holdC:
			st.holdC = nil
		case r := <-c.reqs:
			if r.cfg != nil {
				st.cfg = *r.cfg
				c.mu.Lock()
				c.cfg = *r.cfg
				c.mu.Unlock()
				r.reply <- c.reconcile(ctx, st)
				dirty = false
				continue
			}
			switch st.phase {
			case PhaseDrained:
				r.reply <- nil
			case PhaseDraining:
				st.drainers = append(st.drainers, r.reply)
			default:
				c.setPhase(st, PhaseDraining)
				st.drainers = append(st.drainers, r.reply)
				st.drainC = time.After(st.cfg.DrainWait.Duration)
				c.log.Info("bgp graceful shutdown: announcing with 65535:0", "wait", st.cfg.DrainWait.Duration)
			}
		case <-st.drainC:
			st.drainC = nil
			c.setPhase(st, PhaseDrained)
			err := c.reconcile(ctx, st)
			c.log.Info("bgp graceful shutdown: withdrawn", "error", err)
			for _, d := range st.drainers {
				d <- err
			}
			st.drainers = nil
		}
	}
}

func (c *Component) setPhase(st *runState, p Phase) {
	c.m.phase.WithLabelValues(string(st.phase)).Set(0)
	st.phase = p
	c.m.phase.WithLabelValues(string(p)).Set(1)
}

func (c *Component) shutdown(st *runState) error {
	for _, d := range st.drainers {
		d <- context.Canceled
	}
	if st.phase != PhaseDrained && st.anyGR {
		c.log.Info("bgp stopping without closing sessions: graceful restart keeps routes at the routers")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // StopBgp only queues NOTIFICATIONs
	defer cancel()
	if err := c.speaker.Stop(ctx); err != nil {
		return fmt.Errorf("stop bgp speaker: %w", err)
	}
	c.log.Info("bgp speaker stopped")
	return nil
}

// reconcile plans from the current inputs and applies the difference. It returns the plan and apply
// problems and schedules a retry when something failed.
func (c *Component) reconcile(ctx context.Context, st *runState) error {
	c.mu.Lock()
	fit, reason, vips := c.fit, c.reason, c.vips
	c.mu.Unlock()
	in := Inputs{
		Node: c.node, VIPs: vips, ReadFile: c.readFile,
		Announce: fit && st.phase != PhaseDrained,
		Draining: st.phase == PhaseDraining,
	}
	desired, planErr := Plan(st.cfg, in)
	st.everFit = st.everFit || in.Announce
	c.holdRestarting(st, &desired)
	applyErr := c.apply(ctx, st, desired)
	err := errors.Join(planErr, applyErr)
	if err != nil && (st.lastErr == nil || err.Error() != st.lastErr.Error()) {
		c.log.Error("bgp reconcile incomplete", "error", err)
	}
	st.lastErr = err
	if applyErr != nil && st.retryC == nil {
		st.retryC = time.After(retryInterval)
	}
	st.anyGR = false
	for _, p := range st.applied.Peers {
		st.anyGR = st.anyGR || p.GracefulRestart
	}
	c.m.fit.Set(b2f(fit))
	c.m.routes.Set(float64(len(st.applied.Routes)))
	snap := &snapshot{fit: fit, reason: reason, phase: st.phase, announced: sortedPrefixes(st.applied.Routes),
		peers: maps.Clone(st.applied.Peers)}
	if err != nil {
		snap.lastErr = err.Error()
	}
	c.status.Store(snap)
	return err
}

// holdRestarting keeps peers with graceful restart out of the speaker until the node is first fit, for
// at most their restart time after Run started. After a crash the routers still hold our routes as
// stale; a restarting speaker that connected while still unfit (edgegate before its first sync) would
// send End-of-RIB without routes and the routers would drop the stale routes of a node whose Envoy is
// still serving. Held back, the routers keep them until we are fit (fresh routes, then End-of-RIB) or
// until their restart timer expires, exactly what a node that stays unfit deserves. On a first start
// this only delays an idle session. Peers already added stay.
func (c *Component) holdRestarting(st *runState, d *Desired) {
	if st.everFit {
		if st.holding {
			st.holding = false
			c.log.Info("bgp node fit: adding graceful-restart peers")
		}
		return
	}
	now := time.Now()
	var next time.Time
	for addr, p := range d.Peers {
		if _, added := st.applied.Peers[addr]; added || !p.GracefulRestart {
			continue
		}
		until := st.started.Add(p.RestartTime)
		if !now.Before(until) {
			continue
		}
		delete(d.Peers, addr)
		delete(d.Export, addr)
		if next.IsZero() || until.Before(next) {
			next = until
		}
	}
	if held := !next.IsZero(); held != st.holding {
		st.holding = held
		if held {
			c.log.Info("bgp holding graceful-restart peers until the node is fit, so routers keep our stale routes", "until", next)
		} else {
			c.log.Info("bgp restart time over while unfit: adding graceful-restart peers")
		}
	}
	if !next.IsZero() && st.holdC == nil {
		st.holdC = time.After(next.Sub(now))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// apply makes the speaker match desired as far as it can, recording in st.applied what it did.
// Order: peers, then withdrawals of prefixes a peer lost, then export, then route withdrawals before
// announcements (an unfit node withdraws first, whatever else fails).
func (c *Component) apply(ctx context.Context, st *runState, desired Desired) error {
	var errs []error
	a := &st.applied
	pd := DiffPeers(a.Peers, desired.Peers)
	for _, addr := range pd.Remove {
		if err := c.speaker.DeletePeer(ctx, addr); err != nil {
			errs = append(errs, err)
			c.m.applyErrors.WithLabelValues("delete_peer").Inc()
			continue
		}
		c.log.Info("bgp peer removed", "peer", a.Peers[addr].Name, "address", addr)
		delete(a.Peers, addr)
		c.names.Delete(addr)
		c.m.sessionUp.DeleteLabelValues(addr.String())
	}
	for _, p := range pd.Add {
		c.names.Store(p.Address, p.Name)
		if err := c.speaker.AddPeer(ctx, p); err != nil {
			errs = append(errs, err)
			c.m.applyErrors.WithLabelValues("add_peer").Inc()
			continue
		}
		c.log.Info("bgp peer added", "peer", p.Name, "address", p.Address, "peer_asn", p.PeerASN)
		a.Peers[p.Address] = p
	}
	for _, p := range pd.Update {
		c.names.Store(p.Address, p.Name)
		if err := c.speaker.UpdatePeer(ctx, p); err != nil {
			errs = append(errs, err)
			c.m.applyErrors.WithLabelValues("update_peer").Inc()
			continue
		}
		c.log.Info("bgp peer updated", "peer", p.Name, "address", p.Address)
		a.Peers[p.Address] = p
	}

	export := map[netip.Addr][]netip.Prefix{}
	for addr, pfxs := range desired.Export {
		if _, ok := a.Peers[addr]; ok {
			export[addr] = pfxs
		}
	}
	if !maps.EqualFunc(a.Export, export, slices.Equal) {
		// A prefix a peer no longer receives must be withdrawn and re-announced (see Speaker.SetExport).
		for _, p := range lostPrefixes(a.Peers, a.Export, export) {
			if _, ok := a.Routes[p]; !ok {
				continue
			}
			if err := c.speaker.Withdraw(ctx, p); err != nil {
				errs = append(errs, err)
				c.m.applyErrors.WithLabelValues("withdraw").Inc()
				continue
			}
			c.m.withdrawals.WithLabelValues(family(p)).Inc()
			delete(a.Routes, p)
		}
		if err := c.speaker.SetExport(ctx, export); err != nil {
			errs = append(errs, err)
			c.m.applyErrors.WithLabelValues("set_export").Inc()
		} else {
			a.Export = export
		}
	}

	rd := DiffRoutes(a.Routes, desired.Routes)
	for _, p := range rd.Withdraw {
		if err := c.speaker.Withdraw(ctx, p); err != nil {
			errs = append(errs, err)
			c.m.applyErrors.WithLabelValues("withdraw").Inc()
			continue
		}
		c.log.Info("bgp route withdrawn", "prefix", p)
		c.m.withdrawals.WithLabelValues(family(p)).Inc()
		delete(a.Routes, p)
	}
	for _, r := range rd.Announce {
		if err := c.speaker.Announce(ctx, r); err != nil {
			errs = append(errs, err)
			c.m.applyErrors.WithLabelValues("announce").Inc()
			continue
		}
		c.log.Info("bgp route announced", "prefix", r.Prefix, "graceful_shutdown", slices.Contains(r.Communities, GracefulShutdownCommunity))
		c.m.announcements.WithLabelValues(family(r.Prefix)).Inc()
		a.Routes[r.Prefix] = r
	}
	return errors.Join(errs...)
}

// lostPrefixes lists prefixes some still-configured peer received before and does not receive now
// (a removed peer's session is gone with its routes).
func lostPrefixes(peers map[netip.Addr]PeerConfig, before, after map[netip.Addr][]netip.Prefix) []netip.Prefix {
	lost := map[netip.Prefix]bool{}
	for peer, pfxs := range before {
		if _, ok := peers[peer]; !ok {
			continue
		}
		for _, p := range pfxs {
			if !slices.Contains(after[peer], p) {
				lost[p] = true
			}
		}
	}
	return sortedPrefixes(lost)
}

func (c *Component) onPeer(ev PeerEvent) {
	name, _ := c.names.Load(ev.Address)
	c.m.stateChanges.WithLabelValues(ev.Address.String(), string(ev.State)).Inc()
	c.m.sessionUp.WithLabelValues(ev.Address.String()).Set(b2f(ev.State == StateEstablished))
	c.log.Info("bgp session state", "peer", name, "address", ev.Address, "state", ev.State)
}
