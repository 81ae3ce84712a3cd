package harness

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Envoy is a real Envoy process run by the test itself from a bootstrap file,
// standing in for the systemd-run Envoy of production (edgegate's
// `envoy.mode: external`), so it outlives edgegate restarts.
type Envoy struct {
	*Process
	AdminAddr string // host:port of the admin listener, from the bootstrap
}

// envoyReadyTimeout: Envoy starts in well under a second; readiness also
// waits for the first xDS answer from edgegate, which is slower on a busy CI.
const envoyReadyTimeout = 60 * time.Second

// EnvoyArgs are the command-line flags the harness runs Envoy with:
// no hot restart (several Envoys run on one machine, and hot restart would
// share memory between them by base id) and one worker thread (tests are
// light, and CI has two cores for everything).
var EnvoyArgs = []string{"--disable-hot-restart", "--concurrency", "1", "--log-level", "info"}

// StartEnvoy runs Envoy with the bootstrap at bootstrapPath; its output goes
// to envoy.log in dir. adminAddr is the admin address the bootstrap sets (for
// readiness and diagnostics).
func StartEnvoy(dir, bootstrapPath, adminAddr string) (*Envoy, error) {
	bin, err := EnvoyBinary()
	if err != nil {
		return nil, err
	}
	args := append([]string{"-c", bootstrapPath}, EnvoyArgs...)
	p, err := StartProcess("envoy", filepath.Join(dir, "envoy.log"), exec.Command(bin, args...))
	if err != nil {
		return nil, err
	}
	return &Envoy{Process: p, AdminAddr: adminAddr}, nil
}

// NewEnvoy is StartEnvoy for a test: the process is killed when the test
// ends, and its log tail printed if the test failed.
func NewEnvoy(t testing.TB, bootstrapPath, adminAddr string) *Envoy {
	t.Helper()
	dir := t.TempDir()
	e, err := StartEnvoy(dir, bootstrapPath, adminAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("envoy log (tail):\n%s", LogTail(e.LogPath, 16<<10))
		}
		if err := e.Stop(10 * time.Second); err != nil {
			t.Logf("stop envoy: %v", err)
		}
	})
	return e
}

// WaitReady waits until Envoy's admin /ready answers 200 (state LIVE: the
// initial xDS fetch has completed).
func (e *Envoy) WaitReady() error {
	c := &http.Client{Timeout: 2 * time.Second}
	return waitUntil(envoyReadyTimeout, e.Process, func() error {
		body, status, err := httpGet(c, "http://"+e.AdminAddr+"/ready")
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("envoy /ready: %d %s", status, strings.TrimSpace(body))
		}
		return nil
	})
}

// Admin fetches an admin endpoint (for example "/config_dump" or "/clusters").
func (e *Envoy) Admin(path string) (string, error) {
	body, status, err := httpGet(&http.Client{Timeout: 5 * time.Second}, "http://"+e.AdminAddr+path)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("envoy admin %s: %d %s", path, status, body)
	}
	return body, nil
}

func httpGet(c *http.Client, url string) (string, int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return string(body), resp.StatusCode, err
}
