package config

import "time"

// Defaults, each with its reason.
const (
	// DefaultController is the IngressClass spec.controller edgegate answers to.
	DefaultController = "edgegate.io/ingress"
	// DefaultHoldoff: wait this long after the last change before translating, so a kubectl apply
	// of many objects becomes one update. Small, because translation is incremental and a route
	// should be live in well under 200 ms.
	DefaultHoldoff = 10 * time.Millisecond
	// DefaultMaxDelay: never hold a change longer than this, even under a steady stream of events.
	DefaultMaxDelay = 100 * time.Millisecond
	// DefaultStartupGrace: how long the first configuration waits for every remote cluster to sync
	// before serving the clusters that did (a cold list of 200k Ingresses takes a few seconds).
	DefaultStartupGrace = 60 * time.Second
	// DefaultXDSAddress: loopback only; Envoy runs on the same node.
	DefaultXDSAddress = "127.0.0.1:18000"
	// DefaultEnvoyAdmin: Envoy's admin API can stop the server; it must never be reachable off-node.
	DefaultEnvoyAdmin = "127.0.0.1:19000"
	// DefaultAdminAddress: edgegate's own admin API (health, metrics, status), loopback by default.
	DefaultAdminAddress = "127.0.0.1:19100"
	// DefaultBootstrapPath is where the systemd unit of Envoy reads its bootstrap.
	DefaultBootstrapPath = "/var/lib/edgegate/envoy-bootstrap.yaml"
	// DefaultDrainTime: long enough for in-flight requests and most long polls to finish when Envoy
	// stops, short enough to fit systemd's stop timeout.
	DefaultDrainTime = 30 * time.Second
	// DefaultQPS and DefaultBurst: client-go's 5/10 would throttle status writes after a bulk
	// change (at 50/s, 10k new Ingresses took 3+ minutes to get their status); informers' watches
	// are not affected by these limits. 200/s stays far below what one apiserver serves.
	DefaultQPS   = 200
	DefaultBurst = 400
	// DefaultMinTLSVersion: TLS 1.2 is still required by a large share of clients.
	DefaultMinTLSVersion = "1.2"
)

// Default fills in every unset field with its documented default.
func (c *Config) Default() {
	if c.Listeners == nil {
		// A plain appliance serves HTTP and HTTPS on every address.
		c.Listeners = []Listener{
			{Name: "http", Address: "0.0.0.0", Port: 80, Protocol: HTTP},
			{Name: "https", Address: "0.0.0.0", Port: 443, Protocol: HTTPS},
		}
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Protocol == HTTPS {
			if l.TLS == nil {
				l.TLS = &TLS{}
			}
			if l.TLS.MinVersion == "" {
				l.TLS.MinVersion = DefaultMinTLSVersion
			}
		}
	}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		if cl.EndpointMode == "" {
			cl.EndpointMode = EndpointsPod
		}
		if cl.QPS == 0 {
			cl.QPS = DefaultQPS
		}
		if cl.Burst == 0 {
			cl.Burst = DefaultBurst
		}
	}
	if c.Ingress.Controller == "" {
		c.Ingress.Controller = DefaultController
	}
	setDuration(&c.Ingress.Holdoff, DefaultHoldoff)
	setDuration(&c.Ingress.MaxDelay, DefaultMaxDelay)
	setDuration(&c.Ingress.StartupGrace, DefaultStartupGrace)
	if c.XDS.Address == "" {
		c.XDS.Address = DefaultXDSAddress
	}
	if c.Envoy.Mode == "" {
		c.Envoy.Mode = EnvoyExternal
	}
	if c.Envoy.AdminAddress == "" {
		c.Envoy.AdminAddress = DefaultEnvoyAdmin
	}
	if c.Envoy.BootstrapPath == "" {
		c.Envoy.BootstrapPath = DefaultBootstrapPath
	}
	setDuration(&c.Envoy.DrainTime, DefaultDrainTime)
	c.Tenancy.defaults()
	c.Limits.defaults()
	if c.VIP != nil {
		v := c.VIP.WithDefaults()
		c.VIP = &v
	}
	if c.BGP != nil {
		b := c.BGP.WithDefaults()
		c.BGP = &b
	}
	if c.Admin.Address == "" {
		c.Admin.Address = DefaultAdminAddress
	}
}

func setDuration(d *Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}
