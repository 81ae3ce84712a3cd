package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/edgegate/edgegate/test/harness"
)

// result is everything measured for one controller. Zero values with ok flags unset print as
// "n/a" or with the reason in notes.
type result struct {
	name  string
	desc  string // controller and version
	n     int
	notes []string

	genObjects int
	genTime    time.Duration

	xdsOpen     time.Duration // controller start → xDS port open
	coldStart   time.Duration // controller start → every sampled route served
	coldOK      bool
	sweepFailed int // of all n base routes, after the cold start
	sweepDone   bool

	ctrlRSS, envoyRSS int64
	ctrlHeap          float64
	settle            time.Duration
	settled           bool

	envoyApply   time.Duration // Envoy (re)start → every sampled route served, controller warm
	envoyApplyOK bool
	envoyRSS2    int64 // after that restart

	act           []time.Duration // activation latencies
	actFailed     int
	actCPU        time.Duration
	actSentBytes  float64 // controller's own metric, delta over the activation phase (-1: none)
	actEnvoyBytes float64 // Envoy's rx bytes on the xDS connection, same window

	churnAdded    int
	churnTime     time.Duration
	churnConverge time.Duration // last churn create → every churn route served
	churnOK       bool
	churnCPU      time.Duration
	load          *loadStats
	ll            *longLived
	llOpen        int
	llChanges     int

	finalCtrlRSS, finalEnvoyRSS int64
	finalHeap                   float64
}

func (r *result) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, s)
	logf("  NOTE %s: %s", r.name, s)
}

// sampleSize: hosts probed to decide that a whole table is served (first, last, and evenly
// spread between); the full sweep afterwards checks every route.
const sampleSize = 100

// Poll intervals: activation is polled fast so the measured latency is within a few ms of the
// true one; cold-start and convergence samples are rounds over many hosts.
const (
	activationPoll = 2 * time.Millisecond
	roundPause     = 20 * time.Millisecond
)

// runOne runs the whole workload against one controller on a fresh apiserver.
func runOne(ctx context.Context, o *options, ctrl controller, backends []*harness.Backend) (res *result, err error) {
	res = &result{name: ctrl.name(), n: o.routes, actSentBytes: -1}
	dir := filepath.Join(o.dir, ctrl.name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	logf("[%s] starting a fresh kube-apiserver and etcd", ctrl.name())
	kube, err := harness.StartKube(filepath.Join(dir, "kube"))
	if err != nil {
		return res, err
	}
	defer kube.Close()
	kc, err := benchClient(kube.Config)
	if err != nil {
		return res, err
	}
	if err := ctrl.prepare(ctx, kube, kc); err != nil {
		return res, fmt.Errorf("prepare %s: %w", ctrl.name(), err)
	}
	res.desc = ctrl.describe()
	w := newWorkload(o.routes, backends, ctrl.className())

	logf("[%s] creating %d routes (Ingress + Service + EndpointSlice each) in %d namespaces", ctrl.name(), o.routes, w.numNS)
	t := time.Now()
	res.genObjects, err = createBase(ctx, kc, w)
	res.genTime = time.Since(t)
	if err != nil {
		return res, fmt.Errorf("create objects: %w", err)
	}
	logf("[%s] created %d objects in %s (%.0f/s)", ctrl.name(), res.genObjects, res.genTime.Round(time.Millisecond), float64(res.genObjects)/res.genTime.Seconds())

	base := make([]target, o.routes)
	for i := range base {
		r := w.route(i, true)
		base[i] = target{r.host, w.backendName(r)}
	}
	sample := sampleTargets(base, sampleSize)

	// Cold start. Envoy is started when the xDS port opens, so Envoy's reconnect backoff
	// (up to 30 s after failed attempts) is not charged to either controller.
	logf("[%s] cold start", ctrl.name())
	start := time.Now()
	if err := ctrl.start(dir, kube); err != nil {
		return res, fmt.Errorf("start %s: %w", ctrl.name(), err)
	}
	defer ctrl.stop()
	coldDeadline := start.Add(o.coldTimeout)
	if err := waitPort(ctx, ctrl.xdsAddr(), coldDeadline, ctrl.process()); err != nil {
		return res, fmt.Errorf("%s xDS port %s: %w", ctrl.name(), ctrl.xdsAddr(), err)
	}
	res.xdsOpen = time.Since(start)
	bootstrap, admin, xdsStat, err := ctrl.bootstrap(dir)
	if err != nil {
		return res, err
	}
	env, err := startEnvoy(dir, "envoy", bootstrap, admin, ctrl.envoyArgs())
	if err != nil {
		return res, err
	}
	defer func() { env.stop() }()
	p := newProber(ctrl.httpAddr())
	p.alive = func() error {
		return errors.Join(ctx.Err(), exited(ctrl.process()), exited(env.proc))
	}
	missing, last := p.waitAllServed(sample, roundPause, coldDeadline)
	if missing > 0 {
		res.note("cold start: %d/%d sampled routes not served after %s: %v", missing, len(sample), time.Since(start).Round(time.Second), last)
		return res, nil
	}
	res.coldStart, res.coldOK = time.Since(start), true
	logf("[%s] cold start: xDS open after %s, all %d sampled routes served after %s", ctrl.name(),
		res.xdsOpen.Round(time.Millisecond), len(sample), res.coldStart.Round(time.Millisecond))
	if o.hold {
		logf("[%s] holding (-hold) until interrupted: kubeconfig %s, working directory %s, Envoy admin %s",
			ctrl.name(), kube.Kubeconfig, dir, admin)
		<-ctx.Done()
		return res, ctx.Err()
	}
	t = time.Now()
	res.sweepFailed, last = p.sweep(base, 8)
	res.sweepDone = true
	logf("[%s] full sweep of %d routes in %s: %d not served", ctrl.name(), len(base), time.Since(t).Round(time.Millisecond), res.sweepFailed)
	if res.sweepFailed > 0 {
		res.note("after cold start, %d of %d routes not served (first: %v)", res.sweepFailed, len(base), last)
	}
	res.ctrlRSS, _ = rss(ctrl.pid())
	res.envoyRSS, _ = rss(env.pid())
	if res.ctrlHeap, err = ctrl.heapInuse(); err != nil {
		res.note("heap: %v", err)
	}
	logf("[%s] at %d routes: controller RSS %s heap %s, Envoy RSS %s", ctrl.name(), o.routes,
		mib(res.ctrlRSS), mib(int64(res.ctrlHeap)), mib(res.envoyRSS))

	// Let the controller finish its start-up backlog (status writes) before per-change costs.
	logf("[%s] waiting (at most %s) for the controller to go idle (status writes after start)", ctrl.name(), o.settleTimeout)
	res.settle, res.settled = waitIdle(ctrl.pid(), 2*time.Second, 0.05, o.settleTimeout)
	if !res.settled {
		res.note("controller still busy %s after the cold start (>5%% of a core): per-change CPU includes that backlog", res.settle.Round(time.Second))
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	// Envoy apply time: a new Envoy against the warm controller.
	logf("[%s] Envoy restart: time to apply the whole table", ctrl.name())
	env.stop()
	_ = os.Remove(admin) // Contour's admin socket; Envoy refuses to bind over a stale one
	t = time.Now()
	env, err = startEnvoy(dir, "envoy-2", bootstrap, admin, ctrl.envoyArgs())
	if err != nil {
		return res, err
	}
	missing, last = p.waitAllServed(sample, roundPause, t.Add(o.coldTimeout))
	if missing > 0 {
		res.note("Envoy restart: %d/%d sampled routes not served after %s: %v", missing, len(sample), time.Since(t).Round(time.Second), last)
		return res, nil
	}
	res.envoyApply, res.envoyApplyOK = time.Since(t), true
	res.envoyRSS2, _ = rss(env.pid())
	logf("[%s] Envoy restart: all sampled routes served after %s, RSS %s", ctrl.name(), res.envoyApply.Round(time.Millisecond), mib(res.envoyRSS2))

	if err := activation(ctx, o, res, ctrl, env, xdsStat, kc, w, p); err != nil {
		return res, err
	}
	if err := churn(ctx, o, res, ctrl, kc, w, p, base); err != nil {
		return res, err
	}
	res.finalCtrlRSS, _ = rss(ctrl.pid())
	res.finalEnvoyRSS, _ = rss(env.pid())
	res.finalHeap, _ = ctrl.heapInuse()
	return res, nil
}

// activation creates o.changes new routes one at a time (each with a new Service and
// EndpointSlice, created first and not timed) and measures create accepted → first correct 200.
func activation(ctx context.Context, o *options, res *result, ctrl controller, env *envoy, xdsStat string,
	kc kubeClient, w *workload, p *prober) error {
	logf("[%s] route activation: %d new routes, one at a time", ctrl.name(), o.changes)
	cpu0, _ := cpuTime(ctrl.pid())
	sent0, sentErr := ctrl.xdsSentBytes()
	rx0, rxErr := env.xdsRxBytes(xdsStat)
	budget := time.Now().Add(o.activationBudget)
	done := 0
	for k := range o.changes {
		if time.Now().After(budget) {
			res.note("activation stopped after %d of %d changes: budget %s used", k, o.changes, o.activationBudget)
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r := w.route(o.routes+k, true)
		if err := createService(ctx, kc, w, r); err != nil {
			return err
		}
		if err := createIngress(ctx, kc, w, r); err != nil {
			return err
		}
		accepted := time.Now()
		served, err := p.waitServed(r.host, w.backendName(r), activationPoll, accepted.Add(o.activationTimeout))
		done++
		if err != nil {
			res.actFailed++
			if res.actFailed <= 3 {
				res.note("activation of %s: %v", r.host, err)
			}
			continue
		}
		res.act = append(res.act, served.Sub(accepted))
		if (k+1)%50 == 0 {
			logf("  %d/%d activations, p50 so far %s", k+1, o.changes, percentile(res.act, 0.5))
		}
	}
	// Let the last change's xDS traffic finish before reading the counters.
	time.Sleep(time.Second)
	cpu1, _ := cpuTime(ctrl.pid())
	res.actCPU = (cpu1 - cpu0) / time.Duration(max(done, 1))
	if sentErr == nil {
		if sent1, err := ctrl.xdsSentBytes(); err == nil {
			res.actSentBytes = (sent1 - sent0) / float64(max(done, 1))
		}
	}
	res.actEnvoyBytes = -1
	if rxErr == nil {
		if rx1, err := env.xdsRxBytes(xdsStat); err == nil {
			res.actEnvoyBytes = (rx1 - rx0) / float64(max(done, 1))
		}
	} else {
		res.note("envoy xDS rx bytes: %v", rxErr)
	}
	logf("[%s] activation: p50 %s p99 %s max %s over %d; %d failed; CPU/change %s; xDS bytes/change %.0f (controller) %.0f (Envoy rx)",
		ctrl.name(), percentile(res.act, 0.5), percentile(res.act, 0.99), percentile(res.act, 1), len(res.act), res.actFailed,
		res.actCPU, res.actSentBytes, res.actEnvoyBytes)
	return nil
}

// churn adds o.churn routes one at a time (each a new Ingress naming an existing Service) while
// a bounded client loop hits existing routes and long-lived connections stay open.
func churn(ctx context.Context, o *options, res *result, ctrl controller, kc kubeClient, w *workload, p *prober, base []target) error {
	logf("[%s] churn: %d routes added one at a time under load, %d long-lived connections", ctrl.name(), o.churn, o.longLived)
	stop := make(chan struct{})
	stopped := false
	stopAll := func() {
		if !stopped {
			close(stop)
			stopped = true
		}
	}
	defer stopAll()
	ll, err := startLongLived(ctrl.httpAddr(), base, o.longLived, stop, o.churnBudget+o.activationTimeout+time.Minute)
	if err != nil {
		return err
	}
	res.ll, res.llOpen = ll, o.longLived
	load := runLoad(ctrl.httpAddr(), base, stop, o.churnBudget+o.activationTimeout+time.Minute)
	res.load = load
	cpu0, _ := cpuTime(ctrl.pid())
	first := o.routes + o.changes
	var added []target
	t := time.Now()
	budget := t.Add(o.churnBudget)
	for k := range o.churn {
		if time.Now().After(budget) {
			res.note("churn stopped after %d of %d routes: budget %s used", k, o.churn, o.churnBudget)
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r := w.route(first+k, false)
		if err := createIngress(ctx, kc, w, r); err != nil {
			return err
		}
		added = append(added, target{r.host, w.backendName(r)})
		if (k+1)%1000 == 0 {
			logf("  %d/%d churn routes created", k+1, o.churn)
		}
	}
	res.churnAdded, res.churnTime = len(added), time.Since(t)
	res.llChanges = len(added)
	t = time.Now()
	missing, last := p.waitAllServed(added, roundPause, t.Add(o.activationTimeout))
	res.churnConverge, res.churnOK = time.Since(t), missing == 0
	if missing > 0 {
		res.note("churn: %d of %d added routes not served %s after the last create: %v", missing, len(added), o.activationTimeout, last)
	}
	cpu1, _ := cpuTime(ctrl.pid())
	res.churnCPU = cpu1 - cpu0
	// The long-lived connections have now seen every change applied; one more round of their
	// requests, then stop.
	time.Sleep(longLivedInterval + 200*time.Millisecond)
	stopAll()
	load.wait()
	ll.wg.Wait()
	logf("[%s] churn: %d routes in %s, all served %s later; load %d requests, %d non-2xx, %d wrong backend, %d connection errors; long-lived %d/%d broken (%d requests)",
		ctrl.name(), res.churnAdded, res.churnTime.Round(time.Millisecond), res.churnConverge.Round(time.Millisecond),
		load.requests.Load(), load.non2xx.Load(), load.wrong.Load(), load.connErrors.Load(), ll.broken.Load(), o.longLived, ll.requests.Load())
	for _, s := range load.samples {
		logf("    load failure: %s", s)
	}
	for _, s := range ll.samples {
		logf("    long-lived failure: %s", s)
	}
	return nil
}

func sampleTargets(all []target, n int) []target {
	if len(all) <= n {
		return slices.Clone(all)
	}
	out := make([]target, 0, n)
	for i := range n {
		out = append(out, all[i*(len(all)-1)/(n-1)])
	}
	return out
}

// waitPort waits until a TCP connection to addr succeeds.
func waitPort(ctx context.Context, addr string, deadline time.Time, p *harness.Process) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not open by the deadline: %w", err)
		}
		if err := errors.Join(ctx.Err(), exited(p)); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)].Round(100 * time.Microsecond)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
