// Command bench measures edgegate against Contour on the scale targets of issue 4: route
// activation, xDS bytes and controller CPU per change, controller and Envoy memory, Envoy apply
// time, cold start, and errors under churn. Everything is real and local: a kube-apiserver with
// etcd, the controller as a process, Envoy 1.40 run by the bench from the controller's own
// bootstrap, and backends in a network namespace (the apiserver refuses loopback endpoints).
//
//	cd test && go run ./bench -routes 10000            # or BENCH_ROUTES=100000 go run ./bench
//
// Each controller gets a fresh apiserver with the same generated objects (N Ingresses, each with
// its own host, Service and EndpointSlice, over a handful of real backends), and the two run one
// after the other, never at once: on two cores a controller that rebuilds everything per change
// would otherwise slow the other one down, and each starts from the same state (no status,
// Events or churn routes left by the other, no class juggling with the default-class admission).
//
// It needs root (network namespaces), the cached kube-apiserver, etcd and Envoy (see
// test/README.md), and builds Contour with `go install` into $EDGEGATE_CACHE/bin on first use.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/edgegate/edgegate/test/harness"
)

type kubeClient = kubernetes.Interface

type options struct {
	routes, changes, churn, longLived int
	controllers                       []string
	contourVersion                    string
	memoryLimit                       string
	dir                               string
	keep, hold                        bool
	out                               string

	timeout, coldTimeout, settleTimeout, activationBudget, activationTimeout, churnBudget time.Duration
}

// defaultContourVersion: the newest v1.33.* the module proxy serves (go list -m -versions).
const defaultContourVersion = "v1.33.8"

// numBackends: a handful of real backends carry every Service (many Services, few addresses).
const numBackends = 4

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	raiseFileLimit()
	o := &options{}
	flag.IntVar(&o.routes, "routes", envInt("BENCH_ROUTES", 10000), "routes (Ingresses, each with its Service and EndpointSlice) present before measuring (env BENCH_ROUTES)")
	flag.IntVar(&o.changes, "changes", envInt("BENCH_CHANGES", 200), "route activations measured one at a time (env BENCH_CHANGES)")
	flag.IntVar(&o.churn, "churn", -1, "routes added under load (default min(3000, routes/3))")
	flag.IntVar(&o.longLived, "long-lived", 100, "long-lived connections held open across the churn")
	ctrls := flag.String("controllers", envString("BENCH_CONTROLLERS", "edgegate,contour"), "controllers to run, in order (env BENCH_CONTROLLERS)")
	flag.StringVar(&o.contourVersion, "contour-version", envString("BENCH_CONTOUR_VERSION", defaultContourVersion), "Contour module version to build (env BENCH_CONTOUR_VERSION)")
	flag.StringVar(&o.memoryLimit, "memory-limit", "", "edgegate's memoryLimit (Go soft limit, a Kubernetes quantity such as 1Gi); default none")
	flag.BoolVar(&o.keep, "keep", false, "keep the working directory (logs, bootstraps) after the run")
	flag.BoolVar(&o.hold, "hold", false, "after the cold start, keep everything running until interrupted (to profile a controller by hand); implies -keep")
	flag.StringVar(&o.out, "out", os.Getenv("BENCH_OUT"), "also write the result table (markdown) to this file (env BENCH_OUT)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Minute, "bound on each controller's whole run")
	flag.DurationVar(&o.coldTimeout, "cold-timeout", 10*time.Minute, "bound on cold start and on Envoy's re-apply")
	flag.DurationVar(&o.settleTimeout, "settle-timeout", 3*time.Minute, "bound on waiting for the controller to go idle after the cold start")
	flag.DurationVar(&o.activationBudget, "activation-budget", 10*time.Minute, "bound on the whole activation phase")
	flag.DurationVar(&o.activationTimeout, "activation-timeout", 60*time.Second, "bound on one activation (and on churn convergence)")
	flag.DurationVar(&o.churnBudget, "churn-budget", 10*time.Minute, "bound on creating the churn routes")
	flag.Parse()
	if o.churn < 0 {
		o.churn = min(3000, o.routes/3)
	}
	for _, c := range strings.Split(*ctrls, ",") {
		if c = strings.TrimSpace(c); c != "" {
			o.controllers = append(o.controllers, c)
		}
	}
	if o.routes < 1 || o.changes < 1 {
		return errors.New("-routes and -changes must be at least 1")
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: the backends live in a network namespace (the apiserver refuses loopback endpoints)")
	}
	var err error
	o.dir, err = os.MkdirTemp("", "edgegate-bench-")
	if err != nil {
		return err
	}
	if o.hold {
		o.keep = true
	}
	if o.keep {
		logf("working directory (kept): %s", o.dir)
	} else {
		defer os.RemoveAll(o.dir)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	ns, err := harness.CreateNetns()
	if err != nil {
		return err
	}
	defer ns.Delete()
	var backends []*harness.Backend
	for i := range numBackends {
		a, err := ns.NewAddr()
		if err != nil {
			return err
		}
		b, err := ns.StartBackend(fmt.Sprintf("b%d", i), netip.AddrPortFrom(a, harness.DefaultBackendPort))
		if err != nil {
			return err
		}
		defer b.Stop()
		backends = append(backends, b)
	}

	var results []*result
	for _, name := range o.controllers {
		var ctrl controller
		switch name {
		case "edgegate":
			ctrl = &edgegateController{memoryLimit: o.memoryLimit}
		case "contour":
			ctrl = &contourController{version: o.contourVersion}
		default:
			return fmt.Errorf("unknown controller %q (edgegate, contour)", name)
		}
		cctx, ccancel := context.WithTimeout(ctx, o.timeout)
		res, err := runOne(cctx, o, ctrl, backends)
		ccancel()
		if err != nil {
			res.note("run ended early: %v", err)
		}
		results = append(results, res)
		fmt.Println(table(o, results))
		if ctx.Err() != nil {
			break
		}
	}
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(table(o, results)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// fileLimit is the open-file limit the benchmark asks for. At N routes a sweep makes Envoy pool a
// connection to a backend per route (one cluster per Service), and the backends are served by this
// process: both need well over N descriptors, more than a login shell's usual limit.
const fileLimit = 1 << 20

// raiseFileLimit raises this process's open-file limits (root may raise the hard limit up to the
// kernel's fs.nr_open); the controllers and Envoys started from here inherit them.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	want := syscall.Rlimit{Cur: fileLimit, Max: fileLimit}
	if l.Max > want.Max {
		want = syscall.Rlimit{Cur: l.Max, Max: l.Max}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		logf("open-file limit stays %d (raising it: %v): a sweep of more routes than that fails", l.Cur, err)
	}
}
