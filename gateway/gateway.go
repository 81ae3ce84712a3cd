// Package gateway is edgegate's configuration pipeline: remote clusters → translate → model → xDS.
//
// One goroutine (Gateway.Run) owns all pipeline state. Informer events only mark objects dirty; after
// a debounce (holdoff plus maximum) the owner re-translates exactly the dirty Ingresses, the hosts
// they touch and the Service ports whose endpoints moved, and hands the changed Envoy resources to
// the xDS server, which pushes only those to Envoy (delta xDS). A periodic pass re-checks
// everything, so a missed event cannot leave a stale route for long.
//
// Nothing is published until every remote cluster has synced (or the start-up grace expired), so a
// restarted edgegate never tells Envoy to drop routes it simply has not listed yet; a cluster that
// becomes unreachable later keeps its last state. A bad object is rejected alone (see translate)
// and reported through the status writer.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/status"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/translate"
	"github.com/edgegate/edgegate/gateway/xdsbuild"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

// Config is what the pipeline needs from the appliance configuration.
type Config struct {
	// Controller is the IngressClass spec.controller value whose classes edgegate serves.
	Controller string
	// StatusAddresses are written into accepted Ingresses' status.loadBalancer.ingress.
	StatusAddresses []string
	// Listeners are the admin-owned listeners.
	Listeners []xdsbuild.Listener
	// Holdoff and MaxDelay debounce bursts of events (see debouncer).
	Holdoff, MaxDelay time.Duration
	// StartupGrace bounds how long the first publication waits for every cluster to sync.
	StartupGrace time.Duration
	// ConsistencyInterval is how often everything is re-translated as a safety net.
	ConsistencyInterval time.Duration
	// Tenancy is the admin's tenancy policy; nil means the zero Policy (namespaces are tenants, no
	// hostname restrictions, no catch-all, no quotas).
	Tenancy *tenancy.Policy
}

// Source is one remote cluster as the pipeline sees it: the cached objects and their sync state.
// source.Cluster implements it over informers, source.Static over a fixed list of objects (for
// `edgegate translate`). Implementations must be safe for concurrent reads.
type Source interface {
	translate.Objects
	Name() string
	Mode() translate.EndpointMode
	Health() source.Health
	Ingress(namespace, name string) *networkingv1.Ingress
	IngressNames() []types.NamespacedName
	IngressClasses() []*networkingv1.IngressClass
	// NamespaceLabels returns a namespace's labels, or nil when unknown or not watched.
	NamespaceLabels(name string) map[string]string
}

// Gateway is the pipeline. Construct with New, then Run; the other methods are safe for
// concurrent use.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	clusters map[string]Source
	events   <-chan source.Event
	xds      *xdsserver.Server
	status   *status.Writer

	// Owned by the Run goroutine.
	st state
	// covered: clusters that had synced when everything was last marked dirty (markAll), so
	// notifications of their initial lists are already covered (see source.Event.Initial).
	covered map[string]bool

	pings chan chan struct{}

	mu        sync.Mutex
	published bool
	snapshot  Snapshot
}

// Snapshot is the pipeline's view for `edgegate status` and the admin API.
type Snapshot struct {
	Published  bool              `json:"published"`
	Hosts      int               `json:"hosts"`
	Clusters   int               `json:"clusters"`
	Secrets    int               `json:"secrets"`
	Rejections []model.Rejection `json:"rejections,omitempty"`
	LastFlush  time.Time         `json:"lastFlush,omitzero"`
	// LastFlushDuration is the time the last flush took (translation and xDS update).
	LastFlushDuration time.Duration `json:"lastFlushDuration"`
}

// New wires the pipeline; it starts nothing.
func New(cfg Config, log *slog.Logger, clusters []Source, events <-chan source.Event, xds *xdsserver.Server, st *status.Writer) *Gateway {
	g := &Gateway{cfg: cfg, log: log, clusters: map[string]Source{}, events: events, xds: xds, status: st, pings: make(chan chan struct{})}
	for _, c := range clusters {
		g.clusters[c.Name()] = c
	}
	if g.cfg.Tenancy == nil {
		g.cfg.Tenancy = &tenancy.Policy{}
	}
	g.st = newState()
	return g
}

// Published reports whether the first complete configuration has been handed to the xDS server.
func (g *Gateway) Published() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.published
}

// Snapshot returns the current summary.
func (g *Gateway) Snapshot() Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.snapshot
	s.Rejections = append([]model.Rejection(nil), s.Rejections...)
	return s
}

// Ping returns nil once the owner loop has answered, proving it is not stuck; the systemd
// watchdog uses it.
func (g *Gateway) Ping(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case g.pings <- reply:
	case <-ctx.Done():
		return fmt.Errorf("gateway loop busy: %w", ctx.Err())
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway loop busy: %w", ctx.Err())
	}
}

// Run is the owner loop. It returns when ctx is done.
func (g *Gateway) Run(ctx context.Context) error {
	d := debouncer{holdoff: g.cfg.Holdoff, max: g.cfg.MaxDelay}
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	consistency := time.NewTicker(g.cfg.ConsistencyInterval)
	defer consistency.Stop()
	// Until the first publication, poll cluster sync state (informers do not send an event for it).
	syncPoll := time.NewTicker(50 * time.Millisecond)
	defer syncPoll.Stop()

	arm := func() {
		if d.pending() {
			timer.Reset(time.Until(d.due()))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case reply := <-g.pings:
			close(reply)
		case ev := <-g.events:
			if ev.Initial && g.covered[ev.Cluster] {
				continue
			}
			g.mark(ev)
			d.event(time.Now())
			arm()
		case <-syncPoll.C:
			if g.Published() {
				syncPoll.Stop()
				continue
			}
			if g.allSynced() || time.Since(start) > g.cfg.StartupGrace {
				g.markAll()
				g.flush()
				d.flushed()
			}
		case <-consistency.C:
			if g.Published() {
				g.markAll()
				d.event(time.Now())
				arm()
			}
		case <-timer.C:
			if !g.Published() {
				continue // the first publication waits for sync; events stay marked
			}
			g.flush()
			d.flushed()
		}
	}
}

func (g *Gateway) allSynced() bool {
	for _, c := range g.clusters {
		if !c.Health().Synced {
			return false
		}
	}
	return true
}

// ours reports whether an Ingress belongs to one of edgegate's IngressClasses: by
// spec.ingressClassName, else the legacy kubernetes.io/ingress.class annotation, else the class
// marked default (ingressclass.kubernetes.io/is-default-class).
func (g *Gateway) ours(c Source, ing *networkingv1.Ingress) bool {
	name := ""
	if ing.Spec.IngressClassName != nil {
		name = *ing.Spec.IngressClassName
	} else if a := ing.Annotations["kubernetes.io/ingress.class"]; a != "" {
		name = a
	}
	for _, cls := range c.IngressClasses() {
		if cls.Spec.Controller != g.cfg.Controller {
			continue
		}
		if name == "" && cls.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			return true
		}
		if name != "" && cls.Name == name {
			return true
		}
	}
	return false
}

// sortedSet returns the keys of m in the order less defines.
func sortedSet[K comparable, V any](m map[K]V, less func(a, b K) bool) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}
