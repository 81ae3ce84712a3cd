package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/edgegate/edgegate/test/harness"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installContourCRDs creates the CustomResourceDefinitions Contour informs on (HTTPProxy,
// TLSCertificateDelegation, ExtensionService, ContourConfiguration, ...) from the contour module
// source of that version, and waits until they are established.
func installContourCRDs(ctx context.Context, kube *harness.Kube, version string) error {
	dir, err := moduleDir("github.com/projectcontour/contour", version)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(dir, "examples", "contour", "01-crds.yaml"))
	if err != nil {
		return fmt.Errorf("contour CRDs: %w", err)
	}
	dc, err := dynamic.NewForConfig(kube.Config)
	if err != nil {
		return err
	}
	var names []string
	for _, doc := range strings.Split(string(data), "\n---") {
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return fmt.Errorf("contour CRDs: %w", err)
		}
		var obj map[string]any
		if err := json.Unmarshal(js, &obj); err != nil || obj == nil || obj["kind"] != "CustomResourceDefinition" {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if _, err := dc.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create CRD %s: %w", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	if len(names) == 0 {
		return fmt.Errorf("no CRDs in %s", filepath.Join(dir, "examples", "contour", "01-crds.yaml"))
	}
	deadline := time.Now().Add(time.Minute)
	for _, n := range names {
		for {
			u, err := dc.Resource(crdGVR).Get(ctx, n, metav1.GetOptions{})
			if err == nil && established(u) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("CRD %s not established after a minute (last error: %v)", n, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	logf("  installed %d contour CRDs: %s", len(names), strings.Join(names, ", "))
	return nil
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// moduleDir downloads (or finds) a module version in the Go module cache and returns its directory.
func moduleDir(path, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", path+"@"+version)
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", path, version, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", path, version, err)
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", path, version, m.Error)
	}
	return m.Dir, nil
}
