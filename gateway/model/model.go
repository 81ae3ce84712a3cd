// Package model is the plain-Go description of what edgegate serves: virtual hosts with their routes,
// upstream clusters with their endpoints, and TLS certificates.
//
// It sits between the two pure stages of the gateway pipeline (translate: Kubernetes → model, and
// xdsbuild: model → Envoy resources). It imports neither Kubernetes nor Envoy packages (a test
// enforces this), serialises to YAML for golden files and for `edgegate translate`, and every
// collection is kept sorted so equal inputs give byte-equal outputs.
package model

// Config is the whole desired state at one moment.
type Config struct {
	// Hosts are the virtual hosts, sorted by Name.
	Hosts []VirtualHost `json:"hosts,omitempty"`
	// Clusters are the upstream clusters routes point at, sorted by Name.
	Clusters []Cluster `json:"clusters,omitempty"`
	// Secrets are the TLS certificates listeners use, sorted by Name.
	Secrets []Secret `json:"secrets,omitempty"`
	// Rejections list every object (or part of one) that could not be translated, and why.
	Rejections []Rejection `json:"rejections,omitempty"`
}

// CatchAllHost is the Name of the virtual host that answers requests whose host matches no other.
const CatchAllHost = "*"

// VirtualHost is everything served for one hostname: an exact name ("app.example.com"), a wildcard
// covering exactly one DNS label ("*.example.com"), or CatchAllHost.
type VirtualHost struct {
	// Name is the lower-case hostname without a trailing dot.
	Name string `json:"name"`
	// Routes in precedence order: the first match wins.
	Routes []Route `json:"routes,omitempty"`
	// TLSSecret names the Secret (in Config.Secrets) whose certificate serves this host over HTTPS;
	// empty when the host is served over plain HTTP only.
	TLSSecret string `json:"tlsSecret,omitempty"`
	// Sources are the objects that contributed to this host, sorted.
	Sources []ObjectRef `json:"sources,omitempty"`
	// Limits protect the platform and the other tenants from this host's traffic.
	Limits HostLimits `json:"limits,omitzero"`
}

// HostLimits are the admin's per-host limits (zero: no limit of that kind).
type HostLimits struct {
	// RequestsPerSecond and Burst configure a token bucket shared by every request to the host.
	RequestsPerSecond uint32 `json:"requestsPerSecond,omitempty"`
	Burst             uint32 `json:"burst,omitempty"`
	// MaxRequestBytes rejects larger request bodies with 413.
	MaxRequestBytes uint32 `json:"maxRequestBytes,omitempty"`
	// RequestTimeoutMillis bounds a whole request; IdleTimeoutMillis a stream without activity.
	RequestTimeoutMillis uint32 `json:"requestTimeoutMillis,omitempty"`
	IdleTimeoutMillis    uint32 `json:"idleTimeoutMillis,omitempty"`
	// MaxConnections caps concurrent TLS connections to the certificate serving the host.
	MaxConnections uint32 `json:"maxConnections,omitempty"`
}

// PathMatchKind says how a Route compares the request path.
type PathMatchKind string

const (
	// PathExact matches the path exactly (case-sensitive).
	PathExact PathMatchKind = "Exact"
	// PathPrefix matches on path elements split by "/": "/foo" matches "/foo" and "/foo/bar", never "/foobar".
	PathPrefix PathMatchKind = "Prefix"
)

// Route sends requests whose path matches to a backend cluster, or answers them directly.
type Route struct {
	PathMatch PathMatchKind `json:"pathMatch"`
	Path      string        `json:"path"`
	// Cluster is the Name of the Cluster to forward to; empty when DirectStatus is set.
	Cluster string `json:"cluster,omitempty"`
	// DirectStatus, when non-zero, is the HTTP status Envoy answers with itself (e.g. 503 for a backend
	// that exists but has no usable port).
	DirectStatus int `json:"directStatus,omitempty"`
	// Source is the object that declared the route.
	Source ObjectRef `json:"source"`
}

// Cluster is one upstream: a Service port of a remote Kubernetes cluster.
type Cluster struct {
	// Name is unique and stable: "<cluster>/<namespace>/<service>/<port>".
	Name string `json:"name"`
	// Endpoints are the ready addresses, sorted.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// ExternalName, when set, is a DNS name Envoy resolves itself (an ExternalName Service the
	// admin allowed); Endpoints is then empty.
	ExternalName *ExternalName `json:"externalName,omitempty"`
	// Limits are circuit breakers and outlier detection, so one tenant's failing or slow backend
	// cannot exhaust shared capacity.
	Limits BackendLimits `json:"limits,omitzero"`
}

// BackendLimits bound what Envoy spends on one backend (zero: Envoy's default).
type BackendLimits struct {
	MaxConnections     uint32 `json:"maxConnections,omitempty"`
	MaxPendingRequests uint32 `json:"maxPendingRequests,omitempty"`
	MaxRequests        uint32 `json:"maxRequests,omitempty"`
	MaxRetries         uint32 `json:"maxRetries,omitempty"`
	// Consecutive5xx ejects an endpoint after that many 5xx in a row (0: no outlier detection).
	Consecutive5xx        uint32 `json:"consecutive5xx,omitempty"`
	EjectionMillis        uint32 `json:"ejectionMillis,omitempty"`
	MaxEjectionPercent    uint32 `json:"maxEjectionPercent,omitempty"`
	OutlierIntervalMillis uint32 `json:"outlierIntervalMillis,omitempty"`
	// IdleTimeoutMillis closes a pooled connection to the backend after that long unused (0: Envoy's default).
	IdleTimeoutMillis uint32 `json:"idleTimeoutMillis,omitempty"`
}

// ExternalName is a backend reached by DNS name.
type ExternalName struct {
	Host string `json:"host"`
	Port uint32 `json:"port"`
}

// Endpoint is one ready backend address.
type Endpoint struct {
	Address string `json:"address"`
	Port    uint32 `json:"port"`
}

// Secret is a TLS certificate chain and private key, PEM encoded.
type Secret struct {
	// Name is "<cluster>/<namespace>/<secret>".
	Name string `json:"name"`
	// CertPEM and KeyPEM are omitted from YAML output so `edgegate translate` never prints keys.
	CertPEM []byte `json:"-"`
	KeyPEM  []byte `json:"-"`
	// Hosts lists the virtual host names this certificate serves, sorted.
	Hosts []string `json:"hosts,omitempty"`
	// MaxConnections caps concurrent TLS connections using this certificate (0: unlimited): the
	// lowest MaxConnections of its hosts (all of one tenant: Secrets are never shared across namespaces).
	MaxConnections uint32 `json:"maxConnections,omitempty"`
}

// ObjectRef names a Kubernetes object without importing Kubernetes.
type ObjectRef struct {
	Cluster   string `json:"cluster,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r ObjectRef) String() string {
	s := r.Kind + " " + r.Namespace + "/" + r.Name
	if r.Cluster != "" {
		s = r.Cluster + ": " + s
	}
	return s
}

// Less orders refs by cluster, kind, namespace, name.
func (r ObjectRef) Less(o ObjectRef) bool {
	if r.Cluster != o.Cluster {
		return r.Cluster < o.Cluster
	}
	if r.Kind != o.Kind {
		return r.Kind < o.Kind
	}
	if r.Namespace != o.Namespace {
		return r.Namespace < o.Namespace
	}
	return r.Name < o.Name
}

// Rejection records why an object, or one part of it, is not served.
type Rejection struct {
	Object ObjectRef `json:"object"`
	// Reason is a CamelCase machine-readable cause, e.g. "ServiceNotFound", "InvalidPath".
	Reason string `json:"reason"`
	// Message is the human-readable explanation naming the offending field and value.
	Message string `json:"message"`
}
