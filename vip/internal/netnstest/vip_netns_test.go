package netnstest

import (
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}

var allVIPs = []netip.Addr{VIP4a, VIP4b, VIP6}

// requireRoot skips when the test cannot create network namespaces. CI runs as root, where these tests must pass.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces (CI runs these as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs iproute2's ip command")
	}
}

func startConverged(t *testing.T, n int) *Lab {
	l := New(t, n)
	l.Start()
	took := l.Eventually(15*time.Second, "every VIP held by exactly one node, every node sees all", func() bool {
		return l.Converged(allVIPs, n, l.Nodes...)
	})
	t.Logf("converged in %v", took)
	return l
}

func owner(t *testing.T, l *Lab, a netip.Addr) *Node {
	t.Helper()
	h := l.Holders(a)
	if len(h) != 1 {
		t.Fatalf("%s held by %v, want exactly one", a, h)
	}
	return l.Node(h[0])
}

// Exactly one node holds, answers ARP for and serves each VIP (IPv4 and IPv6), and every node agrees on the owner.
func TestExactlyOneOwner(t *testing.T) {
	requireRoot(t)
	l := startConverged(t, 3)
	for _, a := range allVIPs {
		o := owner(t, l, a)
		for _, nd := range l.Nodes {
			s, err := nd.Status()
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range s.VIPs {
				if v.Addr == a && v.Owner != o.Name {
					t.Errorf("%s thinks %s is owned by %q, the kernel says %s", nd.Name, a, v.Owner, o.Name)
				}
			}
		}
		got, err := l.Ask(a, time.Second)
		if err != nil || got != o.Name {
			t.Errorf("client asked %s: answer %q, err %v; want %s", a, got, err, o.Name)
		}
		if a.Is4() {
			macs, err := l.ARPAnswers(a, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(macs, []string{o.MAC()}) {
				t.Errorf("ARP for %s answered by %v, want only the owner %s (%s)", a, macs, o.Name, o.MAC())
			}
		}
	}
	// IPv6 VIPs are added without DAD: never tentative, never dadfailed.
	o := owner(t, l, VIP6)
	out, _ := exec.Command("ip", "-n", o.NS, "-6", "-o", "addr", "show", "dev", "eth0", "to", VIP6.String()+"/128").Output()
	words := splitWords(string(out))
	if !slices.Contains(words, "nodad") {
		t.Errorf("IPv6 VIP not added with nodad: %s", out)
	}
	for _, bad := range []string{"tentative", "dadfailed"} {
		if slices.Contains(words, bad) {
			t.Errorf("IPv6 VIP address state %s: %s", bad, out)
		}
	}

	// An immediate stop (no drain) still leaves no address behind.
	o.Signal(syscall.SIGINT)
	if !o.Wait(10 * time.Second) {
		t.Fatal("owner did not exit on SIGINT")
	}
	for _, a := range allVIPs {
		if o.Holds(a) {
			t.Errorf("%s left %s on its interface after exiting", o.Name, a)
		}
	}
}

// SIGKILL of the owner: another node answers; the interruption is measured (the benchmark prints p50/p99).
func TestKillOwnerFailover(t *testing.T) {
	requireRoot(t)
	l := startConverged(t, 3)
	victim := owner(t, l, VIP4a)
	loop := l.StartLoop(VIP4a, 10*time.Millisecond, 50*time.Millisecond, 3000, 20*time.Second)
	time.Sleep(300 * time.Millisecond) // a baseline of answers before the kill
	kill := time.Now()
	victim.Signal(syscall.SIGKILL)
	if !victim.Wait(5 * time.Second) {
		t.Fatal("victim did not die")
	}
	victim.Cleanup() // systemd's ExecStopPost: a crashed node must not keep answering ARP
	rest := slices.DeleteFunc(slices.Clone(l.Nodes), func(n *Node) bool { return n == victim })
	l.Eventually(10*time.Second, "VIPs re-owned by the survivors", func() bool { return l.Converged(allVIPs, 2, rest...) })
	l.Eventually(10*time.Second, "client answered by a survivor", func() bool {
		s, err := l.Ask(VIP4a, 200*time.Millisecond)
		return err == nil && s != victim.Name
	})
	// The loop's own answers after the failover (it can be faster than the loop's 50 ms request timeout).
	time.Sleep(300 * time.Millisecond)
	samples := loop.Stop()
	d, failed, ok := Interruption(samples, kill, victim.Name)
	if !ok {
		t.Fatalf("no survivor answered %s after the kill:\n%s", VIP4a, String(samples))
	}
	t.Logf("SIGKILL of %s: %s answered again after %v (%d failed requests)", victim.Name, VIP4a, d, failed)
	// A generous sanity bound, not the target (the benchmark measures against 1 s).
	if d > 5*time.Second {
		t.Errorf("interruption %v, want well under 5s", d)
	}
	if got := l.Holders(VIP4a); slices.Contains(got, victim.Name) {
		t.Errorf("dead node still holds %s after cleanup", VIP4a)
	}
}

// SIGTERM of the owner: drain hands every VIP over with zero failed requests, and the stopped node leaves no
// address behind.
func TestGracefulStopNoFailedRequests(t *testing.T) {
	requireRoot(t)
	l := startConverged(t, 3)
	victim := owner(t, l, VIP4a)
	loops := map[netip.Addr]*Loop{}
	for _, a := range allVIPs {
		loops[a] = l.StartLoop(a, 5*time.Millisecond, 500*time.Millisecond, 4000, 20*time.Second)
	}
	time.Sleep(300 * time.Millisecond)
	stop := time.Now()
	victim.Signal(syscall.SIGTERM)
	if !victim.Wait(15 * time.Second) {
		t.Fatal("victim did not stop after SIGTERM")
	}
	t.Logf("graceful stop took %v", time.Since(stop))
	time.Sleep(300 * time.Millisecond) // answers after the stop
	for a, lp := range loops {
		samples := lp.Stop()
		if f := Failed(samples); f != 0 {
			t.Errorf("%s: %d of %d requests failed during the planned handoff:\n%s", a, f, len(samples), String(samples))
		}
		if who := Answerers(samples); slices.Contains(who, victim.Name) && who[len(who)-1] == victim.Name {
			t.Errorf("%s: still answered by the stopped node: %v", a, who)
		}
		t.Logf("%s: %d requests, answered by %v, %d retried once after a reset in flight", a, len(samples), Answerers(samples), Retried(samples))
	}
	for _, a := range allVIPs {
		if victim.Holds(a) {
			t.Errorf("stopped node left %s on its interface", a)
		}
	}
	rest := slices.DeleteFunc(slices.Clone(l.Nodes), func(n *Node) bool { return n == victim })
	l.Eventually(5*time.Second, "survivors own everything", func() bool { return l.Converged(allVIPs, 2, rest...) })
}

// Partition one node (drop its link) and heal: after healing, exactly one owner per VIP and one ARP answer.
func TestPartitionHeal(t *testing.T) {
	requireRoot(t)
	l := startConverged(t, 3)
	iso := owner(t, l, VIP4a)
	iso.SetLink(false)
	// Isolated, the node sees only itself and (minMembers 1) claims every VIP; the others re-elect among themselves.
	l.Eventually(10*time.Second, "isolated node alone and holding every VIP", func() bool {
		s, err := iso.Status()
		if err != nil || len(s.Members) != 1 {
			return false
		}
		for _, a := range allVIPs {
			if !iso.Holds(a) {
				return false
			}
		}
		return true
	})
	// Meanwhile the connected side re-elected among itself: exactly one of the other two holds each VIP.
	rest := slices.DeleteFunc(slices.Clone(l.Nodes), func(n *Node) bool { return n == iso })
	l.Eventually(10*time.Second, "connected side re-elected", func() bool {
		for _, a := range allVIPs {
			n := 0
			for _, nd := range rest {
				if nd.Holds(a) {
					n++
				}
			}
			if n != 1 {
				return false
			}
		}
		return true
	})
	if got, err := l.Ask(VIP4a, time.Second); err != nil || got == iso.Name {
		t.Errorf("during the partition %s answered by %q (err %v), want a connected node", VIP4a, got, err)
	}
	iso.SetLink(true)
	took := l.Eventually(15*time.Second, "one owner per VIP after healing", func() bool { return l.Converged(allVIPs, 3, l.Nodes...) })
	t.Logf("re-merged and converged %v after healing", took)
	for _, a := range []netip.Addr{VIP4a, VIP4b} {
		o := owner(t, l, a)
		macs, err := l.ARPAnswers(a, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(macs, []string{o.MAC()}) {
			t.Errorf("after healing, ARP for %s answered by %v, want only %s", a, macs, o.MAC())
		}
		if got, err := l.Ask(a, time.Second); err != nil || got != o.Name {
			neigh, _ := exec.Command("ip", "-n", l.Client, "neigh").CombinedOutput()
			macs := ""
			for _, nd := range l.Nodes {
				macs += nd.Name + "=" + nd.MAC() + " "
			}
			t.Errorf("after healing, %s answered by %q (err %v), want %s\nat %s; MACs %s; client neighbours:\n%s%s", a, got, err, o.Name, time.Now().Format("15:04:05.000"), macs, neigh, l.debug())
		}
	}
}

// A node with the wrong gossip key is never admitted; with minMembers 2 it claims nothing while alone.
func TestWrongKeyNotAdmitted(t *testing.T) {
	requireRoot(t)
	l := New(t, 4)
	bad := l.Nodes[3]
	bad.File.VIP.Memberlist.Secret = "not-the-cluster-secret"
	bad.File.VIP.MinMembers = 2
	good := l.Nodes[:3]
	l.Start()
	l.Eventually(15*time.Second, "the three good nodes converge", func() bool { return l.Converged(allVIPs, 3, good...) })
	l.Eventually(5*time.Second, "bad node ready", func() bool { s, err := bad.Status(); return err == nil && s.Ready })
	// Several rejoin rounds (3 s each) must pass without admission.
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) {
		for _, nd := range good {
			s, err := nd.Status()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range s.Members {
				if m.Name == bad.Name {
					t.Fatalf("%s admitted the node with the wrong key", nd.Name)
				}
			}
		}
		if s, _ := bad.Status(); len(s.Members) != 1 {
			t.Fatalf("wrong-key node sees %d members", len(s.Members))
		}
		for _, a := range allVIPs {
			if bad.Holds(a) {
				t.Fatalf("wrong-key node claimed %s", a)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !slices.ContainsFunc([]string{bad.Log()}, func(s string) bool { return len(s) > 0 }) {
		t.Error("no log from the wrong-key node")
	}
}

func splitWords(s string) []string {
	var out []string
	word := []rune{}
	for _, r := range s + " " {
		if r == ' ' || r == '\n' || r == '\t' {
			if len(word) > 0 {
				out = append(out, string(word))
			}
			word = word[:0]
			continue
		}
		word = append(word, r)
	}
	return out
}
