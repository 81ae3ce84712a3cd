package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/bgp"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"
)

// File is the YAML the run subcommand reads.
type File struct {
	Node struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels,omitempty"`
	} `json:"node"`
	// VIPs are addresses or prefixes.
	VIPs []string   `json:"vips"`
	Fit  bool       `json:"fit"`
	BGP  bgp.Config `json:"bgp"`
}

func loadFile(path string) (File, []bgp.VIP, error) {
	var f File
	b, err := os.ReadFile(path)
	if err != nil {
		return f, nil, err
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return f, nil, fmt.Errorf("decode %s: %w", path, err)
	}
	var vips []bgp.VIP
	for _, s := range f.VIPs {
		if p, err := netip.ParsePrefix(s); err == nil {
			vips = append(vips, bgp.VIP{Prefix: p})
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return f, nil, fmt.Errorf("vip %q: %w", s, err)
		}
		vips = append(vips, bgp.VIPsFromAddrs("", a)...)
	}
	return f, vips, nil
}

func runSpeaker(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML file")
	httpAddrs := fs.String("http", "", "comma-separated addresses to serve HTTP on (answers the node name)")
	linger := fs.Duration("linger", time.Second, "keep serving HTTP this long after the drain before exiting")
	debug := fs.Bool("debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	f, vips, err := loadFile(*cfgPath)
	if err != nil {
		return err
	}
	comp, err := bgp.New(f.BGP, bgp.Node{Name: f.Node.Name, Labels: f.Node.Labels}, bgp.NewGoBGP(log), log, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	comp.SetVIPs(vips)
	comp.SetFitness(f.Fit, "initial config")

	servers, err := serveHTTP(f.Node.Name, *httpAddrs)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- comp.Run(ctx) }()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
	}()
	var outMu sync.Mutex
	reply := func(v any) {
		outMu.Lock()
		defer outMu.Unlock()
		b, _ := json.Marshal(v)
		fmt.Fprintln(os.Stdout, string(b))
	}
	for {
		select {
		case err := <-runErr:
			return err
		case s := <-sigs:
			log.Info("signal: draining", "signal", s.String())
			dctx, dcancel := context.WithTimeout(ctx, f.BGP.WithDefaults().DrainWait.Duration+10*time.Second)
			err := comp.Drain(dctx)
			dcancel()
			time.Sleep(*linger) // like Envoy draining after the withdraw: in-flight requests finish
			for _, srv := range servers {
				srv.Close()
			}
			cancel()
			return errors.Join(err, <-runErr)
		case line, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			if line == "exit" {
				// Like a crash or a restart without drain: Run returns, sessions die with the process.
				cancel()
				err := <-runErr
				reply(map[string]bool{"ok": err == nil})
				return err
			}
			reply(command(ctx, comp, *cfgPath, line))
		}
	}
}

func command(ctx context.Context, comp *bgp.Component, cfgPath, line string) any {
	errReply := func(err error) any {
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		return map[string]bool{"ok": true}
	}
	switch line {
	case "fit":
		comp.SetFitness(true, "stdin")
		return errReply(nil)
	case "unfit":
		comp.SetFitness(false, "stdin")
		return errReply(nil)
	case "drain":
		return errReply(comp.Drain(ctx))
	case "reload":
		f, vips, err := loadFile(cfgPath)
		if err != nil {
			return errReply(err)
		}
		err = comp.Reconfigure(ctx, f.BGP)
		comp.SetVIPs(vips)
		return errReply(err)
	case "status":
		st, err := comp.Status(ctx)
		if err != nil {
			return errReply(err)
		}
		return st
	}
	return errReply(fmt.Errorf("unknown command %q", line))
}

// serveHTTP serves HTTP on each of the comma-separated addresses, answering name (the test backend).
func serveHTTP(name, addrs string) ([]*http.Server, error) {
	var servers []*http.Server
	for _, a := range strings.Split(addrs, ",") {
		if a == "" {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, srv := range servers {
				srv.Close()
			}
			return nil, err
		}
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, name)
			}),
			IdleTimeout: 5 * time.Minute, // long-lived connection tests keep connections idle
		}
		servers = append(servers, srv)
		go srv.Serve(ln)
	}
	return servers, nil
}

// runServe serves HTTP only, until killed: the node's service (Envoy) as a process of its own, so a
// test can kill the speaker while the service keeps serving.
func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	name := fs.String("name", "", "what to answer (the node name)")
	httpAddrs := fs.String("http", "", "comma-separated addresses to serve HTTP on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := serveHTTP(*name, *httpAddrs); err != nil {
		return err
	}
	fmt.Println(`{"ready":true}`)
	select {}
}
