// Command vipnode runs one edgegate VIP node from a YAML file, for integration tests and benchmarks that run real
// processes in network namespaces. It is not the appliance: it reports itself fit at once, serves a tiny TCP
// "who am I" service on every VIP (bound with IP_FREEBIND, as Envoy's listeners must be, so a VIP that arrives
// later works), and writes its Status as JSON to a file.
//
//	vipnode -config node.yaml            run; SIGTERM drains (planned handoff) then exits, SIGINT exits at once
//	vipnode -config node.yaml -cleanup   remove every configured VIP from the interfaces (systemd ExecStopPost)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/vip"
	"github.com/edgegate/edgegate/vip/announce"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"
)

// File is vipnode's configuration file.
type File struct {
	Node struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels,omitempty"`
		Weight int64             `json:"weight,omitempty"`
	} `json:"node"`
	// ServePort: TCP port of the who-am-I service on every VIP (0: none).
	ServePort int `json:"servePort,omitempty"`
	// StatusFile receives the Status JSON every 50 ms (empty: none).
	StatusFile string `json:"statusFile,omitempty"`
	// DrainTimeout bounds the SIGTERM drain.
	DrainTimeout string `json:"drainTimeout,omitempty"`
	// Unfit starts the node unfit with this reason (never becoming fit).
	Unfit string     `json:"unfit,omitempty"`
	VIP   vip.Config `json:"vip"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vipnode:", err)
		os.Exit(1)
	}
}

func run() error {
	path := flag.String("config", "", "YAML file")
	cleanup := flag.Bool("cleanup", false, "remove the configured VIPs from the interfaces and exit")
	flag.Parse()
	b, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	var f File
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", f.Node.Name)
	n, err := vip.New(f.VIP, vip.Identity{Name: f.Node.Name, Labels: f.Node.Labels, Weight: f.Node.Weight},
		vip.Options{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return err
	}
	if *cleanup {
		return announce.Cleanup(f.VIP.Interfaces, n.VIPs())
	}
	drainTimeout := 10 * time.Second
	if f.DrainTimeout != "" {
		if drainTimeout, err = time.ParseDuration(f.DrainTimeout); err != nil {
			return fmt.Errorf("drainTimeout: %w", err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if f.ServePort != 0 {
		for _, a := range n.VIPs() {
			if err := serve(ctx, a, f.ServePort, f.Node.Name); err != nil {
				return err
			}
		}
	}
	if f.StatusFile != "" {
		go writeStatus(ctx, n, f.StatusFile)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(ctx) }()
	if f.Unfit != "" {
		n.SetFitness(false, f.Unfit)
	} else {
		n.SetFitness(true, "")
	}

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-runErr:
		return err
	case s := <-sig:
		if s == syscall.SIGTERM {
			start := time.Now()
			dctx, dcancel := context.WithTimeout(ctx, drainTimeout)
			err := n.Drain(dctx)
			dcancel()
			log.Info("drained", "took", time.Since(start), "error", err)
		}
	}
	cancel()
	err = <-runErr
	if f.StatusFile != "" {
		os.Remove(f.StatusFile) // a stopped node has no status; a stale file would mislead
	}
	return err
}

// serve listens on vip:port with IP_FREEBIND/IPV6_FREEBIND (the address need not be local yet) and answers every
// connection with the node name.
func serve(ctx context.Context, a netip.Addr, port int, name string) error {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if a.Is4() {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_FREEBIND, 1)
			} else {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, 78 /* IPV6_FREEBIND */, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(a.String(), strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("listen on %s (freebind): %w", a, err)
	}
	go func() { <-ctx.Done(); ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write([]byte(name + "\n"))
			c.Close()
		}
	}()
	return nil
}

func writeStatus(ctx context.Context, n *vip.Node, path string) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			writeStatusOnce(n, path)
		}
	}
}

func writeStatusOnce(n *vip.Node, path string) {
	b, err := json.Marshal(n.Status())
	if err != nil {
		return
	}
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		os.Rename(tmp, path)
	}
}
