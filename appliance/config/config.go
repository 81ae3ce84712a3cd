// Package config is edgegate's configuration file: one YAML document, decoded strictly (an unknown
// key is an error), defaulted, and validated so that every problem is reported at once with its
// path, its value and the limit it breaks.
//
// Everything an operator decides lives here and nowhere else: node identity, the listeners
// (tenants can never open a port), the remote clusters, which IngressClasses edgegate serves, xDS
// and Envoy settings, the admin API. The vip, bgp and tenancy sections are added by their packages
// as fields of Config (see the "extension points" comment below).
package config

import (
	"time"

	"github.com/edgegate/edgegate/bgp"
	"github.com/edgegate/edgegate/vip"
)

// Config is the whole configuration file.
type Config struct {
	Node      Node       `json:"node"`
	Listeners []Listener `json:"listeners"`
	Clusters  []Cluster  `json:"clusters"`
	Ingress   Ingress    `json:"ingress"`
	XDS       XDS        `json:"xds"`
	Envoy     Envoy      `json:"envoy"`
	Admin     Admin      `json:"admin"`
	Tenancy   Tenancy    `json:"tenancy,omitempty"`
	Limits    Limits     `json:"limits,omitempty"`
	// VIP, when set, runs gossip membership and L2 virtual IPs (vip/README.md). Its
	// ipAddressPools are also the VIPs BGP announces.
	VIP *vip.Config `json:"vip,omitempty"`
	// BGP, when set, announces the VIPs to routers (bgp/README.md); it needs vip.ipAddressPools.
	BGP *bgp.Config `json:"bgp,omitempty"`
	// MemoryLimit is the daemon's soft memory limit (Go's GOMEMLIMIT), a Kubernetes quantity such
	// as "1536Mi": the garbage collector works harder as the heap approaches it, instead of letting
	// it grow to twice the live data. Unset: 90% of the cgroup's limit (systemd MemoryMax=), or
	// none. A GOMEMLIMIT environment variable overrides both. Size it from the live heap
	// (go_memstats_heap_alloc_bytes after a GC, ~6 KiB per route) plus headroom: a limit below the
	// live data makes the collector run continuously.
	MemoryLimit string `json:"memoryLimit,omitempty"`
}

// Node identifies this edge node.
type Node struct {
	// Name is unique among the edge nodes (gossip member name, BGP/vip selectors, Envoy node id).
	Name string `json:"name"`
	// Labels are matched by node selectors in VIP and BGP configuration.
	Labels map[string]string `json:"labels,omitempty"`
}

// Protocol of a listener.
type Protocol string

const (
	HTTP  Protocol = "HTTP"
	HTTPS Protocol = "HTTPS"
)

// Listener is an admin-owned socket Envoy serves on.
type Listener struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	Port     int      `json:"port"`
	Protocol Protocol `json:"protocol"`
	TLS      *TLS     `json:"tls,omitempty"`
}

// TLS holds the TLS defaults of an HTTPS listener.
type TLS struct {
	// MinVersion is "1.2" (default: still needed by many clients) or "1.3".
	MinVersion string `json:"minVersion,omitempty"`
}

// EndpointMode says how a remote cluster's Services are reached.
type EndpointMode string

const (
	EndpointsPod      EndpointMode = "pod"
	EndpointsNodePort EndpointMode = "nodePort"
)

// Cluster is a remote Kubernetes cluster edgegate watches.
type Cluster struct {
	Name       string `json:"name"`
	Kubeconfig string `json:"kubeconfig"`
	// EndpointMode: "pod" (default) routes to pod addresses from EndpointSlices, which needs the pod
	// network routable from the edge; "nodePort" routes to every Ready node's InternalIP:nodePort.
	EndpointMode EndpointMode `json:"endpointMode,omitempty"`
	// TenantLabel, when set, makes namespaces with the same value of this label one tenant
	// (e.g. an owner label); otherwise every namespace is a tenant.
	TenantLabel string `json:"tenantLabel,omitempty"`
	// QPS and Burst bound this client's requests to the apiserver (status writes, events, lists).
	QPS   float32 `json:"qps,omitempty"`
	Burst int     `json:"burst,omitempty"`
	// Compression asks the apiserver for gzip responses. Off by default: on a datacenter network,
	// compressing a list of 100k objects (apiserver) and inflating it (edgegate) costs more CPU
	// than the bytes save; turn it on for a cluster behind a slow link.
	Compression bool `json:"compression,omitempty"`
}

// Ingress selects the Ingresses edgegate serves.
type Ingress struct {
	// Controller is the IngressClass spec.controller edgegate answers to.
	Controller string `json:"controller,omitempty"`
	// StatusAddresses are written into status.loadBalancer.ingress of accepted Ingresses.
	StatusAddresses []string `json:"statusAddresses,omitempty"`
	// Holdoff and MaxDelay debounce bursts of changes before they are translated.
	Holdoff  Duration `json:"holdoff,omitempty"`
	MaxDelay Duration `json:"maxDelay,omitempty"`
	// StartupGrace bounds how long the first configuration waits for every cluster to sync.
	StartupGrace Duration `json:"startupGrace,omitempty"`
}

// XDS configures the xDS server Envoy connects to.
type XDS struct {
	// Address is host:port on a loopback address, or unix:///path.
	Address string `json:"address,omitempty"`
}

// EnvoyMode says who runs Envoy.
type EnvoyMode string

const (
	// EnvoySupervise: edgegate runs Envoy as its child (development, demo, tests).
	EnvoySupervise EnvoyMode = "supervise"
	// EnvoyExternal: systemd (edgegate-envoy.service) runs Envoy; edgegate only writes its bootstrap
	// and watches its readiness. Envoy keeps serving while edgegate restarts.
	EnvoyExternal EnvoyMode = "external"
)

// Envoy configures the local Envoy.
type Envoy struct {
	Mode EnvoyMode `json:"mode,omitempty"`
	// Binary is the envoy executable (supervise mode).
	Binary string `json:"binary,omitempty"`
	// BootstrapPath is where edgegate writes Envoy's bootstrap at start.
	BootstrapPath string `json:"bootstrapPath,omitempty"`
	// AdminAddress is Envoy's admin interface: a loopback host:port or unix:///path, never public.
	AdminAddress string `json:"adminAddress,omitempty"`
	// Concurrency is Envoy's worker thread count (0: one per core).
	Concurrency int `json:"concurrency,omitempty"`
	// DrainTime is how long Envoy drains connections when it stops.
	DrainTime Duration `json:"drainTime,omitempty"`
	// ExtraArgs are appended to Envoy's command line (supervise mode), e.g. ["--log-level", "warn"].
	ExtraArgs []string `json:"extraArgs,omitempty"`
}

// Admin configures edgegate's own admin API (/healthz, /readyz, /metrics, /status).
type Admin struct {
	Address string `json:"address,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("250ms", "30s").
type Duration struct{ time.Duration }
