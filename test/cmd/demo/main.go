// Command demo runs edgegate's main job on an embedded default: a real kube-apiserver (with etcd)
// holding two sample tenants and their backends, edgegate watching it, and Envoy serving the
// tenants' hosts on 127.0.0.1. It prints the curl commands that reach each app, checks them itself,
// and keeps running until interrupted (or exits after the check with -check).
//
//	make demo            # or: cd test && go run ./cmd/demo
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/edgegate/edgegate/test/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// app is one tenant application: a backend in the test namespace, a Service, an EndpointSlice
// and an Ingress rule.
type app struct {
	tenant, name, host, path string
	tls                      bool
}

var apps = []app{
	{tenant: "acme", name: "shop", host: "shop.acme.example", path: "/"},
	{tenant: "acme", name: "shop-api", host: "shop.acme.example", path: "/api"},
	{tenant: "globex", name: "blog", host: "blog.globex.example", path: "/", tls: true},
}

func run() error {
	check := flag.Bool("check", false, "verify every printed command works, then exit")
	flag.Parse()
	if os.Geteuid() != 0 {
		return errors.New("the demo needs root: its backends live in a network namespace (the apiserver refuses loopback endpoints)")
	}
	dir, err := os.MkdirTemp("", "edgegate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Println("starting kube-apiserver and etcd ...")
	kube, err := harness.StartKube(filepath.Join(dir, "kube"))
	if err != nil {
		return err
	}
	defer kube.Close()
	ns, err := harness.CreateNetns()
	if err != nil {
		return err
	}
	defer ns.Delete()

	ctx := context.Background()
	ca, err := harness.NewCA("edgegate demo CA")
	if err != nil {
		return err
	}
	objs := []runtime.Object{harness.IngressClass("edgegate", harness.IngressController, true)}
	rules := map[string]map[string][]networkingv1.HTTPIngressPath{} // tenant → host → paths
	for _, a := range apps {
		addr, err := ns.NewAddr()
		if err != nil {
			return err
		}
		b, err := ns.StartBackend(a.tenant+"/"+a.name, netipPort(addr))
		if err != nil {
			return err
		}
		defer b.Stop()
		objs = append(objs,
			harness.Service(a.tenant, a.name, harness.ServicePort("http", 80, harness.DefaultBackendPort)),
			harness.EndpointSlice(a.tenant, a.name, a.name+"-1", harness.Ports(harness.EndpointPort("http", harness.DefaultBackendPort)), harness.Endpoint(b.IP(), true)))
		if rules[a.tenant] == nil {
			rules[a.tenant] = map[string][]networkingv1.HTTPIngressPath{}
		}
		rules[a.tenant][a.host] = append(rules[a.tenant][a.host], harness.IngressPath(networkingv1.PathTypePrefix, a.path, a.name, 80))
	}
	for tenant, hosts := range rules {
		var rs []networkingv1.IngressRule
		var tlsHosts []string
		for host, paths := range hosts {
			rs = append(rs, harness.IngressRule(host, paths...))
			for _, a := range apps {
				if a.host == host && a.tls {
					tlsHosts = append(tlsHosts, host)
					break
				}
			}
		}
		ing := harness.Ingress(tenant, "web", "edgegate", rs...)
		if len(tlsHosts) > 0 {
			cert, err := ca.Issue(harness.CertRequest{CommonName: tlsHosts[0], DNSNames: tlsHosts, Server: true})
			if err != nil {
				return err
			}
			objs = append(objs, harness.TLSSecret(tenant, "web-tls", cert))
			ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: tlsHosts, SecretName: "web-tls"}}
		}
		objs = append([]runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenant}}}, objs...)
		objs = append(objs, ing)
	}
	if err := apply(ctx, kube.Client, objs...); err != nil {
		return err
	}

	fmt.Println("building and starting edgegate (Envoy supervised) ...")
	bin, err := harness.BuildEdgegate(dir)
	if err != nil {
		return err
	}
	cfg, err := harness.NewEdgegateConfig(dir, kube.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.Node.Name = "edge-demo"
	eg, err := harness.WriteEdgegate(bin, dir, cfg)
	if err != nil {
		return err
	}
	if err := eg.StartAndWait(); err != nil {
		return fmt.Errorf("%w\n%s", err, eg.Logs())
	}
	defer eg.Stop()

	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.CertPEM, 0o644); err != nil {
		return err
	}
	httpAddr, httpsAddr := harness.ListenerAddr(cfg, "http"), harness.ListenerAddr(cfg, "https")
	client := &harness.Client{HTTPAddr: httpAddr, HTTPSAddr: httpsAddr, Roots: ca.Pool()}
	fmt.Printf("\nedgegate is serving two tenants (acme, globex) from a real apiserver (kubeconfig: %s)\n", kube.Kubeconfig)
	fmt.Printf("admin API: curl http://%s/status\n\ntry:\n", cfg.Admin.Address)
	var failed []string
	for _, a := range apps {
		path := a.path
		if path == "/api" {
			path = "/api/orders"
		}
		fmt.Printf("  curl -s -H 'Host: %s' http://%s%s\n", a.host, httpAddr, path)
		if err := expect(client.Get, a, path); err != nil {
			failed = append(failed, err.Error())
		}
		if a.tls {
			_, port, _ := splitHostPort(httpsAddr)
			fmt.Printf("  curl -s --cacert %s --resolve %s:%s:127.0.0.1 https://%s:%s%s\n", caPath, a.host, port, a.host, port, path)
			if err := expect(func(host, p string) (*harness.Response, error) { return client.GetTLS(host, host, p) }, a, path); err != nil {
				failed = append(failed, err.Error())
			}
		}
	}
	fmt.Printf("  curl -s -o /dev/null -w '%%{http_code}\\n' -H 'Host: nobody.example' http://%s/   # 404: no tenant owns it\n", httpAddr)
	if err := client.CheckStatus("nobody.example", "/", 404); err != nil {
		failed = append(failed, "nobody.example: "+err.Error())
	}
	if len(failed) > 0 {
		return fmt.Errorf("self-check failed:\n%v", failed)
	}
	fmt.Println("\nself-check: every command above answered from the right backend")
	if *check {
		return nil
	}
	fmt.Println("press Ctrl-C to stop")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}

// expect polls until the app answers from its backend (Envoy applies xDS asynchronously).
func expect(get func(host, path string) (*harness.Response, error), a app, path string) error {
	want := a.tenant + "/" + a.name
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := get(a.host, path)
		if err == nil && r.Backend() == want {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%s%s: %v", a.host, path, err)
			}
			return fmt.Errorf("%s%s: got %s, want backend %s", a.host, path, r, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
