package membership

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// freePort returns a port free for both UDP and TCP on 127.0.0.1 (memberlist binds both).
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		tl.Close()
		if err == nil {
			ul.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// loopbackConfig is a real-socket member on 127.0.0.1 whose memberlist suspicion lasts 3 s (30 x 100 ms probes), so
// a removal within a second can only come from the dead-port fast path.
func loopbackConfig(port int, seeds []string) Config {
	c := Config{BindAddress: "127.0.0.1", BindPort: port, Seeds: seeds, Secret: "a-long-enough-test-secret"}
	c.Timings.SuspicionMult = 30
	c.Timings.RejoinInterval = metav1.Duration{Duration: time.Hour} // no re-join noise in the window
	return c.WithDefaults()
}

// A member whose process dies (its port closed, the host alive) is left out of the view at once by every other
// member, long before memberlist's suspicion ends, and is back as soon as it runs again.
func TestDeadPortFastPath(t *testing.T) {
	// memberlist's probe goroutines outlive its Shutdown by up to a probe interval: log to the test only until the
	// test ends (this cleanup, registered first, runs last).
	lw := &untilDone{t: t}
	t.Cleanup(func() { lw.mu.Lock(); lw.done = true; lw.mu.Unlock() })
	log := slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ports := []int{freePort(t), freePort(t), freePort(t)}
	seeds := []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}
	var survivors []*Membership
	for i, name := range []string{"a", "b"} {
		m, err := New(loopbackConfig(ports[i], seeds), name, Meta{Fit: true}, Options{Logger: log.With("node", name)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { m.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		<-m.Ready()
		survivors = append(survivors, m)
	}
	// The victim is a bare memberlist with our configuration, so it can die without leaving (Membership.Run leaves).
	startVictim := func() *memberlist.Memberlist {
		// Not the test log: a shut-down memberlist's goroutines may still log after the test ends.
		v, err := New(loopbackConfig(ports[2], seeds), "victim", Meta{Fit: true}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		conf, err := v.memberlistConfig()
		if err != nil {
			t.Fatal(err)
		}
		ml, err := memberlist.Create(conf)
		if err != nil {
			t.Fatal(err)
		}
		v.ml.Store(ml)
		if _, err := ml.Join(seeds); err != nil {
			t.Fatal(err)
		}
		return ml
	}
	victim := startVictim()
	waitAll := func(what string, want []string, timeout time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for _, m := range survivors {
			for !slices.Equal(names(m.Members()), want) {
				if time.Since(start) > timeout {
					t.Fatalf("%s: view of %s is %v after %v, want %v", what, m.name, names(m.Members()), timeout, want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return time.Since(start)
	}
	waitAll("joined", []string{"a", "b", "victim"}, 10*time.Second)

	victim.Shutdown() // a crash: no leave message, the port closes
	took := waitAll("victim's port closed", []string{"a", "b"}, time.Second)
	t.Logf("every survivor left the dead member out after %v (memberlist's suspicion alone: 3 s after the first failed probe)", took)

	victim = startVictim()
	t.Cleanup(func() { victim.Shutdown() }) // before the survivors stop: their reactions are logged while the test runs
	took = waitAll("victim back", []string{"a", "b", "victim"}, 5*time.Second)
	t.Logf("restarted member back in every view after %v", took)
}

type untilDone struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *untilDone) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(p))
	}
	return len(p), nil
}
