// Package lab builds throwaway network namespaces with FRR or BIRD as a datacenter router and edge nodes
// running cmd/bgpspeaker, for bgp's integration tests and benchmarks. Everything it creates is named
// with a per-run tag and removed on cleanup. It needs root.
package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Skip skips tb unless the process is root and the tools exist.
func Skip(tb testing.TB, tools ...string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root to create network namespaces (CI runs as root)")
	}
	for _, t := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(t); err != nil {
			if _, err2 := os.Stat(t); err2 != nil {
				tb.Skipf("skipping: %s not installed", t)
			}
		}
	}
}

var counter atomic.Int64

// Lab is one set of namespaces and processes.
type Lab struct {
	TB  testing.TB
	Tag string
	Dir string // world-readable working directory (FRR runs as user frr)
	nss []string
}

// New creates an empty lab; cleanup is registered on tb.
func New(tb testing.TB) *Lab {
	tb.Helper()
	tag := fmt.Sprintf("egb%d%d", os.Getpid()%10000, counter.Add(1))
	dir, err := os.MkdirTemp("", tag+"-")
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	l := &Lab{TB: tb, Tag: tag, Dir: dir}
	tb.Cleanup(func() {
		for _, ns := range l.nss {
			exec.Command("ip", "netns", "del", ns).Run()
		}
		if !tb.Failed() || os.Getenv("BGP_LAB_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			tb.Logf("lab files kept in %s", dir)
		}
	})
	return l
}

// NS creates namespace tag-name with lo up and returns its full name.
func (l *Lab) NS(name string) string {
	full := l.Tag + "-" + name
	l.Must("ip", "netns", "add", full)
	l.nss = append(l.nss, full)
	l.MustIn(full, "ip", "link", "set", "lo", "up")
	return full
}

// Run runs a command and returns its combined output.
func Run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// In runs a command inside namespace ns.
func In(ns string, args ...string) (string, error) {
	return Run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// Must runs a command and fails the test on error.
func (l *Lab) Must(name string, args ...string) string {
	l.TB.Helper()
	out, err := Run(name, args...)
	if err != nil {
		l.TB.Fatal(err)
	}
	return out
}

// MustIn runs a command in ns and fails the test on error.
func (l *Lab) MustIn(ns string, args ...string) string {
	l.TB.Helper()
	out, err := In(ns, args...)
	if err != nil {
		l.TB.Fatal(err)
	}
	return out
}

// Veth connects nsA:ifA with nsB:ifB and sets both up.
func (l *Lab) Veth(nsA, ifA, nsB, ifB string) {
	l.TB.Helper()
	l.Must("ip", "-n", nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	l.Must("ip", "-n", nsA, "link", "set", ifA, "up")
	l.Must("ip", "-n", nsB, "link", "set", ifB, "up")
}

// Addr adds an address (no DAD for IPv6, so it is usable at once).
func (l *Lab) Addr(ns, ifname, cidr string) {
	l.TB.Helper()
	args := []string{"-n", ns, "addr", "add", cidr, "dev", ifname}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	l.Must("ip", args...)
}

// Sysctl sets a sysctl inside ns.
func (l *Lab) Sysctl(ns, kv string) {
	l.TB.Helper()
	l.MustIn(ns, "sysctl", "-qw", kv)
}

// WriteFile writes a file into the lab directory, readable by the router daemons.
func (l *Lab) WriteFile(name, content string) string {
	l.TB.Helper()
	p := filepath.Join(l.Dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		l.TB.Fatal(err)
	}
	return p
}

// Eventually polls cond every 20 ms until it returns nil or timeout passes; it returns the last error.
func Eventually(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// KernelNextHops returns the gateways of the kernel route for prefix in namespace ns (nil: no route).
func KernelNextHops(ns string, prefix netip.Prefix) ([]netip.Addr, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	fam := netlink.FAMILY_V4
	if prefix.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	dst := &net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(prefix.Bits(), prefix.Addr().BitLen())}
	routes, err := nl.RouteListFiltered(fam, &netlink.Route{Dst: dst, Table: 254}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, r := range routes {
		if r.Gw != nil {
			a, _ := netip.AddrFromSlice(r.Gw)
			out = append(out, a.Unmap())
		}
		for _, nh := range r.MultiPath {
			a, _ := netip.AddrFromSlice(nh.Gw)
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}

// Proc is a bgpspeaker process in a namespace, driven over stdin/stdout.
type Proc struct {
	Name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{} // closed when the process exited; err is set before
	err   error
}

// StartSpeaker starts `bin run -config cfg -http httpAddrs` in ns.
func (l *Lab) StartSpeaker(name, ns, bin, cfg string, httpAddrs ...string) *Proc {
	l.TB.Helper()
	return l.start(name, ns, bin, "run", "-config", cfg, "-http", strings.Join(httpAddrs, ","), "-linger", "500ms")
}

// StartServer starts `bin serve -name node -http httpAddrs` in ns (the node's service without a speaker)
// and waits until it listens.
func (l *Lab) StartServer(name, ns, bin, node string, httpAddrs ...string) *Proc {
	l.TB.Helper()
	p := l.start(name, ns, bin, "serve", "-name", node, "-http", strings.Join(httpAddrs, ","))
	select {
	case <-p.lines: // {"ready":true}
	case <-p.done:
		l.TB.Fatalf("%s exited: %v", name, p.err)
	case <-time.After(30 * time.Second):
		l.TB.Fatalf("%s did not start", name)
	}
	return p
}

func (l *Lab) start(name, ns, bin string, args ...string) *Proc {
	l.TB.Helper()
	logf, err := os.Create(filepath.Join(l.Dir, name+".log"))
	if err != nil {
		l.TB.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	cmd.Stderr = logf
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		l.TB.Fatal(err)
	}
	p := &Proc{Name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	l.TB.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// Do sends a command line and returns the JSON reply.
func (p *Proc) Do(cmd string) (string, error) {
	if _, err := fmt.Fprintln(p.stdin, cmd); err != nil {
		return "", err
	}
	select {
	case line := <-p.lines:
		if strings.HasPrefix(line, `{"error"`) {
			return line, errors.New(line)
		}
		return line, nil
	case <-p.done:
		return "", fmt.Errorf("%s exited: %v", p.Name, p.err)
	case <-time.After(30 * time.Second):
		return "", fmt.Errorf("%s: no reply to %q", p.Name, cmd)
	}
}

// Status is the subset of bgp.Status the tests read.
type Status struct {
	Fit       bool     `json:"fit"`
	Phase     string   `json:"phase"`
	Announced []string `json:"announced"`
	Peers     []struct {
		Name             string `json:"name"`
		Address          string `json:"address"`
		State            string `json:"state"`
		RoutesAdvertised int    `json:"routesAdvertised"`
	} `json:"peers"`
}

// Status asks the speaker for its status.
func (p *Proc) Status() (Status, error) {
	var st Status
	line, err := p.Do("status")
	if err != nil {
		return st, err
	}
	err = json.Unmarshal([]byte(line), &st)
	return st, err
}

// Signal sends sig to the speaker process.
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the process to exit.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v", p.Name, timeout)
	}
}

// RunIn runs bin with args in ns and returns stdout (stderr is included in errors).
func RunIn(ns, bin string, args ...string) ([]byte, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %v: %w: %s", bin, args, err, stderr.String())
	}
	return out, nil
}
