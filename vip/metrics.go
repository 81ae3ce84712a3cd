package vip

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	changes       *prometheus.CounterVec
	held          prometheus.Gauge
	members       *prometheus.GaugeVec
	takeover      prometheus.Histogram
	handoff       *prometheus.HistogramVec
	announceErrs  prometheus.Counter
	addressErrors prometheus.Counter
}

// Buckets for latencies around the ~1 s failover target: 5 ms .. ~10 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.005, 2, 12)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgegate_vip_ownership_changes_total",
			Help: "VIPs this node started (gained) or stopped (lost) holding.",
		}, []string{"change"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgegate_vip_held",
			Help: "VIPs currently held (address on an interface) by this node.",
		}),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgegate_vip_members",
			Help: "Live gossip members by fitness, as seen by this node.",
		}, []string{"fitness"}),
		takeover: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edgegate_vip_takeover_seconds",
			Help:    "From the first member event of a batch to the first announcement of a VIP this node gained (failover time minus failure detection).",
			Buckets: latencyBuckets,
		}),
		handoff: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edgegate_vip_handoff_seconds",
			Help:    "Planned handoff: from this node becoming unfit to the new owner's announcement (result=announced) or the drain timeout (result=timeout).",
			Buckets: latencyBuckets,
		}, []string{"result"}),
		announceErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgegate_vip_announce_errors_total",
			Help: "Gratuitous ARP / unsolicited NA that could not be sent.",
		}),
		addressErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgegate_vip_address_errors_total",
			Help: "Failed netlink address additions or removals.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.changes, m.held, m.members, m.takeover, m.handoff, m.announceErrs, m.addressErrors} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
