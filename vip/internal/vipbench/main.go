// Command vipbench measures VIP failover with real vipnode processes in network namespaces (root required):
//
//   - failover: SIGKILL the owner of a VIP (followed by the cleanup systemd's ExecStopPost runs) while a client
//     sends a request every 5 ms; the interruption is the time from the kill to the first answer by a survivor.
//   - handoff: SIGTERM the owner (planned drain) while clients send a request every 5 ms to every VIP; counts
//     failed requests.
//   - link cut: the owner's switch port goes down (host loss: no RST from a closed port, memberlist's suspicion
//     decides); measured like the SIGKILL failover.
//
// Usage: go run ./vip/internal/vipbench -trials 20 -handoffs 5 -linkdowns 10
//
// Each failover trial also prints when the survivors' logs show the phases (suspicion, the failure verdict, the
// new owner's address) so the time can be attributed.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/vip/internal/netnstest"
)

func main() {
	trials := flag.Int("trials", 20, "SIGKILL failover trials")
	handoffs := flag.Int("handoffs", 5, "planned handoff (SIGTERM) trials")
	linkdowns := flag.Int("linkdowns", 0, "host-loss trials: the owner's link is cut (no RST from a closed port: memberlist's suspicion path)")
	loadFor := flag.Duration("load", 0, "also watch an idle cluster under full CPU load this long and count false failovers")
	hogs := flag.Int("hogs", 0, "busy-loop processes running during the whole benchmark (CPU load)")
	flag.Parse()

	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "vipbench: needs root to create network namespaces")
		os.Exit(2)
	}
	b := &bench{}
	code := 0
	func() {
		if *hogs > 0 {
			stop := busy(*hogs)
			defer stop()
			fmt.Printf("running with %d busy-loop processes on %d CPUs\n", *hogs, runtime.NumCPU())
		}
		defer func() {
			if r := recover(); r != nil && r != errFatal {
				panic(r)
			} else if r != nil {
				code = 1
			}
			b.cleanup()
			netnstest.RemoveBinary()
		}()
		run(b, *trials, *handoffs, *linkdowns, *loadFor)
	}()
	os.Exit(code)
}

var allVIPs = []netnstestAddr{netnstest.VIP4a, netnstest.VIP4b, netnstest.VIP6}

func run(b *bench, trials, handoffs, linkdowns int, loadFor time.Duration) {
	l := netnstest.New(b, 3)
	l.Start()
	converge := func() {
		l.Eventually(20*time.Second, "converged", func() bool { return l.Converged(allVIPs, 3, l.Nodes...) })
		// Let the takeover burst of the previous step finish (3 x 1.1 s) so it does not mask the next failure.
		time.Sleep(2500 * time.Millisecond)
	}
	converge()

	var summary []func()
	failover := func(what string, n int, fail func(victim *netnstest.Node), recover func(victim *netnstest.Node)) {
		var kills []time.Duration
		var killFailed []int
		var killPhases []phases
		for i := range n {
			victim := l.Node(l.Holders(netnstest.VIP4a)[0])
			loop := l.StartLoop(netnstest.VIP4a, 5*time.Millisecond, 20*time.Millisecond, 10000, 30*time.Second)
			time.Sleep(200 * time.Millisecond)
			kill := time.Now()
			fail(victim)
			var answered time.Time
			l.Eventually(10*time.Second, "survivor answers", func() bool {
				s, err := l.Ask(netnstest.VIP4a, 100*time.Millisecond)
				answered = time.Now()
				return err == nil && s != victim.Name
			})
			samples := loop.Stop()
			d, failed, ok := netnstest.Interruption(samples, kill, victim.Name)
			if !ok {
				// The loop's 20 ms timeout can miss answers on a loaded host; the confirming request (100 ms timeout)
				// bounds the interruption from above.
				d = answered.Sub(kill)
				fmt.Printf("  (trial %d: loop saw no answer, using the confirming request)\n", i+1)
			}
			kills = append(kills, d)
			killFailed = append(killFailed, failed)
			ph := measurePhases(l, victim, kill, netnstest.VIP4a.String())
			ph.answer = d
			killPhases = append(killPhases, ph)
			fmt.Printf("%s trial %2d: %s, interruption %v, failed requests %d (%v)\n", what, i+1, victim.Name, d.Round(time.Millisecond), failed, ph)
			recover(victim)
			converge()
		}
		if len(kills) == 0 {
			return
		}
		s := slices.Clone(kills)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		sum := 0
		for _, f := range killFailed {
			sum += f
		}
		summary = append(summary, func() {
			fmt.Printf("failover after %s over %d trials: p50 %v  p99 %v  min %v  max %v  (failed requests total %d)\n",
				what, len(s), pct(s, 50), pct(s, 99), s[0].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), sum)
			phaseSummary(killPhases)
		})
	}
	failover("SIGKILL", trials, func(victim *netnstest.Node) {
		victim.Signal(syscall.SIGKILL)
		victim.Wait(5 * time.Second)
		victim.Cleanup()
	}, func(victim *netnstest.Node) { victim.Start() })
	failover("link cut", linkdowns, func(victim *netnstest.Node) { victim.SetLink(false) },
		func(victim *netnstest.Node) { victim.SetLink(true) })

	var handoffFailed []int
	handoffRetried := 0
	for i := range handoffs {
		victim := l.Node(l.Holders(netnstest.VIP4a)[0])
		var loops []*netnstest.Loop
		for _, a := range allVIPs {
			loops = append(loops, l.StartLoop(a, 5*time.Millisecond, 500*time.Millisecond, 10000, 30*time.Second))
		}
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		victim.Signal(syscall.SIGTERM)
		victim.Wait(15 * time.Second)
		took := time.Since(start)
		time.Sleep(300 * time.Millisecond)
		failed, total, retried := 0, 0, 0
		for _, lp := range loops {
			s := lp.Stop()
			failed += netnstest.Failed(s)
			total += len(s)
			retried += netnstest.Retried(s)
			for _, x := range s {
				if x.Err != nil {
					fmt.Printf("  failed request at +%v: %v\n", x.At.Sub(start).Round(time.Millisecond), x.Err)
				}
			}
		}
		handoffFailed = append(handoffFailed, failed)
		handoffRetried += retried
		fmt.Printf("handoff trial %2d: stopped %s in %v, failed requests %d of %d (%d retried once after a reset in flight)\n", i+1, victim.Name, took.Round(time.Millisecond), failed, total, retried)
		victim.Start()
		converge()
	}

	if loadFor > 0 {
		underLoad(l, loadFor)
	}

	fmt.Println()
	for _, f := range summary {
		f()
	}
	if len(handoffFailed) > 0 {
		sum := 0
		for _, f := range handoffFailed {
			sum += f
		}
		fmt.Printf("planned handoff (SIGTERM) over %d trials: failed requests %v (total %d; %d requests retried once after a reset in flight)\n", len(handoffFailed), handoffFailed, sum, handoffRetried)
	}
}

// pct is the nearest-rank percentile of sorted s.
func pct(s []time.Duration, p int) time.Duration {
	i := (p*len(s) + 99) / 100
	i = min(max(i, 1), len(s))
	return s[i-1].Round(time.Millisecond)
}

// underLoad saturates every CPU with busy loops and watches an otherwise idle cluster: with ~1 s detection a
// starved node may be suspected and declared dead although it is alive (Lifeguard's awareness is the defence).
// Counts VIP moves and member-count dips seen from the status files.
func underLoad(l *netnstest.Lab, d time.Duration) {
	stop := busy(runtime.NumCPU() * 2)
	defer stop()
	owners := map[netnstestAddr]string{}
	for _, a := range allVIPs {
		owners[a] = strings.Join(l.Holders(a), ",")
	}
	moves, dips, samples := 0, 0, 0
	start := time.Now()
	end := start.Add(d)
	for time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
		samples++
		for _, a := range allVIPs {
			if h := strings.Join(l.Holders(a), ","); h != owners[a] {
				moves++
				fmt.Printf("under load: %s moved from %q to %q\n", a, owners[a], h)
				owners[a] = h
			}
		}
		for _, nd := range l.Nodes {
			if s, err := nd.Status(); err == nil && len(s.Members) < len(l.Nodes) {
				dips++
			}
		}
	}
	suspicions, failed, refused := 0, 0, 0
	for _, nd := range l.Nodes {
		suspicions += len(logTimes(nd, start, "Suspect", "has failed"))
		failed += len(logTimes(nd, start, "Marking", "as failed"))
		refused += len(logTimes(nd, start, "port refused"))
	}
	fmt.Printf("under full CPU load for %v (%d busy-loop processes on %d CPUs): %d VIP moves, %d of %d status samples with a member missing; "+
		"memberlist suspicions %d (refuted unless failed), members marked failed %d, dead-port verdicts %d\n",
		d, runtime.NumCPU()*2, runtime.NumCPU(), moves, dips, samples*len(l.Nodes), suspicions, failed, refused)
}

// busy starts n busy-loop processes (separate processes, so the benchmark's own client is starved only by the
// kernel scheduler, like the nodes, not by its Go scheduler); the returned func kills them.
func busy(n int) func() {
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "vipbench: start load:", err)
			continue
		}
		cmds = append(cmds, cmd)
	}
	return func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
}
