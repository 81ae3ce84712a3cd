package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ErrInvalid is wrapped by every validation problem.
var ErrInvalid = errors.New("invalid")

// FieldError is one validation problem: where, what value, and what is wrong with it.
type FieldError struct {
	Path    string
	Value   any
	Problem string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.Path, e.Value, e.Problem)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

type problems []error

func (p *problems) add(path string, value any, format string, args ...any) {
	*p = append(*p, &FieldError{Path: path, Value: value, Problem: fmt.Sprintf(format, args...)})
}

// Limits checked by Validate.
const (
	maxListeners = 64
	maxClusters  = 64
	// maxDelayLimit: holding changes longer than this defeats the activation target.
	maxDelayLimit = 10 * time.Second
)

// Validate returns every problem in the configuration (errors.Join of *FieldError), or nil.
// It checks values only; host checks (files, interfaces) are in CheckHost.
func (c *Config) Validate() error {
	var p problems
	if c.MemoryLimit != "" {
		if _, err := c.MemoryLimitBytes(); err != nil {
			p.add("memoryLimit", quote(c.MemoryLimit), "%v", err)
		}
	}
	if errs := validation.IsDNS1123Label(c.Node.Name); len(errs) > 0 {
		p.add("node.name", quote(c.Node.Name), "must be a DNS label (lower-case letters, digits, '-', at most 63): %s", strings.Join(errs, "; "))
	}
	for k, v := range c.Node.Labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			p.add("node.labels."+k, quote(k), "invalid label key: %s", strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			p.add("node.labels."+k, quote(v), "invalid label value: %s", strings.Join(errs, "; "))
		}
	}
	c.validateListeners(&p)
	c.validateClusters(&p)

	if errs := validation.IsDomainPrefixedPath(nil, c.Ingress.Controller); len(errs) > 0 {
		p.add("ingress.controller", quote(c.Ingress.Controller), "must be a domain-prefixed path like edgegate.io/ingress")
	}
	for i, a := range c.Ingress.StatusAddresses {
		if _, err := netip.ParseAddr(a); err != nil {
			p.add(fmt.Sprintf("ingress.statusAddresses[%d]", i), quote(a), "must be an IP address")
		}
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{{"ingress.holdoff", c.Ingress.Holdoff.Duration}, {"ingress.maxDelay", c.Ingress.MaxDelay.Duration}} {
		if d.v <= 0 || d.v > maxDelayLimit {
			p.add(d.path, d.v, "must be > 0 and <= %v", maxDelayLimit)
		}
	}
	if c.Ingress.Holdoff.Duration > c.Ingress.MaxDelay.Duration {
		p.add("ingress.holdoff", c.Ingress.Holdoff.Duration, "must not exceed ingress.maxDelay (%v)", c.Ingress.MaxDelay.Duration)
	}
	if c.Ingress.StartupGrace.Duration <= 0 {
		p.add("ingress.startupGrace", c.Ingress.StartupGrace.Duration, "must be > 0")
	}

	checkLocalAddress(&p, "xds.address", c.XDS.Address)
	switch c.Envoy.Mode {
	case EnvoySupervise:
		if c.Envoy.Binary == "" {
			p.add("envoy.binary", quote(""), "required when envoy.mode is supervise")
		}
	case EnvoyExternal:
	default:
		p.add("envoy.mode", quote(string(c.Envoy.Mode)), "must be supervise or external")
	}
	checkLocalAddress(&p, "envoy.adminAddress", c.Envoy.AdminAddress)
	if c.Envoy.BootstrapPath == "" {
		p.add("envoy.bootstrapPath", quote(""), "required")
	}
	if c.Envoy.Concurrency < 0 || c.Envoy.Concurrency > 1024 {
		p.add("envoy.concurrency", c.Envoy.Concurrency, "must be between 0 (one per core) and 1024")
	}
	if c.Envoy.DrainTime.Duration < 0 || c.Envoy.DrainTime.Duration > 10*time.Minute {
		p.add("envoy.drainTime", c.Envoy.DrainTime.Duration, "must be between 0 and 10m")
	}
	if _, _, err := net.SplitHostPort(c.Admin.Address); err != nil {
		p.add("admin.address", quote(c.Admin.Address), "must be host:port: %v", err)
	}
	c.validatePortClashes(&p)
	c.Tenancy.validate(&p)
	c.Limits.validate(&p, "limits")
	// vip and bgp validate themselves, with their own paths under "vip." and "bgp.".
	if c.VIP != nil {
		p = append(p, c.VIP.Validate())
	}
	if c.BGP != nil {
		p = append(p, c.BGP.Validate())
		if c.VIP == nil || len(c.VIP.IPAddressPools) == 0 {
			p.add("bgp", "set", "announces the VIPs of vip.ipAddressPools, and there are none")
		}
	}
	return errors.Join(p...)
}

func (c *Config) validateListeners(p *problems) {
	if len(c.Listeners) == 0 || len(c.Listeners) > maxListeners {
		p.add("listeners", len(c.Listeners), "need between 1 and %d listeners", maxListeners)
	}
	names := map[string]bool{}
	sockets := map[string]string{}
	for i, l := range c.Listeners {
		path := fmt.Sprintf("listeners[%d]", i)
		if errs := validation.IsDNS1123Label(l.Name); len(errs) > 0 {
			p.add(path+".name", quote(l.Name), "must be a DNS label: %s", strings.Join(errs, "; "))
		} else if names[l.Name] {
			p.add(path+".name", quote(l.Name), "duplicate listener name")
		}
		names[l.Name] = true
		if _, err := netip.ParseAddr(l.Address); err != nil {
			p.add(path+".address", quote(l.Address), "must be an IP address (0.0.0.0 or :: for all)")
		}
		if l.Port < 1 || l.Port > 65535 {
			p.add(path+".port", l.Port, "must be between 1 and 65535")
		}
		sock := net.JoinHostPort(l.Address, strconv.Itoa(l.Port))
		if other, dup := sockets[sock]; dup {
			p.add(path, sock, "same address and port as listener %q", other)
		}
		sockets[sock] = l.Name
		switch l.Protocol {
		case HTTP:
			if l.TLS != nil {
				p.add(path+".tls", "set", "only HTTPS listeners take TLS settings")
			}
		case HTTPS:
			if l.TLS != nil && l.TLS.MinVersion != "1.2" && l.TLS.MinVersion != "1.3" {
				p.add(path+".tls.minVersion", quote(l.TLS.MinVersion), "must be 1.2 or 1.3")
			}
		default:
			p.add(path+".protocol", quote(string(l.Protocol)), "must be HTTP or HTTPS")
		}
	}
}

func (c *Config) validateClusters(p *problems) {
	if len(c.Clusters) == 0 || len(c.Clusters) > maxClusters {
		p.add("clusters", len(c.Clusters), "need between 1 and %d remote clusters", maxClusters)
	}
	names := map[string]bool{}
	for i, cl := range c.Clusters {
		path := fmt.Sprintf("clusters[%d]", i)
		if errs := validation.IsDNS1123Label(cl.Name); len(errs) > 0 {
			p.add(path+".name", quote(cl.Name), "must be a DNS label: %s", strings.Join(errs, "; "))
		} else if names[cl.Name] {
			p.add(path+".name", quote(cl.Name), "duplicate cluster name")
		}
		names[cl.Name] = true
		if cl.Kubeconfig == "" {
			p.add(path+".kubeconfig", quote(""), "required: path to a kubeconfig file")
		}
		if cl.EndpointMode != EndpointsPod && cl.EndpointMode != EndpointsNodePort {
			p.add(path+".endpointMode", quote(string(cl.EndpointMode)), "must be pod or nodePort")
		}
		if cl.TenantLabel != "" && len(validation.IsQualifiedName(cl.TenantLabel)) > 0 {
			p.add(path+".tenantLabel", quote(cl.TenantLabel), "must be a label key")
		}
		if cl.QPS < 0 || cl.QPS > 10000 {
			p.add(path+".qps", cl.QPS, "must be between 0 and 10000")
		}
		if cl.Burst < 0 || cl.Burst > 20000 {
			p.add(path+".burst", cl.Burst, "must be between 0 and 20000")
		}
	}
}

// checkLocalAddress accepts a loopback host:port or unix:///absolute/path.
func checkLocalAddress(p *problems, path, addr string) {
	if rest, ok := strings.CutPrefix(addr, "unix://"); ok {
		if !strings.HasPrefix(rest, "/") {
			p.add(path, quote(addr), "unix socket path must be absolute (unix:///run/edgegate/x.sock)")
		}
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(path, quote(addr), "must be a loopback host:port or unix:///path: %v", err)
		return
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		p.add(path, quote(addr), "must be on a loopback address: it must never be reachable from the network")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add(path, quote(addr), "port must be between 1 and 65535")
	}
}

// validatePortClashes rejects a listener that would take the port of the xDS server, Envoy's admin
// or edgegate's admin API.
func (c *Config) validatePortClashes(p *problems) {
	reserved := map[string]string{}
	for _, r := range []struct{ name, addr string }{{"xds.address", c.XDS.Address}, {"envoy.adminAddress", c.Envoy.AdminAddress}, {"admin.address", c.Admin.Address}} {
		if _, port, err := net.SplitHostPort(r.addr); err == nil && !strings.HasPrefix(r.addr, "unix://") {
			if other, dup := reserved[port]; dup {
				p.add(r.name, quote(r.addr), "same port as %s", other)
			}
			reserved[port] = r.name
		}
	}
	for i, l := range c.Listeners {
		if other, clash := reserved[strconv.Itoa(l.Port)]; clash {
			p.add(fmt.Sprintf("listeners[%d].port", i), l.Port, "clashes with %s", other)
		}
	}
}

func quote(s string) string { return strconv.Quote(s) }

// minMemoryLimit: below this the daemon cannot hold even a small table.
const minMemoryLimit = 64 << 20

// MemoryLimitBytes parses memoryLimit (0 when unset).
func (c *Config) MemoryLimitBytes() (int64, error) {
	if c.MemoryLimit == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(c.MemoryLimit)
	if err != nil {
		return 0, fmt.Errorf("must be a quantity like 1536Mi or 2Gi: %w", err)
	}
	v, ok := q.AsInt64()
	if !ok || v < minMemoryLimit {
		return 0, fmt.Errorf("must be at least 64Mi")
	}
	return v, nil
}
