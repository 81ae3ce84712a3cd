package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/edgegate/edgegate/test/harness"
)

const prefix = networkingv1.PathTypePrefix

// env is one test's world: the cluster and edgegate it attacks, a network namespace for the
// tenants' backends, and a client for Envoy's listeners.
type env struct {
	t      *testing.T
	ctx    context.Context
	kube   kubernetes.Interface
	eg     *harness.Edgegate
	net    *harness.Netns
	client *harness.Client
	class  string // IngressClass of the tenants' Ingresses
}

// newEnv uses the package's shared apiserver and edgegate.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, shared.kube, shared.edgegate, shared.client)
}

func newEnvOn(t *testing.T, k *harness.Kube, eg *harness.Edgegate, c *harness.Client) *env {
	t.Helper()
	return &env{t: t, ctx: context.Background(), kube: k.Client, eg: eg, net: harness.NewNetns(t), client: c, class: className}
}

// tenant is one namespace (and so, without the tenant label, one tenant).
type tenant struct {
	e  *env
	ns string
}

// tenant creates a namespace named after the test and role.
func (e *env) tenant(role string) *tenant {
	e.t.Helper()
	name := strings.Trim(nonDNS(strings.ToLower(e.t.Name())), "-")
	if len(name) > 30 {
		name = strings.Trim(name[:30], "-")
	}
	return e.tenantNamed(role+"-"+name+"-"+harness.RandomSuffix(), nil)
}

// tenantNamed creates namespace ns with labels. nil labels make it a tenant of its own name: the
// cluster groups namespaces by tenantLabel, and an unlabelled namespace is a tenant without a name
// for the {tenant} suffix, so ordinary tenants here carry their own name as label value. Pass an
// empty map for a namespace without the label.
func (e *env) tenantNamed(ns string, labels map[string]string) *tenant {
	e.t.Helper()
	if labels == nil {
		labels = map[string]string{tenantLabel: ns}
	}
	_, err := e.kube.CoreV1().Namespaces().Create(e.ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create namespace %s: %v", ns, err)
	}
	return &tenant{e: e, ns: ns}
}

func nonDNS(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// free is a host under the shared first-come suffix, unique to this tenant's namespace.
func (tn *tenant) free(label string) string { return label + "." + tn.ns + "." + freeSuffix }

// own is a host under the tenant's own suffix ({tenant}.apps.test).
func (tn *tenant) own(label string) string { return label + "." + tn.ns + ".apps.test" }

// service starts a backend called name and publishes it as Service name (port "http" 80 →
// DefaultBackendPort) with one ready endpoint.
func (tn *tenant) service(name string) *harness.Backend {
	tn.e.t.Helper()
	b := tn.e.net.Backend(tn.e.t, name)
	tn.create(harness.Service(tn.ns, name, harness.ServicePort("http", 80, b.Port())))
	tn.create(harness.EndpointSlice(tn.ns, name, name+"-1",
		harness.Ports(harness.EndpointPort("http", b.Port())), harness.Endpoint(b.IP(), true)))
	return b
}

// create creates an object in the cluster, failing the test if the apiserver refuses it.
func (tn *tenant) create(obj runtime.Object) {
	tn.e.t.Helper()
	if err := tn.tryCreate(obj); err != nil {
		tn.e.t.Fatalf("create %T: %v", obj, err)
	}
}

// tryCreate creates an object and returns the apiserver's answer.
func (tn *tenant) tryCreate(obj runtime.Object) error {
	e := tn.e
	var err error
	switch o := obj.(type) {
	case *corev1.Service:
		_, err = e.kube.CoreV1().Services(o.Namespace).Create(e.ctx, o, metav1.CreateOptions{})
	case *corev1.Secret:
		_, err = e.kube.CoreV1().Secrets(o.Namespace).Create(e.ctx, o, metav1.CreateOptions{})
	case *discoveryv1.EndpointSlice:
		_, err = e.kube.DiscoveryV1().EndpointSlices(o.Namespace).Create(e.ctx, o, metav1.CreateOptions{})
	case *networkingv1.Ingress:
		_, err = e.kube.NetworkingV1().Ingresses(o.Namespace).Create(e.ctx, o, metav1.CreateOptions{})
	default:
		return fmt.Errorf("create: unsupported type %T", obj)
	}
	return err
}

// ingress creates an Ingress of the package's class.
func (tn *tenant) ingress(name string, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	tn.e.t.Helper()
	ing := harness.Ingress(tn.ns, name, tn.e.class, rules...)
	tn.create(ing)
	return ing
}

// route is a rule for host with one Prefix path to svc port 80.
func route(host, path, svc string) networkingv1.IngressRule {
	return harness.IngressRule(host, harness.IngressPath(prefix, path, svc, 80))
}

// waitServed waits until host+path is answered by backend want.
func (e *env) waitServed(host, path, want string) {
	e.t.Helper()
	e.client.WaitBackend(e.t, host, path, want)
}

// expectServed checks with one request that host+path is answered by backend want.
func (e *env) expectServed(host, path, want string) {
	e.t.Helper()
	if err := e.client.CheckBackend(host, path, want); err != nil {
		e.t.Error(err)
	}
}

// expectNotFrom checks with one request that host+path is not answered by any of the named
// backends (Envoy answers itself, or another backend that is allowed to).
func (e *env) expectNotFrom(host, path string, backends ...string) {
	e.t.Helper()
	r, err := e.client.Get(host, path)
	if err != nil {
		e.t.Error(err)
		return
	}
	for _, b := range backends {
		if r.Backend() == b {
			e.t.Errorf("GET %s%s: answered by %q: %s", host, path, b, r)
		}
	}
}

// expectStatus checks with one request that Envoy itself answers host+path with status.
func (e *env) expectStatus(host, path string, status int) {
	e.t.Helper()
	if err := e.client.CheckStatus(host, path, status); err != nil {
		e.t.Error(err)
	}
}

// untouched checks that no request reached the attacker's backends.
func (e *env) untouched(backends ...*harness.Backend) {
	e.t.Helper()
	for _, b := range backends {
		if n := b.Requests(); n != 0 {
			e.t.Errorf("attacker's backend %q served %d requests, want 0", b.Name, n)
		}
	}
}

// guard keeps requesting host+path while an attack runs (one request every guardInterval,
// bounded in count and time); end stops it and fails the test unless every request reached
// backend want.
type guard struct {
	e    *env
	what string
	stop chan struct{}
	done chan harness.LoadResult
	once sync.Once
}

// Bounds of a guard loop: 20 requests a second, at least guardMin of them (so the victim is
// watched for a while after the attacker's rejection, not just until it), never more than
// guardMax or guardTime.
const (
	guardInterval = 50 * time.Millisecond
	guardMin      = 20
	guardMax      = 2000
	guardTime     = 90 * time.Second
)

func (e *env) guard(host, path, want string) *guard {
	e.t.Helper()
	e.waitServed(host, path, want)
	g := &guard{e: e, what: host + path + " -> " + want, stop: make(chan struct{}), done: make(chan harness.LoadResult, 1)}
	go func() {
		var res harness.LoadResult
		deadline := time.Now().Add(guardTime)
		stopped := false
		for res.Sent < guardMax && time.Now().Before(deadline) && !(stopped && res.Sent >= guardMin) {
			res.Sent++
			if err := e.client.CheckBackend(host, path, want); err != nil {
				res.Failures++
				if len(res.Errors) < 10 {
					res.Errors = append(res.Errors, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
			}
			if stopped {
				time.Sleep(guardInterval) // pacing of a bounded loop, not synchronisation
				continue
			}
			select {
			case <-g.stop:
				stopped = true
			case <-time.After(guardInterval):
			}
		}
		g.done <- res
	}()
	e.t.Cleanup(g.end) // a test that fails early still stops its loop
	return g
}

// end stops the loop (after at least guardMin requests) and checks it.
func (g *guard) end() {
	g.once.Do(func() {
		close(g.stop)
		res := <-g.done
		g.e.t.Logf("victim %s: %d requests during the attack, %d failed", g.what, res.Sent, res.Failures)
		if res.Failures != 0 {
			g.e.t.Errorf("victim %s: %d of %d requests failed during the attack: %v", g.what, res.Failures, res.Sent, res.Errors)
		}
	})
}

// waitReason waits for a Warning Event with reason on the tenant's Ingress and for the same
// rejection in edgegate's /status, and returns the Event's message.
func (tn *tenant) waitReason(ingress, reason string) string {
	tn.e.t.Helper()
	return tn.waitObjectReason("Ingress", ingress, reason)
}

func (tn *tenant) waitObjectReason(kind, name, reason string) string {
	e := tn.e
	e.t.Helper()
	var msg string
	harness.Eventually(e.t, harness.DefaultTimeout, fmt.Sprintf("wait for a %s Warning Event on %s %s/%s", reason, kind, tn.ns, name), func() error {
		evs, err := harness.EventsFor(e.ctx, e.kube, tn.ns, kind, name)
		if err != nil {
			return err
		}
		var seen []string
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == reason {
				msg = ev.Message
				return nil
			}
			seen = append(seen, ev.Type+" "+ev.Reason)
		}
		return fmt.Errorf("events on %s %s/%s: %v", kind, tn.ns, name, seen)
	})
	harness.Eventually(e.t, harness.DefaultTimeout, fmt.Sprintf("wait for %s %s/%s in /status with reason %s", kind, tn.ns, name, reason), func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, r := range st.Gateway.Rejections {
			if r.Object.Kind == kind && r.Object.Namespace == tn.ns && r.Object.Name == name {
				if r.Reason != reason {
					return fmt.Errorf("/status rejects %s %s/%s with %s (%s), want %s", kind, tn.ns, name, r.Reason, r.Message, reason)
				}
				return nil
			}
		}
		return fmt.Errorf("%s %s/%s not among the rejections in /status", kind, tn.ns, name)
	})
	e.t.Logf("%s %s/%s rejected: %s: %s", kind, tn.ns, name, reason, msg)
	return msg
}

// notRejected checks that /status does not list the tenant's object (it is served).
func (tn *tenant) notRejected(kind, name string) {
	e := tn.e
	e.t.Helper()
	st, err := e.status()
	if err != nil {
		e.t.Error(err)
		return
	}
	for _, r := range st.Gateway.Rejections {
		if r.Object.Kind == kind && r.Object.Namespace == tn.ns && r.Object.Name == name {
			e.t.Errorf("%s %s/%s is rejected (%s: %s), want it served", kind, tn.ns, name, r.Reason, r.Message)
		}
	}
}

// status is the part of edgegate's GET /status the tests read.
type status struct {
	Ready   bool `json:"ready"`
	Gateway struct {
		Rejections []struct {
			Object struct {
				Kind      string `json:"kind"`
				Namespace string `json:"namespace"`
				Name      string `json:"name"`
			} `json:"object"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"rejections"`
	} `json:"gateway"`
	XDS struct {
		Rejected      map[string]int
		LastRejection string
	} `json:"xds"`
}

func (e *env) status() (*status, error) {
	body, code, err := e.eg.Admin("/status")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("GET /status: %d %s", code, body)
	}
	var st status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("decode /status: %w", err)
	}
	return &st, nil
}

// nacks is how many updates Envoy has rejected so far.
func (e *env) nacks() int {
	e.t.Helper()
	st, err := e.status()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, v := range st.XDS.Rejected {
		n += v
	}
	return n
}

// notInEnvoy checks that none of the addresses appears anywhere in Envoy's configuration
// (clusters, endpoints, routes): the attacker's target never became something Envoy could dial.
func (e *env) notInEnvoy(targets ...string) {
	e.t.Helper()
	dump, err := e.eg.EnvoyConfigDump()
	if err != nil {
		e.t.Error(err)
		return
	}
	for _, a := range targets {
		if strings.Contains(dump, `"`+a+`"`) {
			e.t.Errorf("Envoy's configuration contains the attacker's target %s", a)
		}
	}
}

// privateEnv starts an edgegate of its own (with the suite's policy) answering to a fresh
// IngressClass named class, for tests that restart edgegate or flood it, so the shared one keeps
// serving the other tests. The edgegate stops when the test ends.
func privateEnv(t *testing.T, class string) (*env, *harness.Edgegate) {
	t.Helper()
	controller := "edgegate.io/" + class
	if _, err := shared.kube.Client.NetworkingV1().IngressClasses().Create(context.Background(),
		harness.IngressClass(class, controller, false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := harness.NewEdgegateConfig(t.TempDir(), shared.kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Ingress.Controller = controller
	applyPolicy(&cfg)
	eg := harness.NewEdgegate(t, shared.bin, cfg)
	if err := eg.StartAndWait(); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, shared.kube, eg, newClient(cfg))
	e.class = class
	return e, eg
}
