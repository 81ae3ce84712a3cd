package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/test/harness"
)

// controller is one Ingress controller under test, run as a process of its own beside an Envoy
// the bench runs from the controller's bootstrap.
type controller interface {
	name() string
	// className is the IngressClass the generated Ingresses carry.
	className() string
	// prepare installs what the controller needs in a fresh apiserver (IngressClass, CRDs).
	prepare(ctx context.Context, kube *harness.Kube, c kubernetes.Interface) error
	// start starts the controller process (configuration written into dir).
	start(dir string, kube *harness.Kube) error
	// xdsAddr is host:port of its xDS server; it opens when the controller has a configuration.
	xdsAddr() string
	// bootstrap writes (or finds) Envoy's bootstrap and returns its path, Envoy's admin address
	// (host:port or unix socket path) and the name of the bootstrap's xDS cluster in Envoy stats.
	bootstrap(dir string) (path, admin, xdsStatName string, err error)
	// describe names the controller and its version, for the table.
	describe() string
	// envoyArgs are extra Envoy flags the controller's deployment passes.
	envoyArgs() []string
	// process is the controller's process.
	process() *harness.Process
	// httpAddr is Envoy's plain-HTTP listener, as the controller configures it.
	httpAddr() string
	pid() int
	// heapInuse is the Go heap in use (go_memstats_heap_inuse_bytes).
	heapInuse() (float64, error)
	// xdsSentBytes is the controller's own count of xDS bytes sent, if it has one.
	xdsSentBytes() (float64, error)
	stop()
}

var metricsClient = &http.Client{Timeout: 30 * time.Second}

// edgegateController runs the edgegate daemon from this repository with `envoy.mode: external`.
type edgegateController struct {
	bin     string
	version string // commit the binary was built from (+"-dirty" with uncommitted changes)
	// memoryLimit is the daemon's memoryLimit setting ("": none, Go's default GC pacing).
	memoryLimit string
	cfg         harness.EdgegateConfig
	eg          *harness.Edgegate
}

func (e *edgegateController) name() string      { return "edgegate" }
func (e *edgegateController) className() string { return "edgegate" }

func (e *edgegateController) prepare(ctx context.Context, kube *harness.Kube, c kubernetes.Interface) error {
	if e.bin == "" {
		// Built here, not in start: the cold start must not include a go build.
		bin, err := harness.BuildEdgegate(filepath.Dir(kube.Dir))
		if err != nil {
			return err
		}
		e.bin, e.version = bin, treeVersion()
	}
	_, err := c.NetworkingV1().IngressClasses().Create(ctx,
		harness.IngressClass("edgegate", harness.IngressController, false), metav1.CreateOptions{})
	return err
}

func (e *edgegateController) start(dir string, kube *harness.Kube) error {
	cfg, err := harness.NewEdgegateConfig(dir, kube.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.Node.Name = "edge-bench"
	cfg.Envoy.Mode = config.EnvoyExternal // the bench runs Envoy, to measure it apart
	// The bench puts up to routes/100 hosts in one namespace; tenant quotas are not what it measures.
	cfg.Tenancy.Quota = config.Quota{MaxRoutes: -1, MaxHosts: -1, MaxCertificates: -1}
	// The sweep after the cold start uses every route once, and every backend in use keeps a pooled
	// connection until it idles out: at 100k routes more descriptors than this sandbox's 20000
	// (which root cannot raise here) for Envoy and for the backends this process serves.
	cfg.Limits.Backend.IdleTimeout = config.Duration{Duration: 2 * time.Second}
	cfg.MemoryLimit = e.memoryLimit
	e.cfg = cfg
	e.eg, err = harness.WriteEdgegate(e.bin, dir, cfg)
	if err != nil {
		return err
	}
	return e.eg.Start()
}

// describe says which edgegate was measured: the tree changes while engineers work in it.
func (e *edgegateController) describe() string {
	if e.memoryLimit != "" {
		return "edgegate " + e.version + " (memoryLimit " + e.memoryLimit + ")"
	}
	return "edgegate " + e.version
}

// treeVersion is the repository's HEAD commit, with "-dirty" if the working tree has changes
// (the binary is built from the working tree).
func treeVersion() string {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "(unknown commit)"
	}
	root := strings.TrimSpace(string(top))
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "(unknown commit)"
	}
	v := strings.TrimSpace(string(out))
	// Changes under test/ do not reach the daemon binary.
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--", ".", ":(exclude)test").Output()
	if err == nil && len(st) > 0 {
		v += "-dirty"
	}
	return v
}

func (e *edgegateController) xdsAddr() string           { return e.cfg.XDS.Address }
func (e *edgegateController) httpAddr() string          { return harness.ListenerAddr(e.cfg, "http") }
func (e *edgegateController) pid() int                  { return e.eg.Process().Pid() }
func (e *edgegateController) process() *harness.Process { return e.eg.Process() }
func (e *edgegateController) envoyArgs() []string       { return nil }

func (e *edgegateController) bootstrap(string) (string, string, string, error) {
	// edgegate writes the bootstrap first thing at start, before it opens the xDS port.
	if _, err := os.Stat(e.cfg.Envoy.BootstrapPath); err != nil {
		return "", "", "", fmt.Errorf("edgegate bootstrap: %w", err)
	}
	return e.cfg.Envoy.BootstrapPath, e.cfg.Envoy.AdminAddress, "edgegate-xds", nil
}

func (e *edgegateController) heapInuse() (float64, error) {
	return promSum(metricsClient, "http://"+e.cfg.Admin.Address+"/metrics", "go_memstats_heap_inuse_bytes")
}

func (e *edgegateController) xdsSentBytes() (float64, error) {
	return promSum(metricsClient, "http://"+e.cfg.Admin.Address+"/metrics", "edgegate_xds_sent_bytes_total")
}

func (e *edgegateController) stop() {
	if e.eg == nil {
		return
	}
	if err := e.eg.Stop(); err != nil {
		logf("  stop edgegate: %v", err)
	}
}

// contourController runs `contour serve` (built from the module proxy, see contourBinary).
type contourController struct {
	version string
	bin     string
	proc    *harness.Process
	// ports on 127.0.0.1
	xds, http, https, metrics, health, debug, stats int
}

func (c *contourController) name() string { return "contour" }

// className: Contour is started with --ingress-class-name=contour.
func (c *contourController) className() string { return "contour" }

func (c *contourController) prepare(ctx context.Context, kube *harness.Kube, kc kubernetes.Interface) error {
	bin, err := contourBinary(c.version)
	if err != nil {
		return err
	}
	c.bin = bin
	if err := installContourCRDs(ctx, kube, c.version); err != nil {
		return err
	}
	_, err = kc.NetworkingV1().IngressClasses().Create(ctx,
		harness.IngressClass("contour", "projectcontour.io/ingress-controller", false), metav1.CreateOptions{})
	return err
}

func (c *contourController) start(dir string, kube *harness.Kube) error {
	ports, err := harness.FreePorts(7)
	if err != nil {
		return err
	}
	c.xds, c.http, c.https, c.metrics, c.health, c.debug, c.stats = ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6]
	lo := "127.0.0.1"
	args := []string{"serve",
		"--kubeconfig", kube.Kubeconfig,
		"--insecure",
		"--xds-address", lo, "--xds-port", itoa(c.xds),
		"--ingress-class-name", "contour",
		// One Contour, no Lease to hold; it is always the leader and so writes status.
		"--disable-leader-election",
		"--envoy-service-http-address", lo, "--envoy-service-http-port", itoa(c.http),
		"--envoy-service-https-address", lo, "--envoy-service-https-port", itoa(c.https),
		"--http-address", lo, "--http-port", itoa(c.metrics),
		"--health-address", lo, "--health-port", itoa(c.health),
		"--debug-http-address", lo, "--debug-http-port", itoa(c.debug),
		"--stats-address", lo, "--stats-port", itoa(c.stats),
		// edgegate writes status.loadBalancer on every Ingress it serves; so does Contour with
		// this flag, at the same client rate limit (edgegate's defaults: 50 qps, burst 100).
		"--ingress-status-address", lo,
		"--kubernetes-client-qps", "50", "--kubernetes-client-burst", "100",
	}
	c.proc, err = harness.StartProcess("contour", filepath.Join(dir, "contour.log"), exec.Command(c.bin, args...))
	return err
}

func (c *contourController) describe() string { return "contour " + c.version }

func (c *contourController) xdsAddr() string           { return fmt.Sprintf("127.0.0.1:%d", c.xds) }
func (c *contourController) httpAddr() string          { return fmt.Sprintf("127.0.0.1:%d", c.http) }
func (c *contourController) pid() int                  { return c.proc.Pid() }
func (c *contourController) process() *harness.Process { return c.proc }

// envoyArgs: Contour's bootstrap has no node; its Envoy DaemonSet passes these two flags.
func (c *contourController) envoyArgs() []string {
	return []string{"--service-cluster", "projectcontour", "--service-node", "envoy-bench"}
}

func (c *contourController) bootstrap(dir string) (string, string, string, error) {
	path := filepath.Join(dir, "contour-envoy-bootstrap.json")
	admin := filepath.Join(dir, "envoy-admin.sock")
	cmd := exec.Command(c.bin, "bootstrap", path, "--xds-address", "127.0.0.1", "--xds-port", itoa(c.xds), "--admin-address", admin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", "", fmt.Errorf("contour bootstrap: %w\n%s", err, out)
	}
	// The bootstrap's xDS cluster "contour" has alt_stat_name projectcontour_contour_<port>.
	return path, admin, fmt.Sprintf("projectcontour_contour_%d", c.xds), nil
}

func (c *contourController) heapInuse() (float64, error) {
	return promSum(metricsClient, fmt.Sprintf("http://127.0.0.1:%d/metrics", c.metrics), "go_memstats_heap_inuse_bytes")
}

func (c *contourController) xdsSentBytes() (float64, error) {
	return 0, fmt.Errorf("contour has no xDS bytes metric")
}

func (c *contourController) stop() {
	if c.proc == nil {
		return
	}
	// contour serve with leader election disabled does not exit on SIGTERM (observed with
	// v1.33.8: still running 30 s later); it holds nothing worth a graceful stop here.
	_ = c.proc.Stop(5 * time.Second)
}

func itoa(i int) string { return fmt.Sprint(i) }

// contourBinary returns $EDGEGATE_CACHE/bin/contour if it was built from version (go version -m
// names the main module's version), and otherwise builds it there with go install first.
func contourBinary(version string) (string, error) {
	dir := filepath.Join(harness.CacheDir(), "bin")
	bin := filepath.Join(dir, "contour")
	if builtVersion(bin) == version {
		return bin, nil
	}
	logf("building contour %s into %s (a few minutes on 2 cores) ...", version, dir)
	cmd := exec.Command("go", "install", "github.com/projectcontour/contour/cmd/contour@"+version)
	cmd.Dir = os.TempDir() // outside any module: go install pkg@version ignores go.mod anyway
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install contour@%s: %w\n%s", version, err, out)
	}
	if v := builtVersion(bin); v != version {
		return "", fmt.Errorf("built %s reports module version %q, want %s", bin, v, version)
	}
	return bin, nil
}

func builtVersion(bin string) string {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/projectcontour/contour" {
			return f[2]
		}
	}
	return ""
}
