package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/bgp"
	"github.com/edgegate/edgegate/bgp/bgplab"
	"github.com/edgegate/edgegate/test/harness"
	"github.com/edgegate/edgegate/vip"
)

// Inside every node namespace the daemon uses the same loopback ports: each namespace has a
// loopback of its own.
const (
	nodeXDS        = "127.0.0.1:18000"
	nodeEnvoyAdmin = "127.0.0.1:19000"
	nodeAdmin      = "127.0.0.1:19100"
	gossipPort     = 7946
	gossipSecret   = "edge-test-gossip-secret"
	backendPort    = 8080
	// requestPath is what the client asks for; the backend echoes it.
	requestPath = "/edge"
)

// lab is one test's network: node namespaces, a client namespace holding the backend, and the
// Kubernetes objects that route the test's host to that backend.
type lab struct {
	t       *testing.T
	L       *bgplab.Lab
	client  string     // client namespace
	vip     netip.Addr // the one VIP of the pool
	kubeNS  string
	host    string
	backend *harness.Backend
	nodes   []*node
}

// newLab creates the lab's namespace set (tb cleanup removes it) and the Kubernetes namespace.
func newLab(t *testing.T, vipAddr netip.Addr) *lab {
	t.Helper()
	bgplab.Skip(t)
	l := &lab{t: t, L: bgplab.New(t), vip: vipAddr, kubeNS: harness.NewNamespace(t, shared.kube.Client)}
	l.host = "app." + l.kubeNS + ".test"
	return l
}

// serveBackend starts the backend on addr (already on an interface of the client namespace) and
// publishes it as Service app, with an Ingress routing the lab's host to it.
func (l *lab) serveBackend(addr netip.Addr) {
	t := l.t
	t.Helper()
	b, err := harness.StartBackendInNetns(l.client, "app", netip.AddrPortFrom(addr, backendPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	l.backend = b
	ctx, c := context.Background(), shared.kube.Client
	if _, err := c.CoreV1().Services(l.kubeNS).Create(ctx,
		harness.Service(l.kubeNS, "app", harness.ServicePort("http", 80, backendPort)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DiscoveryV1().EndpointSlices(l.kubeNS).Create(ctx, harness.EndpointSlice(l.kubeNS, "app", "app-1",
		harness.Ports(harness.EndpointPort("http", backendPort)), harness.Endpoint(addr.String(), true)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ing := harness.Ingress(l.kubeNS, "app", className,
		harness.IngressRule(l.host, harness.IngressPath(networkingv1.PathTypePrefix, "/", "app", 80)))
	if _, err := c.NetworkingV1().Ingresses(l.kubeNS).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// node is one edge node: a namespace with eth0, an apiserver forwarder, and an edgegate daemon
// (started in the namespace, supervising its Envoy) whose configuration is written by the test.
type node struct {
	t      *testing.T
	name   string
	ns     string
	addr   netip.Addr // on eth0
	eg     *harness.Edgegate
	http   *http.Client // connections opened inside ns
	mu     sync.Mutex
	proc   *harness.Process
	envoys []int // pids of the supervised Envoys seen (own process group, so tracked by pid)
}

// addNode creates namespace name (eth0 is attached by the caller), the apiserver forwarder, and
// the node's directory.
func (l *lab) addNode(name string) *node {
	t := l.t
	t.Helper()
	ns := l.L.NS(name)
	u, err := url.Parse(shared.kube.URL)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := harness.ForwardIntoNetns(ns, u.Host, u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })
	n := &node{t: t, name: name, ns: ns, http: harness.NetnsHTTPClient(ns, 2*time.Second)}
	l.nodes = append(l.nodes, n)
	return n
}

// baseConfig is a daemon configuration for n: one HTTP listener on the VIP (freebind, so Envoy
// binds it before the VIP arrives), loopback ports inside n's namespace, status addresses defaulting
// to the VIPs, Envoy supervised with a short drain.
func (l *lab) baseConfig(n *node, dir string) harness.EdgegateConfig {
	cfg, err := harness.NewEdgegateConfig(dir, shared.kube.Kubeconfig)
	if err != nil {
		l.t.Fatal(err)
	}
	cfg.Node = config.Node{Name: n.name, Labels: map[string]string{"edge.test/node": n.name}}
	cfg.Listeners = []config.Listener{{Name: "http", Address: l.vip.String(), Port: 80, Protocol: config.HTTP}}
	cfg.Ingress.StatusAddresses = nil
	cfg.XDS.Address = nodeXDS
	cfg.Envoy.AdminAddress = nodeEnvoyAdmin
	cfg.Envoy.ExtraArgs = []string{"--log-level", "warn"}
	cfg.Admin.Address = nodeAdmin
	return cfg
}

// withDeadCluster adds a second cluster whose apiserver never answers (nothing listens on its
// port inside the node namespace) and a startup grace longer than any test: the node never gets
// its first complete configuration, so it must stay unfit.
func (l *lab) withDeadCluster(cfg *harness.EdgegateConfig, dir string) {
	data, err := os.ReadFile(shared.kube.Kubeconfig)
	if err != nil {
		l.t.Fatal(err)
	}
	u, _ := url.Parse(shared.kube.URL)
	dead := strings.ReplaceAll(string(data), u.Host, "127.0.0.1:1")
	path := filepath.Join(dir, "dead.kubeconfig")
	if err := os.WriteFile(path, []byte(dead), 0o600); err != nil {
		l.t.Fatal(err)
	}
	cfg.Clusters = append(cfg.Clusters, config.Cluster{Name: "dead", Kubeconfig: path, EndpointMode: config.EndpointsPod})
	cfg.Ingress.StartupGrace = config.Duration{Duration: time.Hour}
}

// write writes n's configuration (checked by the daemon's own parser) and registers n's stop.
func (n *node) write(t *testing.T, cfg harness.EdgegateConfig, dir string) {
	t.Helper()
	eg, err := harness.WriteEdgegate(shared.bin, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := n.eg == nil
	n.eg = eg
	if first {
		n.t.Cleanup(func() {
			if n.t.Failed() {
				n.t.Logf("node %s:\n%s", n.name, n.eg.Logs())
			}
			n.forceStop()
		})
	}
}

// yamlInto decodes YAML text into v (for the vip and bgp sections, which are MetalLB objects).
func yamlInto(t *testing.T, text string, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(text), v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, text)
	}
}

func vipConfig(t *testing.T, text string) *vip.Config {
	var c vip.Config
	yamlInto(t, text, &c)
	return &c
}

func bgpConfig(t *testing.T, text string) *bgp.Config {
	var c bgp.Config
	yamlInto(t, text, &c)
	return &c
}

// start runs `edgegate run` inside n's namespace.
func (n *node) start() error {
	p, err := harness.StartProcessInNetns(n.ns, "edgegate-"+n.name, n.eg.LogPath,
		exec.Command(shared.bin, "run", "--config", n.eg.ConfigPath))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	return nil
}

// restart starts n and waits until it is fit.
func (n *node) restart(t *testing.T) {
	t.Helper()
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	if err := n.waitReady(); err != nil {
		t.Fatal(err)
	}
}

// running: the daemon was started and has not exited.
func (n *node) running() bool {
	p := n.process()
	if p == nil {
		return false
	}
	exited, _ := p.Exited()
	return !exited
}

func (n *node) process() *harness.Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// get fetches a path from the daemon's admin API.
func (n *node) get(addr, path string) (string, int, error) {
	resp, err := n.http.Get("http://" + addr + path)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// nodeReadyTimeout covers informer sync, Envoy start and the first xDS push for several daemons
// starting at once on a 2-core machine.
const nodeReadyTimeout = 60 * time.Second

// waitReady waits for /readyz = 200 (the node is fit) and records its Envoy's pid.
func (n *node) waitReady() error {
	err := harness.Poll(nodeReadyTimeout, func() error {
		if exited, err := n.process().Exited(); exited {
			return fmt.Errorf("edgegate exited: %v", err)
		}
		body, code, err := n.get(nodeAdmin, "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz %d %s", code, strings.TrimSpace(body))
		}
		// The daemon hands its readiness to vip and bgp on its next poll: wait for that too.
		st, err := n.status()
		if err != nil {
			return err
		}
		if v := st.Edge.VIP; v != nil && !v.Fit {
			return fmt.Errorf("vip not fit yet: %s", v.Reason)
		}
		if b := st.Edge.BGP; b != nil && !b.Fit {
			return fmt.Errorf("bgp not fit yet: %s", b.Reason)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("node %s not ready: %w\n%s", n.name, err, n.eg.Logs())
	}
	n.trackEnvoy()
	return nil
}

// status is the part of GET /status the tests read.
type status struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
	Edge   struct {
		VIP *struct {
			Ready   bool   `json:"ready"`
			Fit     bool   `json:"fit"`
			Reason  string `json:"reason"`
			Members []struct {
				Name   string `json:"name"`
				Fit    bool   `json:"fit"`
				Reason string `json:"reason"`
			} `json:"members"`
			VIPs []struct {
				Addr  string `json:"addr"`
				Owner string `json:"owner"`
				Held  bool   `json:"held"`
			} `json:"vips"`
		} `json:"vip"`
		BGP *struct {
			Fit       bool     `json:"fit"`
			Reason    string   `json:"reason"`
			Phase     string   `json:"phase"`
			Announced []string `json:"announced"`
			Peers     []struct {
				Address string `json:"address"`
				State   string `json:"state"`
			} `json:"peers"`
		} `json:"bgp"`
	} `json:"edge"`
}

func (n *node) status() (status, error) {
	var st status
	body, code, err := n.get(nodeAdmin, "/status")
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("/status: %d", code)
	}
	return st, json.Unmarshal([]byte(body), &st)
}

// trackEnvoy records the pids of the daemon's children (its supervised Envoy runs in a process
// group of its own, so the harness's group kill does not reach it).
func (n *node) trackEnvoy() {
	p := n.process()
	if p == nil {
		return
	}
	for _, pid := range childPids(p.Pid()) {
		n.mu.Lock()
		if !slices.Contains(n.envoys, pid) {
			n.envoys = append(n.envoys, pid)
		}
		n.mu.Unlock()
	}
}

// envoyAlive lists the tracked Envoy pids still running.
func (n *node) envoyAlive() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []int
	for _, pid := range n.envoys {
		if alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// stop sends SIGTERM and waits for a clean exit: exit status 0, no process left in its group, and
// its Envoy stopped.
func (n *node) stop() error {
	n.trackEnvoy()
	p := n.process()
	if p == nil {
		return nil
	}
	if err := p.Stop(30 * time.Second); err != nil {
		return err
	}
	if _, err := p.Exited(); err != nil {
		return fmt.Errorf("edgegate %s exited with %v", n.name, err)
	}
	if p.GroupAlive() {
		return fmt.Errorf("edgegate %s left processes in its group", n.name)
	}
	if pids := n.envoyAlive(); len(pids) > 0 {
		return fmt.Errorf("edgegate %s exited but its envoy %v still runs", n.name, pids)
	}
	return nil
}

// kill sends SIGKILL to the daemon alone, as a crash would.
func (n *node) kill() error {
	n.trackEnvoy()
	p := n.process()
	if p == nil {
		return nil
	}
	return p.Kill()
}

// systemdStopPost does what systemd does after the main process died: kill what is left of the
// unit (here: the Envoy, if its parent-death signal did not end it), then run ExecStopPost
// (`edgegate cleanup`).
func (n *node) systemdStopPost() error {
	for _, pid := range n.envoyAlive() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	out, err := exec.Command("ip", "netns", "exec", n.ns, shared.bin, "cleanup", "--config", n.eg.ConfigPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("edgegate cleanup in %s: %w: %s", n.ns, err, out)
	}
	return nil
}

// forceStop is the cleanup: SIGTERM with grace, then SIGKILL of everything the node started.
func (n *node) forceStop() {
	if p := n.process(); p != nil {
		if exited, _ := p.Exited(); !exited {
			if err := n.stop(); err != nil {
				n.t.Errorf("stop %s: %v", n.name, err)
			}
		}
		p.KillGroup()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, pid := range n.envoys {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// childPids lists the processes whose parent is pid.
func childPids(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// alive: the pid exists and is not a zombie waiting for its parent.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// hasAddr reports whether address a is on interface ifname in namespace ns.
func hasAddr(ns, ifname string, a netip.Addr) (bool, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return false, fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return false, err
	}
	defer nl.Close()
	link, err := nl.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("%s in %s: %w", ifname, ns, err)
	}
	addrs, err := nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return false, err
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a {
			return true, nil
		}
	}
	return false, nil
}

// holders lists the nodes that have the VIP on ifname.
func (l *lab) holders(ifname string) ([]*node, error) {
	var out []*node
	for _, n := range l.nodes {
		ok, err := hasAddr(n.ns, ifname, l.vip)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// noVIPLeft checks that no node has the VIP on eth0 or lo.
func (l *lab) noVIPLeft() error {
	for _, ifname := range []string{"eth0", "lo"} {
		h, err := l.holders(ifname)
		if err != nil {
			return err
		}
		if len(h) > 0 {
			return fmt.Errorf("VIP %s still on %s of %s", l.vip, ifname, names(h))
		}
	}
	return nil
}

func names(ns []*node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.name)
	}
	return out
}

// outcome is one client request.
type outcome struct {
	start, end time.Time
	err        error // nil: 200 from the backend
	reset      bool  // the connection was reset or closed before any response byte
	retried    bool  // the first attempt was reset before any response byte and retried once
}

// request sends one GET for the lab's host to the VIP from the client namespace over a new
// connection, and checks that the backend answered it.
func (l *lab) request(c *http.Client) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(l.vip.String(), "80")+requestPath, nil)
	if err != nil {
		return err
	}
	req.Host = l.host
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	var echo harness.Echo
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &echo) != nil || echo.Backend != "app" || echo.Path != requestPath {
		return fmt.Errorf("got %d %q, want 200 from backend app", resp.StatusCode, body)
	}
	return nil
}

// isReset: the connection was reset or closed before a response arrived (the client's Do failed
// after connecting: ECONNRESET, EOF). These are what a moved VIP or a rehashed ECMP flow causes.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "server closed")
}

// loadOpts bound a client loop in count and time.
type loadOpts struct {
	count    int
	interval time.Duration
	maxTime  time.Duration
	timeout  time.Duration // per request
	// retryReset retries a request once when its connection was reset before any response byte
	// (what an HTTP client does for an idempotent request; vip/README.md "In-flight TCP connections").
	retryReset bool
}

// loadRun is a client loop running in the background: requests one after another (a new
// connection each) until stopped, count requests were sent, or maxTime passed.
type loadRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	out    []outcome
}

func (l *lab) startLoad(o loadOpts) *loadRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &loadRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		c := harness.NetnsHTTPClient(l.client, o.timeout)
		deadline := time.Now().Add(o.maxTime)
		tick := time.NewTicker(o.interval)
		defer tick.Stop()
		for sent := 0; sent < o.count && time.Now().Before(deadline); sent++ {
			oc := outcome{start: time.Now()}
			oc.err = l.request(c)
			if oc.err != nil && o.retryReset && isReset(oc.err) {
				oc.retried = true
				oc.err = l.request(c)
			}
			oc.reset = oc.err != nil && isReset(oc.err)
			oc.end = time.Now()
			r.mu.Lock()
			r.out = append(r.out, oc)
			r.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

// outcomes so far.
func (r *loadRun) outcomes() []outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.out)
}

// waitOK waits (up to timeout) until n requests that started at or after t succeeded.
func (r *loadRun) waitOK(t time.Time, n int, timeout time.Duration) error {
	return harness.Poll(timeout, func() error {
		ok := 0
		for _, o := range r.outcomes() {
			if !o.start.Before(t) && o.err == nil {
				ok++
			}
		}
		if ok >= n {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("load loop ended with %d of %d successful requests since %s", ok, n, t.Format("15:04:05.000"))
		default:
			return fmt.Errorf("%d of %d successful requests since %s", ok, n, t.Format("15:04:05.000"))
		}
	})
}

// stopAfter waits (up to timeout) until n requests that started at or after t succeeded, then
// stops the loop and returns every outcome. The loop ends by itself at its bounds too.
func (r *loadRun) stopAfter(t time.Time, n int, timeout time.Duration) []outcome {
	_ = r.waitOK(t, n, timeout)
	r.cancel()
	<-r.done
	return r.outcomes()
}

// summary counts outcomes.
type summary struct {
	sent, ok, failed, resets, retried int
	errs                              []string
}

func summarize(out []outcome) summary {
	var s summary
	for _, o := range out {
		s.sent++
		if o.retried {
			s.retried++
		}
		switch {
		case o.err == nil:
			s.ok++
		default:
			s.failed++
			if o.reset {
				s.resets++
			}
			if len(s.errs) < 8 {
				s.errs = append(s.errs, o.start.Format("15:04:05.000")+" "+o.err.Error())
			}
		}
	}
	return s
}

// interruption finds, among requests that started at or after from, the first failed one and the
// first success after it: the start of the one and the end of the other. firstFail is zero when
// none failed; ok is false when traffic never came back.
func interruption(out []outcome, from time.Time) (firstFail, recovered time.Time, ok bool) {
	for _, o := range out {
		if o.start.Before(from) {
			continue
		}
		if o.err != nil && firstFail.IsZero() {
			firstFail = o.start
		}
		if o.err == nil && !firstFail.IsZero() {
			return firstFail, o.end, true
		}
	}
	return firstFail, time.Time{}, firstFail.IsZero()
}

// waitServed waits until the client gets the backend's answer through the VIP.
func (l *lab) waitServed(t *testing.T, timeout time.Duration) {
	t.Helper()
	c := harness.NetnsHTTPClient(l.client, 2*time.Second)
	harness.Eventually(t, timeout, "request through the VIP", func() error { return l.request(c) })
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stopAll stops every running daemon at once (SIGTERM, clean exit).
func (l *lab) stopAll(t *testing.T) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(l.nodes))
	for i, n := range l.nodes {
		if !n.running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.stop()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("stop %s: %v", l.nodes[i].name, err)
		}
	}
}
