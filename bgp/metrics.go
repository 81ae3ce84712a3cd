package bgp

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the component's Prometheus metrics (names in README.md).
type metrics struct {
	sessionUp     *prometheus.GaugeVec
	stateChanges  *prometheus.CounterVec
	announcements *prometheus.CounterVec
	withdrawals   *prometheus.CounterVec
	routes        prometheus.Gauge
	fit           prometheus.Gauge
	phase         *prometheus.GaugeVec
	applyErrors   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessionUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgegate_bgp_session_up", Help: "1 while the BGP session with the peer is established.",
		}, []string{"peer"}),
		stateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgegate_bgp_session_state_changes_total", Help: "BGP session state changes, by peer and new state.",
		}, []string{"peer", "state"}),
		announcements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgegate_bgp_announcements_total", Help: "Routes announced (or re-announced with new attributes) to the speaker.",
		}, []string{"family"}),
		withdrawals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgegate_bgp_withdrawals_total", Help: "Routes withdrawn from the speaker.",
		}, []string{"family"}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgegate_bgp_routes_announced", Help: "Routes currently announced.",
		}),
		fit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgegate_bgp_fit", Help: "1 while the node is fit to announce its VIPs.",
		}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgegate_bgp_phase", Help: "1 for the current lifecycle phase (running, draining, drained).",
		}, []string{"phase"}),
		applyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgegate_bgp_apply_errors_total", Help: "Failed speaker operations, by operation.",
		}, []string{"op"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.sessionUp, m.stateChanges, m.announcements, m.withdrawals, m.routes, m.fit, m.phase, m.applyErrors} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register bgp metrics: %w", err)
	}
	return m, nil
}
