package harness

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/edgegate/edgegate/appliance/config"
)

// EdgegateConfig is edgegate's own configuration type (appliance/config),
// so the tests and the daemon cannot disagree on the file format.
type EdgegateConfig = config.Config

// IngressController is the IngressClass controller value the tests use.
const IngressController = "edgegate.io/ingress"

// NewEdgegateConfig returns a configuration for one edgegate on free
// 127.0.0.1 ports, watching the cluster behind kubeconfig, with Envoy
// supervised by edgegate and its bootstrap in dir.
func NewEdgegateConfig(dir, kubeconfig string) (EdgegateConfig, error) {
	ports, err := FreePorts(5)
	if err != nil {
		return EdgegateConfig{}, err
	}
	envoyBin, err := EnvoyBinary()
	if err != nil {
		return EdgegateConfig{}, err
	}
	return EdgegateConfig{
		Node: config.Node{Name: "edge-test"},
		Listeners: []config.Listener{
			{Name: "http", Address: "127.0.0.1", Port: ports[0], Protocol: config.HTTP},
			{Name: "https", Address: "127.0.0.1", Port: ports[1], Protocol: config.HTTPS, TLS: &config.TLS{MinVersion: "1.2"}},
		},
		Clusters: []config.Cluster{{Name: "main", Kubeconfig: kubeconfig, EndpointMode: config.EndpointsPod}},
		Ingress:  config.Ingress{Controller: IngressController, StatusAddresses: []string{"127.0.0.1"}},
		XDS:      config.XDS{Address: fmt.Sprintf("127.0.0.1:%d", ports[2])},
		Envoy: config.Envoy{
			Mode:          config.EnvoySupervise,
			Binary:        envoyBin,
			BootstrapPath: filepath.Join(dir, "envoy-bootstrap.yaml"),
			AdminAddress:  fmt.Sprintf("127.0.0.1:%d", ports[3]),
			Concurrency:   1, // tests are light and CI has two cores for everything
			// Tests stop Envoy at the end or restart it on purpose; nothing needs draining.
			DrainTime: config.Duration{Duration: time.Second},
		},
		Admin: config.Admin{Address: fmt.Sprintf("127.0.0.1:%d", ports[4])},
	}, nil
}

// ListenerAddr returns host:port of the named listener in cfg.
func ListenerAddr(cfg EdgegateConfig, name string) string {
	for _, l := range cfg.Listeners {
		if l.Name == name {
			return net.JoinHostPort(l.Address, strconv.Itoa(l.Port))
		}
	}
	return ""
}

// repoRoot finds the product module's directory above the working directory
// (go test runs in the package directory, test/<pkg>).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && slices.Contains(strings.Split(string(data), "\n"), "module github.com/edgegate/edgegate") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no github.com/edgegate/edgegate go.mod above %s", dir)
		}
	}
}

// BuildEdgegate builds the edgegate binary from the product module into
// outDir (with the shared Go build cache, so a rebuild is quick) and returns
// its path. $EDGEGATE_BIN names a prebuilt binary instead.
func BuildEdgegate(outDir string) (string, error) {
	if p := os.Getenv("EDGEGATE_BIN"); p != "" {
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(outDir, "edgegate")
	cmd := exec.Command("go", "build", "-o", out, "./appliance/cmd/edgegate")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./appliance/cmd/edgegate in %s: %w\n%s", root, err, b)
	}
	return out, nil
}

// Edgegate is one edgegate daemon run by a test. Methods are safe for
// concurrent use.
type Edgegate struct {
	Bin        string
	Dir        string
	ConfigPath string
	LogPath    string
	Config     EdgegateConfig

	mu   sync.Mutex
	proc *Process
}

// edgegateReadyTimeout covers informer sync, Envoy start and first xDS push,
// on a CI machine that may be compiling at the same time.
const edgegateReadyTimeout = 60 * time.Second

// edgegateStopGrace is how long edgegate gets to drain and exit on SIGTERM.
const edgegateStopGrace = 30 * time.Second

// WriteEdgegate writes cfg into dir and returns an Edgegate ready to Start.
func WriteEdgegate(bin, dir string, cfg EdgegateConfig) (*Edgegate, error) {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal edgegate config: %w", err)
	}
	// The daemon's own loader, so a bad test config fails here with its reasons.
	if _, err := config.Parse(data); err != nil {
		return nil, fmt.Errorf("edgegate config written by the test is invalid: %w", err)
	}
	e := &Edgegate{Bin: bin, Dir: dir, Config: cfg,
		ConfigPath: filepath.Join(dir, "edgegate.yaml"), LogPath: filepath.Join(dir, "edgegate.log")}
	if err := os.WriteFile(e.ConfigPath, data, 0o644); err != nil {
		return nil, fmt.Errorf("write edgegate config: %w", err)
	}
	return e, nil
}

// NewEdgegate writes cfg into a test directory and returns an Edgegate that
// is stopped when the test ends (logs printed if the test failed). It does
// not start it.
func NewEdgegate(t testing.TB, bin string, cfg EdgegateConfig) *Edgegate {
	t.Helper()
	e, err := WriteEdgegate(bin, t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop edgegate: %v", err)
		}
		if t.Failed() {
			t.Logf("%s", e.Logs())
		}
	})
	return e
}

// Start starts edgegate (again) without waiting for readiness.
func (e *Edgegate) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proc != nil {
		if exited, _ := e.proc.Exited(); !exited {
			return errors.New("edgegate is already running")
		}
	}
	p, err := StartProcess("edgegate", e.LogPath, exec.Command(e.Bin, "run", "--config", e.ConfigPath))
	if err != nil {
		return err
	}
	e.proc = p
	return nil
}

// Process is the current edgegate process (nil before Start).
func (e *Edgegate) Process() *Process {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.proc
}

// WaitReady waits until GET /readyz on the admin address answers 200.
func (e *Edgegate) WaitReady() error {
	p := e.Process()
	if p == nil {
		return errors.New("edgegate not started")
	}
	c := &http.Client{Timeout: 2 * time.Second}
	return waitUntil(edgegateReadyTimeout, p, func() error {
		body, status, err := httpGet(c, "http://"+e.Config.Admin.Address+"/readyz")
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("edgegate /readyz: %d %s", status, strings.TrimSpace(body))
		}
		return nil
	})
}

// StartAndWait is Start followed by WaitReady.
func (e *Edgegate) StartAndWait() error {
	if err := e.Start(); err != nil {
		return err
	}
	if err := e.WaitReady(); err != nil {
		return fmt.Errorf("%w\n%s", err, e.Logs())
	}
	return nil
}

// Stop sends SIGTERM and waits for edgegate to exit. It is an error if
// edgegate needed SIGKILL, or if it left a process (a supervised Envoy)
// behind in its process group; such leftovers are killed.
func (e *Edgegate) Stop() error {
	p := e.Process()
	if p == nil {
		return nil
	}
	if exited, _ := p.Exited(); exited {
		p.KillGroup()
		return nil
	}
	if err := p.Stop(edgegateStopGrace); err != nil {
		return err
	}
	if p.GroupAlive() {
		p.KillGroup()
		return fmt.Errorf("edgegate exited on SIGTERM but left processes in its group %d (supervised envoy not stopped?)", p.Pid())
	}
	return nil
}

// Kill kills edgegate with SIGKILL, as a crash would. A supervised Envoy is
// left running (it is in the same process group; KillGroup ends it).
func (e *Edgegate) Kill() error {
	p := e.Process()
	if p == nil {
		return nil
	}
	return p.Kill()
}

// Admin fetches a path from edgegate's admin API ("/status", "/metrics").
func (e *Edgegate) Admin(path string) (string, int, error) {
	return httpGet(&http.Client{Timeout: 5 * time.Second}, "http://"+e.Config.Admin.Address+path)
}

// Logs returns edgegate's last log lines, its own apart from those of a
// supervised Envoy (which writes to the same output and would drown them).
func (e *Edgegate) Logs() string {
	const ownLines, envoyLines = 150, 30
	data, err := os.ReadFile(e.LogPath)
	if err != nil {
		return fmt.Sprintf("(no edgegate log: %v)", err)
	}
	var own, envoy []string
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if strings.HasPrefix(line, "[20") { // Envoy's "[2026-01-02 ...]" format
			envoy = append(envoy, line)
		} else {
			own = append(own, line)
		}
	}
	last := func(lines []string, n int) string { return strings.Join(lines[max(len(lines)-n, 0):], "\n") }
	return fmt.Sprintf("--- %s: edgegate lines (last %d)\n%s\n--- envoy lines (last %d)\n%s\n",
		e.LogPath, ownLines, last(own, ownLines), envoyLines, last(envoy, envoyLines))
}

// EnvoyConfigDump fetches Envoy's /config_dump (with EDS) from the admin
// address in the configuration.
func (e *Edgegate) EnvoyConfigDump() (string, error) {
	body, status, err := httpGet(&http.Client{Timeout: 10 * time.Second}, "http://"+e.Config.Envoy.AdminAddress+"/config_dump?include_eds")
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("envoy /config_dump: %d", status)
	}
	return body, nil
}
