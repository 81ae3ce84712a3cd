package appliance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/translate"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

// translateCmd runs the daemon's pipeline once over objects read from YAML files and prints the
// model (default) or the Envoy resources.
func translateCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("translate", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file for listeners and the ingress controller name (optional)")
	cluster := fs.String("cluster", "main", "remote cluster name the objects belong to")
	mode := fs.String("endpoint-mode", "pod", "pod or nodePort")
	output := fs.String("output", "model", "model (the translated model) or xds (Envoy resources)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := &config.Config{Node: config.Node{Name: "translate"}, Clusters: []config.Cluster{{Name: *cluster, Kubeconfig: "-"}}}
	cfg.Default()
	if *cfgPath != "" {
		loaded, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		cfg = loaded
	}
	objs, err := readObjects(fs.Args(), stdin)
	if err != nil {
		return err
	}
	src, err := source.NewStatic(*cluster, translate.EndpointMode(*mode), objs)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	xds := xdsserver.New(ctx, log)
	gw := gateway.New(GatewayConfig(cfg), log, []gateway.Source{src}, nil, xds, nil)
	gw.TranslateAll()
	switch *output {
	case "model":
		y, err := yaml.Marshal(gw.Model())
		if err != nil {
			return err
		}
		_, err = stdout.Write(y)
		return err
	case "xds":
		return writeResources(stdout, xds)
	default:
		return fmt.Errorf("--output %q: want model or xds", *output)
	}
}

func readObjects(files []string, stdin io.Reader) ([]runtime.Object, error) {
	if len(files) == 0 {
		files = []string{"-"}
	}
	decoder := scheme.Codecs.UniversalDeserializer()
	var out []runtime.Object
	var errs []error
	for _, f := range files {
		var r io.Reader = stdin
		if f != "-" {
			fh, err := os.Open(f)
			if err != nil {
				return nil, err
			}
			defer fh.Close()
			r = fh
		}
		docs := utilyaml.NewYAMLReader(bufio.NewReader(r))
		for i := 0; ; i++ {
			doc, err := docs.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s document %d: %w", f, i, err))
				continue
			}
			out = append(out, obj)
		}
	}
	return out, errors.Join(errs...)
}

func writeResources(w io.Writer, xds *xdsserver.Server) error {
	doc := map[string][]any{}
	for _, t := range xdsserver.Types {
		names := xds.Names(t)
		sort.Strings(names)
		for _, n := range names {
			js, err := protojson.Marshal(xds.Get(t, n).(proto.Message))
			if err != nil {
				return err
			}
			var v any
			if err := yaml.Unmarshal(js, &v); err != nil {
				return err
			}
			doc[t] = append(doc[t], v)
		}
	}
	y, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = w.Write(y)
	return err
}
