package model

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestModelImportsNeitherKubernetesNorEnvoy keeps the model a plain value between the two translators.
func TestModelImportsNeitherKubernetesNorEnvoy(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if strings.HasPrefix(p, "k8s.io/") || strings.Contains(p, "envoyproxy") || strings.HasPrefix(p, "sigs.k8s.io/") {
				t.Errorf("%s imports %s: the model must stay free of Kubernetes and Envoy types", f, p)
			}
		}
	}
}
