package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/bgp/internal/lab"
)

// waitGone polls (1 ms) until addr is no longer a kernel next hop for p in ns and returns how long it took.
func waitGone(tb testing.TB, ns string, p netip.Prefix, addr netip.Addr, start time.Time, timeout time.Duration) time.Duration {
	for time.Since(start) < timeout {
		got, err := lab.KernelNextHops(ns, p)
		if err != nil {
			tb.Fatal(err)
		}
		if !slices.Contains(got, addr) {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
	tb.Fatalf("%s still a next hop for %s after %v", addr, p, timeout)
	return 0
}

// BenchmarkFailover measures, once (run with -benchtime=1x), against FRR with three nodes and hold 3 s:
// unfit -> next hop gone from the router's kernel (median of 5), requests failed during a graceful drain,
// long-lived connections to healthy nodes broken by one withdraw (ECMP rehash), and hold-timer detection
// of a frozen node and of a cut link.
func BenchmarkFailover(b *testing.B) {
	lab.Skip(b, lab.FRRBin+"/bgpd", "vtysh")
	tp := ecmpTopo(b, 3, nodeOpts{fit: true})
	b.ResetTimer()

	// 1. unfit -> kernel.
	var samples []time.Duration
	for range 5 {
		start := time.Now()
		if _, err := tp.Procs[2].Do("unfit"); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, waitGone(b, tp.R, vip4, nodeV4(3), start, 5*time.Second))
		if _, err := tp.Procs[2].Do("fit"); err != nil {
			b.Fatal(err)
		}
		if _, err := waitKernel(tp.R, vip4, addrs(nodeV4, 1, 2, 3), 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[2].Microseconds())/1000, "unfit_to_kernel_ms")
	b.Logf("unfit -> router kernel samples: %v", samples)

	// 2. long-lived connections broken on one withdraw.
	const conns = 40
	cmd := exec.Command("ip", "netns", "exec", tp.C, speakerBin, "longlived", "-addr", vip4.Addr().String()+":80", "-conns", fmt.Sprint(conns))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	rd := bufio.NewReader(stdout)
	if _, err := rd.ReadString('\n'); err != nil { // {"ready":true}
		b.Fatal(err)
	}
	start := time.Now()
	tp.Procs[2].Do("unfit")
	waitGone(b, tp.R, vip4, nodeV4(3), start, 5*time.Second)
	io.WriteString(stdin, "go\n")
	var ll struct{ Before, After []string }
	if err := json.NewDecoder(rd).Decode(&ll); err != nil {
		b.Fatal(err)
	}
	cmd.Wait()
	healthy, broken, toWithdrawn := 0, 0, 0
	for i := range ll.Before {
		if ll.Before[i] == "n3" {
			toWithdrawn++
			continue
		}
		healthy++
		if ll.After[i] == "" {
			broken++
		}
	}
	b.ReportMetric(float64(broken), "longlived_broken_healthy")
	b.Logf("long-lived: %d of %d connections to healthy nodes broke on one withdraw (%d were on the withdrawn node)", broken, healthy, toWithdrawn)
	tp.Procs[2].Do("fit")
	if _, err := waitKernel(tp.R, vip4, addrs(nodeV4, 1, 2, 3), 5*time.Second); err != nil {
		b.Fatal(err)
	}

	// 3. graceful drain under load.
	done := make(chan loadResult, 1)
	go func() { done <- load(b, tp.C, "http://198.19.0.10/", 1000000, drainClients, 6*time.Second) }()
	time.Sleep(time.Second)
	tp.Procs[0].Signal(syscall.SIGTERM)
	r := <-done
	b.ReportMetric(float64(r.Failed), "drain_failed_requests")
	b.ReportMetric(float64(r.OK)/r.Seconds, "drain_load_req/s")
	b.Logf("drain: %d ok, %d failed (%v)", r.OK, r.Failed, r.Errors)
	tp.Procs[0].Wait(10 * time.Second)

	// 4. frozen node (SIGSTOP): hold timer 3 s.
	start = time.Now()
	tp.Procs[1].Signal(syscall.SIGSTOP)
	d := waitGone(b, tp.R, vip4, nodeV4(2), start, 10*time.Second)
	tp.Procs[1].Signal(syscall.SIGCONT)
	b.ReportMetric(float64(d.Milliseconds()), "sigstop_detect_ms")

	// 5. cut link (the node's bridge port goes down; the router's own interface stays up).
	start = time.Now()
	lab.Run("ip", "-n", tp.R, "link", "set", "p3", "down")
	d = waitGone(b, tp.R, vip4, nodeV4(3), start, 10*time.Second)
	b.ReportMetric(float64(d.Milliseconds()), "linkcut_detect_ms")
}
