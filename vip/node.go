// Package vip is edgegate's L2 virtual-IP component: the edge nodes form a gossip cluster (package membership),
// every node ranks the fit members for each VIP the same way (package assign, MetalLB's ordering), and the elected
// owner holds the address and announces it (package announce). There is no leader and no lease: ownership is a
// pure function of the membership view.
//
// The appliance builds a Node from Config (the `vip:` key of its YAML) and the node's identity, runs it with Run,
// reports local health with SetFitness, hands VIPs over with Drain before stopping, and reads Status.
package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/vip/assign"
	"github.com/edgegate/edgegate/vip/membership"
	"github.com/edgegate/edgegate/vip/pool"
	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// retryAfter is how soon a failed address addition is retried: netlink failures are transient (interface flapping)
// and the VIP is unanswered until it succeeds.
const retryAfter = time.Second

// ErrNotRunning is returned by Drain before Run was called. (After Run returned, Drain waits for its ctx.)
var ErrNotRunning = errors.New("vip component not running")

// Identity is this node as the appliance knows it.
type Identity struct {
	// Name must be unique in the cluster; it is the memberlist node name and the ranking key.
	Name string
	// Labels are matched by the L2Advertisements' nodeSelectors and preferredNodeSelectors.
	Labels map[string]string
	// Weight is added to this node's score for every VIP (higher wins).
	Weight int64
}

// Options carries what the appliance injects.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the component's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Net replaces the host network (tests). Nil: netlink, raw ARP/NDP sockets and /proc sysctls.
	Net Net
	// Transport replaces memberlist's UDP/TCP transport (memberlist.MockNetwork in tests).
	Transport memberlist.NodeAwareTransport
}

// Node is the VIP component of one edge node. Its methods are safe from any goroutine; Run is called once.
type Node struct {
	cfg  Config
	id   Identity
	log  *slog.Logger
	net  Net
	met  *metrics
	ms   *membership.Membership
	vips []pool.VIP
	ads  map[string]int64
	all  map[netip.Addr]bool

	fitCh   chan fitness
	drainCh chan chan struct{}
	status  atomic.Pointer[Status]
	running atomic.Bool
}

type fitness struct {
	fit    bool
	reason string
}

// New validates cfg (defaulted here) and prepares the component. It starts nothing. The node starts unfit
// ("starting") until SetFitness(true, ...).
func New(cfg Config, id Identity, opts Options) (*Node, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	set, err := pool.Expand(cfg.IPAddressPools, cfg.L2Advertisements, cfg.Interfaces, "vip")
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Net == nil {
		opts.Net = hostNet{}
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register vip metrics: %w", err)
	}
	n := &Node{
		cfg: cfg, id: id, log: opts.Logger, net: opts.Net, met: met, vips: set.VIPs,
		ads:     pool.Eligibility(cfg.L2Advertisements, id.Labels),
		all:     map[netip.Addr]bool{},
		fitCh:   make(chan fitness, 1),
		drainCh: make(chan chan struct{}),
	}
	for _, v := range set.VIPs {
		n.all[v.Addr] = true
	}
	n.ms, err = membership.New(cfg.Memberlist, id.Name, n.meta(fitness{reason: "starting"}), membership.Options{
		Logger: opts.Logger.With("component", "membership"), Transport: opts.Transport,
		Quiescence: cfg.Coalesce.Quiescence.Duration, Quantum: cfg.Coalesce.Quantum.Duration,
	})
	if err != nil {
		return nil, err
	}
	n.status.Store(&Status{Self: id.Name, Reason: "starting"})
	return n, nil
}

func (n *Node) meta(f fitness) membership.Meta {
	return membership.Meta{Fit: f.fit, Reason: f.reason, Weight: n.id.Weight, Ads: n.ads}
}

// VIPs returns every configured VIP address, sorted.
func (n *Node) VIPs() []netip.Addr {
	out := make([]netip.Addr, len(n.vips))
	for i, v := range n.vips {
		out[i] = v.Addr
	}
	return out
}

// SetFitness publishes whether this node may take traffic (Envoy ready, config synced, not draining) and why not.
// It never blocks; the latest value wins. A node that becomes unfit while holding VIPs hands them over as in Drain
// (keeps each until the new owner announces it, bounded by drain.timeout). After Drain, fitness stays false.
func (n *Node) SetFitness(fit bool, reason string) {
	if fit {
		reason = ""
	}
	for {
		select {
		case n.fitCh <- fitness{fit, reason}:
			return
		default:
		}
		select { // replace the unread older value
		case <-n.fitCh:
		default:
		}
	}
}

// Drain marks the node unfit for good ("draining"), waits until every VIP it held was announced by its new owner
// (or drain.timeout passed for it), and returns once all are released. ctx bounds the wait; Run keeps running (the
// node stays a member, unfit) until its own context ends.
func (n *Node) Drain(ctx context.Context) error {
	if !n.running.Load() {
		return ErrNotRunning
	}
	done := make(chan struct{})
	select {
	case n.drainCh <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status returns the latest snapshot.
func (n *Node) Status() Status { return *n.status.Load() }

// Run joins the cluster and keeps this node's VIPs in line with the view until ctx is done; then it removes every
// VIP address it holds (never leaving one behind) and leaves the cluster. It fails early on host problems
// (missing interface, ARP sysctls in verify mode, memberlist cannot bind).
func (n *Node) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("vip: Run called twice")
	}
	if err := n.hostChecks(); err != nil {
		return err
	}
	l := &loop{n: n, held: map[netip.Addr]*held{}, fit: fitness{reason: "starting"}, seen: make(chan netip.Addr, 64)}
	l.adopt()

	msCtx, msCancel := context.WithCancel(context.WithoutCancel(ctx))
	msDone := make(chan struct{})
	var msErr error
	go func() { msErr = n.ms.Run(msCtx); close(msDone) }()
	err := l.run(ctx, msDone)
	// Release before leaving: once peers see the leave they take over, and two holders must not overlap.
	l.releaseAll()
	msCancel()
	<-msDone
	if msErr != nil {
		return errors.Join(err, fmt.Errorf("membership: %w", msErr))
	}
	return err
}

func (n *Node) hostChecks() error {
	var errs []error
	v4 := slices.ContainsFunc(n.vips, func(v pool.VIP) bool { return v.Addr.Is4() })
	for _, ifn := range n.cfg.Interfaces {
		if _, err := n.net.HeldAddrs(ifn, nil); err != nil {
			errs = append(errs, fmt.Errorf("vip.interfaces: %w", err))
			continue
		}
		if v4 && n.cfg.ARPSysctls != SysctlIgnore {
			if err := n.net.EnsureARPSysctls(ifn, n.cfg.ARPSysctls == SysctlSet); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// held is one VIP whose address this node holds.
type held struct {
	ifaces []string
	cancel context.CancelFunc // the running burst
	// handoff: unfit, waiting for the new owner's announcement until deadline.
	handoff      bool
	handoffStart time.Time
	deadline     time.Time
	releaseAt    time.Time // zero until the new owner was seen
}

// loop is the single goroutine owning the ownership table.
type loop struct {
	n        *Node
	held     map[netip.Addr]*held
	fit      fitness
	draining bool
	waiters  []chan struct{}
	ready    bool
	members  map[string]bool
	owners   map[netip.Addr]string
	view     []membership.Member
	retryAt  time.Time

	seen        chan netip.Addr
	watchCancel context.CancelFunc
}

func (l *loop) run(ctx context.Context, msDone <-chan struct{}) error {
	n := l.n
	var periodic <-chan time.Time
	if d := n.cfg.Announce.Interval.Duration; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		periodic = t.C
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	ready := n.ms.Ready()
	defer l.stopWatch()
	for {
		l.publishStatus()
		l.resetTimer(timer)
		select {
		case <-ctx.Done():
			l.answerWaiters()
			return nil
		case <-msDone:
			return errors.New("membership stopped") // Run adds its error
		case <-ready:
			ready = nil
			l.ready = true
			l.reconcile(time.Now())
		case first := <-n.ms.Changes():
			l.reconcile(first)
		case f := <-n.fitCh:
			if l.draining {
				continue
			}
			l.setFitness(f)
		case w := <-n.drainCh:
			l.draining = true
			l.waiters = append(l.waiters, w)
			l.setFitness(fitness{reason: "draining"})
			if !l.ready {
				l.releaseAll() // nothing was handed out yet: adopted addresses go at once
			}
		case a := <-l.seen:
			if h := l.held[a]; h != nil && h.handoff && h.releaseAt.IsZero() {
				h.releaseAt = time.Now().Add(n.cfg.Drain.Linger.Duration)
				n.met.handoff.WithLabelValues("announced").Observe(time.Since(h.handoffStart).Seconds())
				n.log.Info("new owner announced vip", "vip", a, "after", time.Since(h.handoffStart))
			}
		case b := <-n.ms.Messages():
			l.onMessage(b)
		case <-timer.C:
			l.expire(time.Now())
		case <-periodic:
			for a, h := range l.held {
				if !h.handoff {
					l.announceOnce(a, h)
				}
			}
		}
		l.answerWaiters()
	}
}

// setFitness applies a local fitness change: hand-off watchers open before the unfit flag is gossiped, so the new
// owner's first announcement cannot be missed.
func (l *loop) setFitness(f fitness) {
	if f == l.fit {
		return
	}
	l.fit = f
	l.n.log.Info("fitness changed", "fit", f.fit, "reason", f.reason)
	l.reconcile(time.Now())
	if err := l.n.ms.SetMeta(l.n.meta(f)); err != nil {
		l.n.log.Error("publish fitness", "error", err)
	}
}

// reconcile re-ranks every VIP on the current view and acts on the differences.
func (l *loop) reconcile(first time.Time) {
	n := l.n
	if !l.ready {
		return // before the first join the view is only ourselves: decide nothing
	}
	view := n.ms.Members()
	for i := range view {
		if view[i].Name == n.id.Name {
			view[i].Meta = n.meta(l.fit) // our own fitness as of now, not as last gossiped
		}
	}
	l.view = view
	members := make([]assign.Member, 0, len(view))
	names := map[string]bool{}
	fitCount := 0
	for _, m := range view {
		names[m.Name] = true
		if m.Meta.Fit {
			fitCount++
		}
		members = append(members, assign.Member{Name: m.Name, Fit: m.Meta.Fit, Weight: m.Meta.Weight, Ads: m.Meta.Ads})
	}
	n.met.members.WithLabelValues("fit").Set(float64(fitCount))
	n.met.members.WithLabelValues("unfit").Set(float64(len(view) - fitCount))
	// A member we did not see before (a join, a healed partition): re-announce what we hold, so a neighbour that
	// took a rival's answer during the partition is corrected.
	joined := false
	for name := range names {
		if l.members != nil && !l.members[name] {
			joined = true
		}
	}
	l.members = names

	vips := make([]assign.VIP, len(n.vips))
	for i, v := range n.vips {
		vips[i] = assign.VIP{Addr: v.Addr, Ads: v.Ads}
	}
	l.owners = assign.Owners(vips, members)
	mayOwn := l.ready && len(view) >= n.cfg.MinMembers
	for _, v := range n.vips {
		mine := mayOwn && l.owners[v.Addr] == n.id.Name
		h := l.held[v.Addr]
		switch {
		case mine && h == nil:
			l.acquire(v, first)
		case mine && h.handoff:
			// Fit again before the handoff finished: keep it and re-announce.
			h.handoff, h.releaseAt = false, time.Time{}
			l.burst(v.Addr, h, time.Time{})
		case mine && joined:
			l.burst(v.Addr, h, time.Time{})
		case !mine && h != nil && !h.handoff:
			if !l.fit.fit && l.ready {
				l.startHandoff(v.Addr, h)
			} else {
				l.release(v.Addr, "ownership moved")
				l.askReannounce(v.Addr)
			}
		}
	}
	l.updateWatch()
}

func (l *loop) acquire(v pool.VIP, first time.Time) {
	n := l.n
	h := &held{ifaces: v.Interfaces}
	var errs []error
	for _, ifn := range v.Interfaces {
		if err := n.net.AddAddr(ifn, v.Addr); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == len(v.Interfaces) {
		n.met.addressErrors.Inc()
		n.log.Error("add vip", "vip", v.Addr, "error", errors.Join(errs...))
		l.retryAt = time.Now().Add(retryAfter)
		return
	}
	l.held[v.Addr] = h
	n.met.changes.WithLabelValues("gained").Inc()
	n.met.held.Set(float64(len(l.held)))
	n.log.Info("vip gained", "vip", v.Addr, "interfaces", v.Interfaces, "reaction", time.Since(first))
	l.burst(v.Addr, h, first)
}

// burst (re)starts the announcement burst of a held VIP; first, when set, is the event time to measure takeover
// latency from.
func (l *loop) burst(a netip.Addr, h *held, first time.Time) {
	n := l.n
	if h.cancel != nil {
		h.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	ifaces := h.ifaces
	go func() {
		sent := false
		announce := func() error {
			var errs []error
			for _, ifn := range ifaces {
				errs = append(errs, n.net.Announce(ifn, a))
			}
			if !sent && !first.IsZero() {
				n.met.takeover.Observe(time.Since(first).Seconds())
				n.log.Info("vip announced", "vip", a, "takeover", time.Since(first))
			}
			sent = true
			return errors.Join(errs...)
		}
		burstRun(ctx, n.cfg.Announce.BurstCount, n.cfg.Announce.BurstSpacing.Duration, announce, func(err error) {
			n.met.announceErrs.Inc()
			n.log.Warn("announce vip", "vip", a, "error", err)
		})
	}()
}

func (l *loop) announceOnce(a netip.Addr, h *held) {
	for _, ifn := range h.ifaces {
		if err := l.n.net.Announce(ifn, a); err != nil {
			l.n.met.announceErrs.Inc()
			l.n.log.Warn("announce vip", "vip", a, "error", err)
		}
	}
}

func (l *loop) startHandoff(a netip.Addr, h *held) {
	if h.cancel != nil {
		h.cancel() // stop announcing: the new owner's announcements must win
		h.cancel = nil
	}
	now := time.Now()
	h.handoff, h.handoffStart, h.deadline, h.releaseAt = true, now, now.Add(l.n.cfg.Drain.Timeout.Duration), time.Time{}
	l.n.log.Info("handing vip over", "vip", a, "new_owner", l.owners[a], "reason", l.fit.reason)
}

func (l *loop) release(a netip.Addr, why string) {
	n := l.n
	h := l.held[a]
	if h == nil {
		return
	}
	if h.cancel != nil {
		h.cancel()
	}
	for _, ifn := range h.ifaces {
		if err := n.net.DelAddr(ifn, a); err != nil {
			n.met.addressErrors.Inc()
			n.log.Error("remove vip", "vip", a, "error", err)
		}
	}
	delete(l.held, a)
	n.met.changes.WithLabelValues("lost").Inc()
	n.met.held.Set(float64(len(l.held)))
	n.log.Info("vip released", "vip", a, "why", why)
}

// reannounceMsg asks a VIP's new owner to announce it again.
const reannounceMsg = "reannounce "

// askReannounce tells a's new owner that this node released it because ownership moved. This node's own
// announcements may be the last its neighbours heard: while two views disagreed (a healed partition) both nodes
// claimed the VIP, and the new owner's burst may have ended before this node's. Best effort.
func (l *loop) askReannounce(a netip.Addr) {
	o := l.owners[a]
	if o == "" || o == l.n.id.Name {
		return
	}
	if err := l.n.ms.Send(o, []byte(reannounceMsg+a.String())); err != nil {
		l.n.log.Debug("ask new owner to re-announce", "vip", a, "owner", o, "error", err)
	}
}

// onMessage handles another member's message: a re-announce request for a VIP this node owns and holds.
func (l *loop) onMessage(b []byte) {
	s, ok := strings.CutPrefix(string(b), reannounceMsg)
	if !ok {
		return
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return
	}
	h := l.held[a]
	if h == nil || h.handoff || l.owners[a] != l.n.id.Name {
		return
	}
	l.n.log.Info("re-announcing vip: its previous holder released it", "vip", a)
	l.burst(a, h, time.Time{})
}

// releaseAll removes every held address (Run's exit).
func (l *loop) releaseAll() {
	for _, a := range slices.Collect(maps.Keys(l.held)) {
		l.release(a, "stopping")
	}
}

// adopt takes over VIP addresses a previous instance left on the interfaces (a crash): they stay until the first
// reconcile decides, so a restart on the owner does not flap its VIPs.
func (l *loop) adopt() {
	for _, v := range l.n.vips {
		for _, ifn := range v.Interfaces {
			got, err := l.n.net.HeldAddrs(ifn, map[netip.Addr]bool{v.Addr: true})
			if err == nil && len(got) > 0 && l.held[v.Addr] == nil {
				l.held[v.Addr] = &held{ifaces: v.Interfaces}
				l.n.log.Info("adopted vip left by a previous run", "vip", v.Addr, "interface", ifn)
			}
		}
	}
}

// expire releases handed-off VIPs whose new owner was seen (after the linger) or whose deadline passed, and
// retries failed additions.
func (l *loop) expire(now time.Time) {
	for a, h := range l.held {
		switch {
		case !h.handoff:
		case !h.releaseAt.IsZero() && !now.Before(h.releaseAt):
			l.release(a, "handed over")
		case h.releaseAt.IsZero() && !now.Before(h.deadline):
			l.n.met.handoff.WithLabelValues("timeout").Observe(now.Sub(h.handoffStart).Seconds())
			l.release(a, "handoff timed out: no new owner announced")
		}
	}
	if !l.retryAt.IsZero() && !now.Before(l.retryAt) {
		l.retryAt = time.Time{}
		l.reconcile(now)
	}
	l.updateWatch()
}

func (l *loop) resetTimer(t *time.Timer) {
	var next time.Time
	consider := func(at time.Time) {
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	for _, h := range l.held {
		if h.handoff {
			consider(h.deadline)
			consider(h.releaseAt)
		}
	}
	consider(l.retryAt)
	if next.IsZero() {
		t.Stop()
		return
	}
	t.Reset(max(time.Until(next), 0))
}

// updateWatch runs the announcement watchers while any handoff waits for its new owner.
func (l *loop) updateWatch() {
	waiting := false
	for _, h := range l.held {
		waiting = waiting || (h.handoff && h.releaseAt.IsZero())
	}
	switch {
	case waiting && l.watchCancel == nil:
		ctx, cancel := context.WithCancel(context.Background())
		l.watchCancel = cancel
		for _, ifn := range l.n.cfg.Interfaces {
			ch, err := l.n.net.Watch(ctx, ifn, l.n.all)
			if err != nil {
				l.n.log.Error("watch for the new owner; handoffs will wait for drain.timeout", "interface", ifn, "error", err)
				continue
			}
			go func() {
				for a := range ch {
					select {
					case l.seen <- a:
					case <-ctx.Done():
					}
				}
			}()
		}
	case !waiting:
		l.stopWatch()
	}
}

func (l *loop) stopWatch() {
	if l.watchCancel != nil {
		l.watchCancel()
		l.watchCancel = nil
	}
}

func (l *loop) answerWaiters() {
	if !l.draining || len(l.waiters) == 0 {
		return
	}
	if len(l.held) > 0 {
		return
	}
	for _, w := range l.waiters {
		close(w)
	}
	l.waiters = nil
}

func (l *loop) publishStatus() {
	n := l.n
	s := &Status{Self: n.id.Name, Ready: l.ready, Fit: l.fit.fit, Reason: l.fit.reason}
	for _, m := range l.view {
		s.Members = append(s.Members, MemberStatus{Name: m.Name, Addr: m.Addr.String(), Fit: m.Meta.Fit, Reason: m.Meta.Reason, Weight: m.Meta.Weight, Suspect: m.Suspect})
	}
	for _, v := range n.vips {
		h := l.held[v.Addr]
		s.VIPs = append(s.VIPs, VIPStatus{Addr: v.Addr, Pool: v.Pool, Owner: l.owners[v.Addr], Held: h != nil, HandingOff: h != nil && h.handoff, Interfaces: v.Interfaces})
	}
	n.status.Store(s)
}
