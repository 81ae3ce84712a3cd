package config

import "time"

// Limits protect tenants from each other and the node from traffic surges. Per-tenant overrides
// of Host and Backend live in tenancy.tenants.<name>.
type Limits struct {
	Host    HostLimits    `json:"host,omitempty"`
	Backend BackendLimits `json:"backend,omitempty"`
	Node    NodeLimits    `json:"node,omitempty"`
}

// HostLimits apply to every hostname a tenant serves.
type HostLimits struct {
	// RequestsPerSecond per host on this node (0: unlimited), with Burst tokens (default: 2 s worth).
	RequestsPerSecond int `json:"requestsPerSecond,omitempty"`
	Burst             int `json:"burst,omitempty"`
	// MaxRequestBodyBytes answers larger bodies with 413 (0: unlimited).
	MaxRequestBodyBytes int `json:"maxRequestBodyBytes,omitempty"`
	// RequestTimeout bounds a whole request; IdleTimeout a request stream without activity.
	RequestTimeout Duration `json:"requestTimeout,omitempty"`
	IdleTimeout    Duration `json:"idleTimeout,omitempty"`
	// MaxConnections caps concurrent TLS connections per certificate, i.e. to the hosts one tenant
	// serves with it (0: unlimited). Plain HTTP connections are not tied to one host (a client
	// may send any Host on them): they are bounded by limits.node and the per-host request rate.
	MaxConnections int `json:"maxConnections,omitempty"`
}

// BackendLimits are Envoy circuit breakers and outlier detection per backend (Service port).
type BackendLimits struct {
	MaxConnections     int              `json:"maxConnections,omitempty"`
	MaxPendingRequests int              `json:"maxPendingRequests,omitempty"`
	MaxRequests        int              `json:"maxRequests,omitempty"`
	MaxRetries         int              `json:"maxRetries,omitempty"`
	OutlierDetection   OutlierDetection `json:"outlierDetection,omitempty"`
	// IdleTimeout closes a pooled connection to the backend after this long without requests.
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
}

// OutlierDetection ejects endpoints that keep failing.
type OutlierDetection struct {
	// Consecutive5xx: eject after this many 5xx in a row (-1: off).
	Consecutive5xx     int      `json:"consecutive5xx,omitempty"`
	Interval           Duration `json:"interval,omitempty"`
	BaseEjectionTime   Duration `json:"baseEjectionTime,omitempty"`
	MaxEjectionPercent int      `json:"maxEjectionPercent,omitempty"`
}

// NodeLimits feed Envoy's overload manager.
type NodeLimits struct {
	// MaxHeapBytes: Envoy shrinks its heap at 95% and stops accepting requests at 98% (0: off).
	MaxHeapBytes int64 `json:"maxHeapBytes,omitempty"`
	// MaxDownstreamConnections: Envoy refuses connections beyond this many.
	MaxDownstreamConnections int64 `json:"maxDownstreamConnections,omitempty"`
}

// Defaults, with reasons.
const (
	// DefaultRequestTimeout matches ingress-nginx's proxy-read-timeout, what Ingress users expect.
	DefaultRequestTimeout = 60 * time.Second
	// DefaultIdleTimeout frees a stream whose client and backend both went quiet.
	DefaultIdleTimeout = 5 * time.Minute
	// Circuit breakers: Envoy's own defaults (1024/1024/1024/3), made explicit so operators see them.
	DefaultMaxConnections     = 1024
	DefaultMaxPendingRequests = 1024
	DefaultMaxRequests        = 1024
	DefaultMaxRetries         = 3
	// Outlier detection: 5 consecutive 5xx eject an endpoint for 30 s, at most half of a backend, so
	// a broken pod stops taking a tenant's traffic without the whole Service being ejected.
	DefaultConsecutive5xx     = 5
	DefaultOutlierInterval    = 10 * time.Second
	DefaultBaseEjectionTime   = 30 * time.Second
	DefaultMaxEjectionPercent = 50
	// DefaultBackendIdleTimeout: every backend in use has its own connection pool, so on an edge
	// serving 100k Services, Envoy's default (an hour) would keep a socket and its buffers per
	// backend used in the last hour; a minute keeps busy backends' connections warm.
	DefaultBackendIdleTimeout = time.Minute
	// DefaultMaxDownstreamConnections: far above one node's normal load (Envoy warns when unset),
	// low enough that a connection flood cannot exhaust file descriptors and memory.
	DefaultMaxDownstreamConnections = 100_000
)

func (l *Limits) defaults() {
	l.Host.defaults()
	l.Backend.defaults()
	if l.Node.MaxDownstreamConnections == 0 {
		l.Node.MaxDownstreamConnections = DefaultMaxDownstreamConnections
	}
}

func (h *HostLimits) defaults() {
	setDuration(&h.RequestTimeout, DefaultRequestTimeout)
	setDuration(&h.IdleTimeout, DefaultIdleTimeout)
	if h.Burst == 0 {
		h.Burst = 2 * h.RequestsPerSecond
	}
}

func (b *BackendLimits) defaults() {
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&b.MaxConnections, DefaultMaxConnections)
	set(&b.MaxPendingRequests, DefaultMaxPendingRequests)
	set(&b.MaxRequests, DefaultMaxRequests)
	set(&b.MaxRetries, DefaultMaxRetries)
	set(&b.OutlierDetection.Consecutive5xx, DefaultConsecutive5xx)
	setDuration(&b.OutlierDetection.Interval, DefaultOutlierInterval)
	setDuration(&b.OutlierDetection.BaseEjectionTime, DefaultBaseEjectionTime)
	set(&b.OutlierDetection.MaxEjectionPercent, DefaultMaxEjectionPercent)
	setDuration(&b.IdleTimeout, DefaultBackendIdleTimeout)
}

func (l *Limits) validate(p *problems, path string) {
	l.Host.validate(p, path+".host")
	l.Backend.validate(p, path+".backend")
	if l.Node.MaxHeapBytes < 0 || (l.Node.MaxHeapBytes > 0 && l.Node.MaxHeapBytes < 64<<20) {
		p.add(path+".node.maxHeapBytes", l.Node.MaxHeapBytes, "must be 0 (off) or at least 64 MiB")
	}
	if l.Node.MaxDownstreamConnections < 1 || l.Node.MaxDownstreamConnections > 10_000_000 {
		p.add(path+".node.maxDownstreamConnections", l.Node.MaxDownstreamConnections, "must be between 1 and 10000000")
	}
}

func (h *HostLimits) validate(p *problems, path string) {
	inRange(p, path+".requestsPerSecond", h.RequestsPerSecond, 0, 1_000_000)
	inRange(p, path+".burst", h.Burst, 0, 10_000_000)
	inRange(p, path+".maxRequestBodyBytes", h.MaxRequestBodyBytes, 0, 1<<31-1)
	inRange(p, path+".maxConnections", h.MaxConnections, 0, 10_000_000)
	if h.RequestTimeout.Duration < 0 || h.RequestTimeout.Duration > time.Hour {
		p.add(path+".requestTimeout", h.RequestTimeout.Duration, "must be between 0 and 1h")
	}
	if h.IdleTimeout.Duration < 0 || h.IdleTimeout.Duration > 24*time.Hour {
		p.add(path+".idleTimeout", h.IdleTimeout.Duration, "must be between 0 and 24h")
	}
}

func (b *BackendLimits) validate(p *problems, path string) {
	inRange(p, path+".maxConnections", b.MaxConnections, 1, 1_000_000)
	inRange(p, path+".maxPendingRequests", b.MaxPendingRequests, 1, 1_000_000)
	inRange(p, path+".maxRequests", b.MaxRequests, 1, 1_000_000)
	inRange(p, path+".maxRetries", b.MaxRetries, 1, 1000)
	if b.IdleTimeout.Duration < time.Second || b.IdleTimeout.Duration > 24*time.Hour {
		p.add(path+".idleTimeout", b.IdleTimeout.Duration, "must be between 1s and 24h")
	}
	if b.OutlierDetection.Consecutive5xx != -1 {
		inRange(p, path+".outlierDetection.consecutive5xx", b.OutlierDetection.Consecutive5xx, 1, 1000)
	}
	inRange(p, path+".outlierDetection.maxEjectionPercent", b.OutlierDetection.MaxEjectionPercent, 1, 100)
}

func inRange(p *problems, path string, v, lo, hi int) {
	if v < lo || v > hi {
		p.add(path, v, "must be between %d and %d", lo, hi)
	}
}
