package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	metallbv1beta1 "go.universe.tf/metallb/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/bgp"
	"github.com/edgegate/edgegate/vip"
	"github.com/edgegate/edgegate/vip/announce"
	"github.com/edgegate/edgegate/vip/pool"
)

// edge runs the components that bring traffic to this node: L2 VIPs (vip) and BGP (bgp). Both
// follow this node's fitness (Ready) and are drained, BGP first, before Envoy on stop.
type edge struct {
	d       *Daemon
	vip     *vip.Node
	bgp     *bgp.Component
	bgpVIPs []netip.Addr // added to loopback so routed traffic is accepted (BGP mode)
}

// bgpLoopback is where BGP-announced VIPs live on the node: routers send VIP traffic to every
// announcing node, and the kernel accepts it only for a local address.
const bgpLoopback = "lo"

func newEdge(d *Daemon) (*edge, error) {
	cfg := d.cfg
	e := &edge{d: d}
	if cfg.VIP != nil {
		n, err := vip.New(*cfg.VIP, vip.Identity{Name: cfg.Node.Name, Labels: cfg.Node.Labels},
			vip.Options{Logger: d.log.With("component", "vip"), Registerer: d.registry})
		if err != nil {
			return nil, fmt.Errorf("vip: %w", err)
		}
		e.vip = n
	}
	if cfg.BGP != nil {
		c, err := bgp.New(*cfg.BGP, bgp.Node{Name: cfg.Node.Name, Labels: cfg.Node.Labels},
			bgp.NewGoBGP(d.log.With("component", "gobgp")), d.log.With("component", "bgp"), d.registry)
		if err != nil {
			return nil, fmt.Errorf("bgp: %w", err)
		}
		vips, addrs, err := poolVIPs(cfg.VIP.IPAddressPools, cfg.VIP.Interfaces)
		if err != nil {
			return nil, err
		}
		c.SetVIPs(vips)
		e.bgp, e.bgpVIPs = c, addrs
	}
	return e, nil
}

// poolVIPs lists every address of the pools, by pool, for BGP: BGP announces whole pools, whatever
// the L2 advertisements select (an advertisement with no pool list selects every pool).
func poolVIPs(pools []metallbv1beta1.IPAddressPool, ifnames []string) ([]bgp.VIP, []netip.Addr, error) {
	set, err := pool.Expand(pools, []metallbv1beta1.L2Advertisement{{ObjectMeta: metav1.ObjectMeta{Name: "bgp"}}}, ifnames, "vip")
	if err != nil {
		return nil, nil, err
	}
	labels := map[string]map[string]string{}
	for _, p := range pools {
		labels[p.Name] = p.Labels
	}
	var vips []bgp.VIP
	var addrs []netip.Addr
	for _, v := range set.VIPs {
		vips = append(vips, bgp.VIP{Prefix: netip.PrefixFrom(v.Addr, v.Addr.BitLen()), Pool: v.Pool, PoolLabels: labels[v.Pool]})
		addrs = append(addrs, v.Addr)
	}
	return vips, addrs, nil
}

// run starts the components and keeps their fitness in step with the node's; it returns when ctx
// is done, after the components stopped.
func (e *edge) run(ctx context.Context) error {
	if e.vip == nil && e.bgp == nil {
		<-ctx.Done()
		return nil
	}
	for _, a := range e.bgpVIPs {
		if err := announce.AddAddr(bgpLoopback, a); err != nil {
			return fmt.Errorf("add BGP VIP %s to %s: %w", a, bgpLoopback, err)
		}
	}
	done := make(chan error, 2)
	running := 0
	if e.vip != nil {
		running++
		go func() { done <- e.vip.Run(ctx) }()
	}
	if e.bgp != nil {
		running++
		go func() { done <- e.bgp.Run(ctx) }()
	}
	t := time.NewTicker(envoyPoll)
	defer t.Stop()
	last := ""
	for {
		fit, reason := e.d.Ready()
		// Once the daemon stops, drain owns the components' state: BGP keeps its routes, marked
		// graceful-shutdown, for drainWait, and an unfit report now would withdraw them at once.
		if key := fmt.Sprint(fit, reason); key != last && !e.d.stopping.Load() {
			last = key
			if e.vip != nil {
				e.vip.SetFitness(fit, reason)
			}
			if e.bgp != nil {
				e.bgp.SetFitness(fit, reason)
			}
		}
		select {
		case <-ctx.Done():
			var errs []error
			for range running {
				errs = append(errs, <-done)
			}
			return errors.Join(errs...)
		case err := <-done:
			running--
			if err != nil {
				return err
			}
		case <-t.C:
		}
	}
}

// release removes the BGP VIPs from the loopback. The daemon calls it after Envoy has drained
// (routers stopped sending to this node at the withdraw, but packets already on their way are
// still served); `edgegate cleanup` does it after a crash.
func (e *edge) release() {
	for _, a := range e.bgpVIPs {
		_ = announce.DelAddr(bgpLoopback, a)
	}
}

// drain moves traffic away before Envoy stops: BGP graceful shutdown and withdraw, then the L2
// handover of VIPs to other nodes. Bounded by ctx.
func (e *edge) drain(ctx context.Context) {
	if e.bgp != nil {
		if err := e.bgp.Drain(ctx); err != nil {
			e.d.log.Warn("bgp drain", "error", err)
		}
	}
	if e.vip != nil {
		if err := e.vip.Drain(ctx); err != nil && !errors.Is(err, vip.ErrNotRunning) {
			e.d.log.Warn("vip drain", "error", err)
		}
	}
}

// EdgeStatus is the vip and bgp part of /status.
type EdgeStatus struct {
	VIP *vip.Status `json:"vip,omitempty"`
	BGP *bgp.Status `json:"bgp,omitempty"`
}

func (e *edge) status(ctx context.Context) EdgeStatus {
	var s EdgeStatus
	if e.vip != nil {
		st := e.vip.Status()
		s.VIP = &st
	}
	if e.bgp != nil {
		if st, err := e.bgp.Status(ctx); err == nil {
			s.BGP = &st
		}
	}
	return s
}

// cleanupCmd removes every configured VIP address from the VIP interfaces and from loopback: after
// a crash or SIGKILL the daemon could not release them, and a node must never keep answering for
// a VIP it does not own. systemd runs it as ExecStopPost.
func cleanupCmd(args []string, stdout io.Writer) error {
	fs, path := configFlag("cleanup", args)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if cfg.VIP == nil {
		fmt.Fprintln(stdout, "no vip section: nothing to clean up")
		return nil
	}
	_, addrs, err := poolVIPs(cfg.VIP.IPAddressPools, cfg.VIP.Interfaces)
	if err != nil {
		return err
	}
	ifnames := append([]string{bgpLoopback}, cfg.VIP.Interfaces...)
	if err := announce.Cleanup(ifnames, addrs); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed any of %d VIP addresses from %v\n", len(addrs), ifnames)
	return nil
}
