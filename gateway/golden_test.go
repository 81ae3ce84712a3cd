package gateway_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/edgegate/edgegate/appliance"
	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/translate"
	"github.com/edgegate/edgegate/gateway/xdsbuild"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

var update = flag.Bool("update", false, "rewrite testdata/*.out.yaml from the current output (and delete orphans)")

// TestGolden translates each testdata/<case>.in.yaml (Kubernetes objects) through the pipeline
// and compares the model with testdata/<case>.out.yaml. One feature per case.
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	if *update {
		outs, _ := filepath.Glob("testdata/*.out.yaml")
		for _, o := range outs {
			if _, err := os.Stat(strings.TrimSuffix(o, ".out.yaml") + ".in.yaml"); os.IsNotExist(err) {
				_ = os.Remove(o)
			}
		}
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := translateYAML(t, string(src))
			out := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run go test ./gateway -run TestGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("model mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// translateOnce runs the pipeline once over src with both listeners and checks that every
// resource it serves passes Envoy's proto validation.
func translateOnce(t *testing.T, policy *tenancy.Policy, src gateway.Source, xds *xdsserver.Server, log *slog.Logger) *gateway.Gateway {
	t.Helper()
	gw := gateway.New(gateway.Config{
		Controller: "edgegate.io/ingress",
		Tenancy:    policy,
		Listeners: []xdsbuild.Listener{
			{Name: "http", Address: "0.0.0.0", Port: 80, Protocol: xdsbuild.ProtocolHTTP},
			{Name: "https", Address: "0.0.0.0", Port: 443, Protocol: xdsbuild.ProtocolHTTPS, MinTLSVersion: "1.2"},
		},
	}, log, []gateway.Source{src}, nil, xds, nil)
	gw.TranslateAll()
	for _, typ := range xdsserver.Types {
		for _, n := range xds.Names(typ) {
			if v, ok := xds.Get(typ, n).(interface{ Validate() error }); ok {
				if err := v.Validate(); err != nil {
					t.Fatalf("%s %q fails Envoy's proto validation: %v", typ, n, err)
				}
			}
		}
	}
	return gw
}

// goldenPolicy is the appliance's default policy (what `edgegate translate` uses), with the test
// namespace allowed to route the catch-all host.
func goldenPolicy() *tenancy.Policy {
	cfg := &config.Config{}
	cfg.Default()
	cfg.Tenancy.CatchAllNamespaces = []string{"main/team"}
	return appliance.TenancyPolicy(cfg)
}

func translateYAML(t *testing.T, docs string) []byte {
	t.Helper()
	src, err := source.NewStatic("main", translate.EndpointsPod, decode(t, docs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	xds := xdsserver.New(ctx, log)
	gw := translateOnce(t, goldenPolicy(), src, xds, log)
	y, err := yaml.Marshal(gw.Model())
	if err != nil {
		t.Fatal(err)
	}
	return y
}
