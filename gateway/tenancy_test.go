package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/model"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/translate"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

// ing renders an Ingress of class edgegate: host→path→service rules, created at minute min.
func ing(ns, name string, min int, hosts ...string) string {
	var rules strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&rules, "  - host: %q\n    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}\n", h)
	}
	return fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: %s, namespace: %s, creationTimestamp: "2026-01-01T00:%02d:00Z"}
spec:
  ingressClassName: edgegate
  rules:
%s`, name, ns, min, rules.String())
}

func nsService(ns, addr string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: %[1]s, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [%[2]s]}]
`, ns, addr)
}

type outcome struct {
	hosts      map[string]string // host → "namespace/name" of the Ingress serving it
	rejections map[string]string // "namespace/name" → reason
	endpoints  map[string]int    // cluster → endpoint count
}

func runPipeline(t *testing.T, p *tenancy.Policy, docs ...string) (*gateway.Gateway, outcome) {
	t.Helper()
	src, err := source.NewStatic("main", translate.EndpointsPod, decode(t, append([]string{ingressClass}, docs...)...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := gateway.New(gateway.Config{Controller: "edgegate.io/ingress", Tenancy: p}, log, []gateway.Source{src}, nil, xdsserver.New(ctx, log), nil)
	gw.TranslateAll()
	return gw, outcomeOf(gw.Model())
}

func outcomeOf(m model.Config) outcome {
	o := outcome{hosts: map[string]string{}, rejections: map[string]string{}, endpoints: map[string]int{}}
	for _, h := range m.Hosts {
		var srcs []string
		for _, s := range h.Sources {
			srcs = append(srcs, s.Namespace+"/"+s.Name)
		}
		sort.Strings(srcs)
		o.hosts[h.Name] = strings.Join(srcs, ",")
	}
	for _, r := range m.Rejections {
		o.rejections[r.Object.Namespace+"/"+r.Object.Name] = r.Reason
	}
	for _, c := range m.Clusters {
		o.endpoints[c.Name] = len(c.Endpoints)
	}
	return o
}

func TestTenancyRules(t *testing.T) {
	svcs := []string{nsService("acme", "198.18.0.10"), nsService("globex", "198.18.0.20"), nsService("initech", "198.18.0.30")}
	tests := []struct {
		name   string
		policy tenancy.Policy
		docs   []string
		want   outcome
	}{
		{
			name: "first claim wins an exact host, never merged",
			docs: []string{ing("acme", "a", 1, "shop.example.com"), ing("globex", "b", 2, "shop.example.com", "blog.example.com")},
			want: outcome{hosts: map[string]string{"shop.example.com": "acme/a"}, rejections: map[string]string{"globex/b": tenancy.ReasonHostOwnedByAnotherTenant}},
		},
		{
			name: "ownership follows age, not names or order",
			docs: []string{ing("acme", "z", 5, "shop.example.com"), ing("globex", "a", 2, "shop.example.com")},
			want: outcome{hosts: map[string]string{"shop.example.com": "globex/a"}, rejections: map[string]string{"acme/z": tenancy.ReasonHostOwnedByAnotherTenant}},
		},
		{
			name: "same age: namespace/name breaks the tie",
			docs: []string{ing("globex", "a", 1, "shop.example.com"), ing("acme", "a", 1, "shop.example.com")},
			want: outcome{hosts: map[string]string{"shop.example.com": "acme/a"}, rejections: map[string]string{"globex/a": tenancy.ReasonHostOwnedByAnotherTenant}},
		},
		{
			name: "one tenant may share a host across objects",
			docs: []string{ing("acme", "a", 1, "shop.example.com"), ing("acme", "b", 2, "shop.example.com")},
			want: outcome{hosts: map[string]string{"shop.example.com": "acme/a,acme/b"}, rejections: map[string]string{}},
		},
		{
			name: "an owned wildcard covers later exact claims of others",
			docs: []string{ing("acme", "w", 1, "*.example.com"), ing("globex", "x", 2, "pay.example.com")},
			want: outcome{hosts: map[string]string{"*.example.com": "acme/w"}, rejections: map[string]string{"globex/x": tenancy.ReasonHostOwnedByAnotherTenant}},
		},
		{
			name: "an exact host claimed first stays with its claimant under a later wildcard",
			docs: []string{ing("globex", "x", 1, "pay.example.com"), ing("acme", "w", 2, "*.example.com")},
			want: outcome{hosts: map[string]string{"*.example.com": "acme/w", "pay.example.com": "globex/x"}, rejections: map[string]string{}},
		},
		{
			name: "case and trailing-dot variants are the same host",
			docs: []string{ing("acme", "a", 1, "shop.example.com"), ing("globex", "b", 2, "SHOP.Example.com."), ing("initech", "c", 3, "Shop.example.COM")},
			want: outcome{hosts: map[string]string{"shop.example.com": "acme/a"}, rejections: map[string]string{"globex/b": tenancy.ReasonHostOwnedByAnotherTenant, "initech/c": tenancy.ReasonHostOwnedByAnotherTenant}},
		},
		{
			name: "punycode is the only accepted form of an IDN; unicode is invalid",
			docs: []string{ing("acme", "a", 1, "xn--bcher-kva.example.com"), ing("globex", "b", 2, "xn--bcher-kva.example.com"), ing("initech", "c", 3, "bücher.example.com")},
			want: outcome{hosts: map[string]string{"xn--bcher-kva.example.com": "acme/a"}, rejections: map[string]string{"globex/b": tenancy.ReasonHostOwnedByAnotherTenant, "initech/c": translate.ReasonInvalidHost}},
		},
		{
			name:   "a tenant label groups namespaces into one tenant",
			policy: tenancy.Policy{TenantLabel: map[string]string{"main": "owner"}},
			docs: []string{
				"apiVersion: v1\nkind: Namespace\nmetadata: {name: acme, labels: {owner: acme-corp}}\n",
				"apiVersion: v1\nkind: Namespace\nmetadata: {name: globex, labels: {owner: acme-corp}}\n",
				ing("acme", "a", 1, "shop.example.com"), ing("globex", "b", 2, "shop.example.com"),
			},
			want: outcome{hosts: map[string]string{"shop.example.com": "acme/a,globex/b"}, rejections: map[string]string{}},
		},
		{
			name:   "allowed suffixes per tenant and pinned custom domains",
			policy: tenancy.Policy{AllowedSuffixes: []string{"{tenant}.apps.example.com"}, Tenants: map[string]tenancy.Tenant{"acme": {Pinned: []string{"shop.acme.com"}}}},
			docs: []string{
				ing("acme", "ok", 1, "web.acme.apps.example.com", "shop.acme.com"),
				ing("acme", "wrong-suffix", 2, "web.globex.apps.example.com"),
				ing("globex", "not-pinned", 3, "shop.acme.com"),
			},
			want: outcome{hosts: map[string]string{"web.acme.apps.example.com": "acme/ok", "shop.acme.com": "acme/ok"},
				rejections: map[string]string{"acme/wrong-suffix": tenancy.ReasonHostnameNotAllowed, "globex/not-pinned": tenancy.ReasonHostnameNotAllowed}},
		},
		{
			name:   "reserved hostnames and wildcards covering them",
			policy: tenancy.Policy{Reserved: []string{"admin.example.com"}},
			docs:   []string{ing("acme", "a", 1, "admin.example.com"), ing("globex", "b", 2, "*.example.com")},
			want:   outcome{hosts: map[string]string{}, rejections: map[string]string{"acme/a": tenancy.ReasonHostnameReserved, "globex/b": tenancy.ReasonHostnameReserved}},
		},
		{
			name:   "a rejected claim owns nothing",
			policy: tenancy.Policy{Reserved: []string{"admin.example.com"}},
			docs:   []string{ing("acme", "a", 1, "admin.example.com", "shop.example.com"), ing("globex", "b", 2, "shop.example.com")},
			want:   outcome{hosts: map[string]string{"shop.example.com": "globex/b"}, rejections: map[string]string{"acme/a": tenancy.ReasonHostnameReserved}},
		},
		{
			name:   "catch-all only from designated namespaces",
			policy: tenancy.Policy{CatchAllNamespaces: []string{"main/initech"}},
			docs: []string{
				"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: grab, namespace: acme}\nspec:\n  ingressClassName: edgegate\n  defaultBackend: {service: {name: web, port: {number: 80}}}\n",
				"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: hostless, namespace: globex}\nspec:\n  ingressClassName: edgegate\n  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]\n",
				"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: default, namespace: initech}\nspec:\n  ingressClassName: edgegate\n  defaultBackend: {service: {name: web, port: {number: 80}}}\n",
			},
			want: outcome{hosts: map[string]string{"*": "initech/default"}, rejections: map[string]string{"acme/grab": tenancy.ReasonCatchAllNotAllowed, "globex/hostless": tenancy.ReasonCatchAllNotAllowed}},
		},
		{
			name:   "quota: the oldest objects fit, the rest are rejected",
			policy: tenancy.Policy{DefaultQuota: tenancy.Quota{MaxHosts: 2}},
			docs:   []string{ing("acme", "a", 1, "a.example.com"), ing("acme", "b", 2, "b.example.com"), ing("acme", "c", 3, "c.example.com"), ing("acme", "a2", 4, "a.example.com")},
			want:   outcome{hosts: map[string]string{"a.example.com": "acme/a,acme/a2", "b.example.com": "acme/b"}, rejections: map[string]string{"acme/c": tenancy.ReasonQuotaExceeded}},
		},
		{
			name:   "quota on routes, per tenant override",
			policy: tenancy.Policy{DefaultQuota: tenancy.Quota{MaxRoutes: 1}, Tenants: map[string]tenancy.Tenant{"globex": {Quota: &tenancy.Quota{MaxRoutes: 2}}}},
			docs:   []string{ing("acme", "a", 1, "a.example.com", "a2.example.com"), ing("globex", "b", 2, "b.example.com", "b2.example.com")},
			want:   outcome{hosts: map[string]string{"b.example.com": "globex/b", "b2.example.com": "globex/b"}, rejections: map[string]string{"acme/a": tenancy.ReasonQuotaExceeded}},
		},
		{
			name:   "ExternalName Services only to admin-allowed names",
			policy: tenancy.Policy{ExternalNames: []string{"*.partner.example"}},
			docs: []string{
				"apiVersion: v1\nkind: Service\nmetadata: {name: ok, namespace: acme}\nspec: {type: ExternalName, externalName: api.partner.example, ports: [{port: 443}]}\n",
				"apiVersion: v1\nkind: Service\nmetadata: {name: meta, namespace: globex}\nspec: {type: ExternalName, externalName: 169.254.169.254, ports: [{port: 80}]}\n",
				strings.Replace(ing("acme", "a", 1, "a.example.com"), "name: web, port: {number: 80}", "name: ok, port: {number: 443}", 1),
				strings.Replace(ing("globex", "b", 2, "b.example.com"), "name: web, port: {number: 80}", "name: meta, port: {number: 80}", 1),
			},
			want: outcome{hosts: map[string]string{"a.example.com": "acme/a"}, rejections: map[string]string{"globex/b": translate.ReasonExternalName}},
		},
		{
			name: "snippet annotations are refused",
			docs: []string{strings.Replace(ing("acme", "a", 1, "a.example.com"), "metadata: {", "metadata: {annotations: {nginx.ingress.kubernetes.io/configuration-snippet: 'return 200;'}, ", 1)},
			want: outcome{hosts: map[string]string{}, rejections: map[string]string{"acme/a": tenancy.ReasonAnnotationNotAllowed}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			policy := tc.policy
			_, got := runPipeline(t, &policy, append(append([]string(nil), svcs...), tc.docs...)...)
			got.endpoints = nil
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(outcome{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestEndpointDenyList(t *testing.T) {
	policy := &tenancy.Policy{DeniedRanges: append([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, tenancy.AlwaysDenied...),
		NodeAddresses: tenancy.NewAddressSet(netip.MustParseAddr("198.18.9.9"))}
	var docs []string
	for i, addr := range []string{"127.0.0.1", "169.254.169.254", "10.1.2.3", "198.18.9.9", "198.18.0.10"} {
		ns := fmt.Sprintf("t%d", i)
		docs = append(docs, nsService(ns, addr), ing(ns, "app", i, ns+".example.com"))
	}
	_, got := runPipeline(t, policy, docs...)
	want := map[string]int{"main/t0/web/80": 0, "main/t1/web/80": 0, "main/t2/web/80": 0, "main/t3/web/80": 0, "main/t4/web/80": 1}
	if diff := cmp.Diff(want, got.endpoints); diff != "" {
		t.Errorf("endpoints per cluster (-want +got):\n%s", diff)
	}
	for i := range 4 {
		if got.rejections[fmt.Sprintf("t%d/web", i)] != tenancy.ReasonBackendNotAllowed {
			t.Errorf("Service t%d/web: no %s rejection in %v", i, tenancy.ReasonBackendNotAllowed, got.rejections)
		}
	}
}
