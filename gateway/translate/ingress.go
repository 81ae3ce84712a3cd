package translate

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/edgegate/edgegate/gateway/model"
)

// Reasons used in model.Rejection.Reason for Ingresses.
const (
	ReasonInvalidHost         = "InvalidHost"
	ReasonInvalidPath         = "InvalidPath"
	ReasonServiceNotFound     = "ServiceNotFound"
	ReasonServicePortNotFound = "ServicePortNotFound"
	ReasonUnsupportedBackend  = "UnsupportedBackend"
	ReasonExternalName        = "ExternalNameNotAllowed"
	ReasonNoNodePort          = "NoNodePort"
	ReasonSecretNotFound      = "SecretNotFound"
	ReasonInvalidSecret       = "InvalidSecret"
)

// maxPathLength bounds a route path; longer paths are almost certainly abuse and inflate Envoy's
// route tables (Envoy itself accepts far more).
const maxPathLength = 1024

// Ingress is one accepted Ingress, validated and resolved: every backend maps to a Cluster name and
// every TLS host to a Secret. It is what Host merges; it holds no Kubernetes pointers.
type Ingress struct {
	Ref     model.ObjectRef
	Created time.Time
	// Rules are the (host, path) → cluster routes, hosts normalised ("" became model.CatchAllHost).
	Rules []Rule
	// DefaultCluster is the defaultBackend's cluster, or "".
	DefaultCluster string
	// TLS maps a normalised host to the model Secret serving it.
	TLS map[string]model.Secret
	// Clusters are the Service ports this Ingress routes to, sorted by Name.
	Clusters []ClusterRef
}

// Rule is one path of one host rule.
type Rule struct {
	Host    string
	Match   model.PathMatchKind
	Path    string
	Cluster string
}

// ClusterRef identifies a Service port a route points at; Cluster turns it into model.Cluster.
type ClusterRef struct {
	Name      string // model.Cluster.Name
	Cluster   string // remote cluster name
	Namespace string
	Service   string
	Port      int32 // the Service port number (spec.ports[].port)
}

// Hosts returns the hosts the Ingress puts routes on, sorted and unique.
func (in *Ingress) Hosts() []string {
	set := map[string]bool{}
	for _, r := range in.Rules {
		set[r.Host] = true
	}
	if in.DefaultCluster != "" && len(in.Rules) == 0 {
		set[model.CatchAllHost] = true
	}
	return sortedKeys(set)
}

// Older reports whether a was created before b; ties are broken by namespace/name so the order is
// total and the same on every node and after every restart.
func Older(a, b *Ingress) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.Ref.Less(b.Ref)
}

// ParseIngress validates one Ingress of the named remote cluster and resolves its backends and TLS
// Secrets through objs. It returns either the accepted Ingress or the rejection explaining, with
// the field path, why the whole object is not served.
//
// allowExternalName decides which ExternalName destinations the admin allows; nil refuses all.
func ParseIngress(cluster string, mode EndpointMode, ing *networkingv1.Ingress, objs Objects, allowExternalName func(string) bool) (*Ingress, *model.Rejection) {
	ref := model.ObjectRef{Cluster: cluster, Kind: "Ingress", Namespace: ing.Namespace, Name: ing.Name}
	reject := func(reason, format string, args ...any) (*Ingress, *model.Rejection) {
		return nil, &model.Rejection{Object: ref, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	out := &Ingress{Ref: ref, Created: ing.CreationTimestamp.Time} // TLS stays nil without TLS hosts: an empty map is ~50 bytes
	clusters := map[string]ClusterRef{}
	resolve := func(field string, b *networkingv1.IngressBackend) (string, *model.Rejection) {
		c, rej := resolveBackend(cluster, mode, ing.Namespace, field, b, objs, allowExternalName)
		if rej != nil {
			rej.Object = ref
			return "", rej
		}
		clusters[c.Name] = c
		return c.Name, nil
	}

	if b := ing.Spec.DefaultBackend; b != nil {
		name, rej := resolve("spec.defaultBackend", b)
		if rej != nil {
			return nil, rej
		}
		out.DefaultCluster = name
	}
	for i, rule := range ing.Spec.Rules {
		host := model.CatchAllHost
		if rule.Host != "" {
			h, err := NormalizeHost(rule.Host)
			if err != nil {
				return reject(ReasonInvalidHost, "spec.rules[%d].host %q: %v", i, rule.Host, err)
			}
			host = h
		}
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			field := fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)
			kind, path, err := pathMatch(p)
			if err != nil {
				return reject(ReasonInvalidPath, "%s.path %q: %v", field, p.Path, err)
			}
			name, rej := resolve(field+".backend", &p.Backend)
			if rej != nil {
				return nil, rej
			}
			out.Rules = append(out.Rules, Rule{Host: host, Match: kind, Path: path, Cluster: name})
		}
	}
	for i, t := range ing.Spec.TLS {
		field := fmt.Sprintf("spec.tls[%d]", i)
		if t.SecretName == "" {
			continue // TLS hosts without a Secret would use a default certificate; we have none yet
		}
		secret := objs.TLSSecret(ing.Namespace, t.SecretName)
		if secret == nil {
			return reject(ReasonSecretNotFound, "%s.secretName: Secret %s/%s of type kubernetes.io/tls not found", field, ing.Namespace, t.SecretName)
		}
		ms, err := tlsSecret(cluster, secret)
		if err != nil {
			return reject(ReasonInvalidSecret, "%s.secretName: Secret %s/%s: %v", field, ing.Namespace, t.SecretName, err)
		}
		for k, h := range t.Hosts {
			nh, err := NormalizeHost(h)
			if err != nil {
				return reject(ReasonInvalidHost, "%s.hosts[%d] %q: %v", field, k, h, err)
			}
			if _, dup := out.TLS[nh]; !dup {
				if out.TLS == nil {
					out.TLS = map[string]model.Secret{}
				}
				out.TLS[nh] = ms
			}
		}
	}
	for _, c := range clusters {
		out.Clusters = append(out.Clusters, c)
	}
	sort.Slice(out.Clusters, func(i, j int) bool { return out.Clusters[i].Name < out.Clusters[j].Name })
	return out, nil
}

func resolveBackend(cluster string, mode EndpointMode, ns, field string, b *networkingv1.IngressBackend, objs Objects, allowExternalName func(string) bool) (ClusterRef, *model.Rejection) {
	reject := func(reason, format string, args ...any) (ClusterRef, *model.Rejection) {
		return ClusterRef{}, &model.Rejection{Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if b.Resource != nil || b.Service == nil {
		return reject(ReasonUnsupportedBackend, "%s: only service backends are supported", field)
	}
	svc := objs.Service(ns, b.Service.Name)
	if svc == nil {
		return reject(ReasonServiceNotFound, "%s.service.name: Service %s/%s not found", field, ns, b.Service.Name)
	}
	external := svc.Spec.Type == corev1.ServiceTypeExternalName
	if external {
		name := strings.TrimSuffix(strings.ToLower(svc.Spec.ExternalName), ".")
		if allowExternalName == nil || !allowExternalName(name) {
			return reject(ReasonExternalName, "%s.service.name: Service %s/%s is of type ExternalName (%q), which the admin has not allowed", field, ns, b.Service.Name, svc.Spec.ExternalName)
		}
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		if (b.Service.Port.Name != "" && sp.Name == b.Service.Port.Name) ||
			(b.Service.Port.Name == "" && sp.Port == b.Service.Port.Number) {
			port = sp
			break
		}
	}
	if port == nil {
		want := b.Service.Port.Name
		if want == "" {
			want = fmt.Sprint(b.Service.Port.Number)
		}
		return reject(ReasonServicePortNotFound, "%s.service.port: Service %s/%s has no TCP port %s", field, ns, b.Service.Name, want)
	}
	if mode == EndpointsNodePort && port.NodePort == 0 && !external {
		return reject(ReasonNoNodePort, "%s.service: Service %s/%s port %d has no nodePort (the cluster is reached in nodePort mode)", field, ns, b.Service.Name, port.Port)
	}
	return ClusterRef{
		Name:      ClusterName(cluster, ns, svc.Name, port.Port),
		Cluster:   cluster,
		Namespace: ns,
		Service:   svc.Name,
		Port:      port.Port,
	}, nil
}

// ClusterName is the stable model.Cluster name of a Service port.
func ClusterName(cluster, ns, service string, port int32) string {
	return fmt.Sprintf("%s/%s/%s/%d", cluster, ns, service, port)
}

// pathMatch validates an Ingress path and returns its match kind and normalised path.
func pathMatch(p networkingv1.HTTPIngressPath) (model.PathMatchKind, string, error) {
	path := p.Path
	if path == "" {
		path = "/" // an omitted path matches everything (networking.k8s.io/v1 defaulting)
	}
	if err := validatePath(path); err != nil {
		return "", "", err
	}
	kind := networkingv1.PathTypeImplementationSpecific
	if p.PathType != nil {
		kind = *p.PathType
	}
	switch kind {
	case networkingv1.PathTypeExact:
		return model.PathExact, path, nil
	case networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific:
		// Element-wise prefix: a trailing slash is ignored ("/foo/" matches "/foo").
		if trimmed := strings.TrimRight(path, "/"); trimmed != "" {
			path = trimmed
		} else {
			path = "/"
		}
		return model.PathPrefix, path, nil
	default:
		return "", "", fmt.Errorf("unknown pathType %q", kind)
	}
}

func validatePath(path string) error {
	switch {
	case len(path) > maxPathLength:
		return fmt.Errorf("longer than %d bytes", maxPathLength)
	case !strings.HasPrefix(path, "/"):
		return fmt.Errorf("must start with /")
	case strings.Contains(path, "//"):
		return fmt.Errorf("must not contain an empty segment (//)")
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("must not contain a %q segment", seg)
		}
	}
	for _, r := range path {
		// RFC 3986 pchar plus "/": unreserved, sub-delims, ":", "@", and percent-encoding.
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("-._~!$&'()*+,;=:@/%", r)
		if !ok {
			return fmt.Errorf("character %q is not allowed in a path", r)
		}
	}
	return nil
}

// NormalizeHost lower-cases a hostname, drops one trailing dot, and checks it is a DNS subdomain
// or a "*." wildcard followed by one.
func NormalizeHost(h string) (string, error) {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return "", fmt.Errorf("a wildcard is only allowed as the whole first label (*.example.com)")
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return h, nil
}

func tlsSecret(cluster string, s *corev1.Secret) (model.Secret, error) {
	if s.Type != corev1.SecretTypeTLS {
		return model.Secret{}, fmt.Errorf("type is %q, want %q", s.Type, corev1.SecretTypeTLS)
	}
	cert, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return model.Secret{}, fmt.Errorf("tls.crt/tls.key: %w", err)
	}
	return model.Secret{Name: cluster + "/" + s.Namespace + "/" + s.Name, CertPEM: cert, KeyPEM: key}, nil
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
