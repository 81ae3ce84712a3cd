package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/test/harness"
)

// envoy is an Envoy process run by the bench from a controller's bootstrap, so its memory and
// CPU are measured apart from the controller's.
type envoy struct {
	proc  *harness.Process
	admin *http.Client
	base  string // admin URL prefix
}

// envoyArgs: one worker (the machine has two cores for apiserver, controller, Envoy and the
// clients; the same for both controllers), no hot restart, and warnings only, so logging at
// 100k resources costs nothing measurable.
var envoyArgs = []string{"--disable-hot-restart", "--concurrency", "1", "--log-level", "warn"}

// startEnvoy runs Envoy with bootstrap; adminAddr is host:port or a unix socket path (Contour's
// bootstrap puts the admin interface on a socket).
func startEnvoy(dir, name, bootstrap, adminAddr string, extraArgs []string) (*envoy, error) {
	bin, err := harness.EnvoyBinary()
	if err != nil {
		return nil, err
	}
	args := append(append([]string{"-c", bootstrap}, envoyArgs...), extraArgs...)
	p, err := harness.StartProcess("envoy", filepath.Join(dir, name+".log"), exec.Command(bin, args...))
	if err != nil {
		return nil, err
	}
	e := &envoy{proc: p}
	if strings.HasPrefix(adminAddr, "/") {
		e.base = "http://envoy-admin"
		d := &net.Dialer{Timeout: 2 * time.Second}
		e.admin = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", adminAddr)
			},
		}}
	} else {
		e.base = "http://" + adminAddr
		e.admin = &http.Client{Timeout: 30 * time.Second}
	}
	return e, nil
}

func (e *envoy) pid() int { return e.proc.Pid() }

// exited returns an error once the process has exited.
func exited(p *harness.Process) error {
	if done, err := p.Exited(); done {
		return fmt.Errorf("%s exited: %v (log: %s)", p.Name, err, p.LogPath)
	}
	return nil
}

func (e *envoy) stop() {
	if err := e.proc.Stop(10 * time.Second); err != nil {
		logf("  stop envoy: %v", err)
	}
}

// xdsRxBytes is the number of bytes Envoy has received on its connection to the xDS server
// (the bootstrap's static cluster): the same wire measure for both controllers.
func (e *envoy) xdsRxBytes(xdsCluster string) (float64, error) {
	resp, err := e.admin.Get(e.base + "/stats?filter=upstream_cx_rx_bytes_total")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return parseEnvoyStat(resp.Body, "cluster."+xdsCluster+".upstream_cx_rx_bytes_total")
}

func parseEnvoyStat(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+": "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("envoy stat %s not found", name)
}
