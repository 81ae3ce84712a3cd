package appliance

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestTranslateCommandUsesThePipeline(t *testing.T) {
	code, out, errOut := run(t, "translate", "../gateway/testdata/paths.in.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want, err := os.ReadFile("../gateway/testdata/paths.out.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("translate output differs from the pipeline's golden model:\n%s", out)
	}
	code, out, errOut = run(t, "translate", "--output", "xds", "../gateway/testdata/paths.in.yaml")
	if code != 0 {
		t.Fatalf("xds output: exit %d: %s", code, errOut)
	}
	for _, w := range []string{"ScopedRouteConfiguration", "host:shop.example.com", "path_separated_prefix", "main/team/api/80"} {
		if !strings.Contains(out, w) && !strings.Contains(out, strings.ReplaceAll(w, "path_separated_prefix", "pathSeparatedPrefix")) {
			t.Errorf("xds output lacks %q", w)
		}
	}
}

func TestValidateCommandListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "edgegate.yaml")
	bad := "node: {name: BAD}\nclusters: [{name: main, kubeconfig: " + filepath.Join(dir, "missing") + "}]\nxds: {address: '10.1.1.1:1'}\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "validate", "--config", path)
	if code == 0 {
		t.Fatal("validate accepted a bad config")
	}
	for _, w := range []string{"node.name", "xds.address"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("validate output lacks %q:\n%s", w, errOut)
		}
	}
	good := "node: {name: edge-1}\nclusters: [{name: main, kubeconfig: " + path + "}]\n"
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "validate", "--config", path); code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("validate of a good config: exit %d, %s %s", code, out, errOut)
	}
	missing := "node: {name: edge-1}\nclusters: [{name: main, kubeconfig: " + filepath.Join(dir, "nope") + "}]\n"
	_ = os.WriteFile(path, []byte(missing), 0o644)
	if code, _, errOut := run(t, "validate", "--config", path); code == 0 || !strings.Contains(errOut, "clusters[0].kubeconfig") {
		t.Errorf("validate with a missing kubeconfig: exit %d, %s", code, errOut)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := run(t, "version"); code != 0 || !strings.Contains(out, EnvoyAPIVersion) {
		t.Errorf("version: exit %d, %q", code, out)
	}
	if code, _, _ := run(t, "bogus"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
