package systemd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// watchdogEnv configures the watchdog for this process as systemd would.
func watchdogEnv(t *testing.T, timeout time.Duration) {
	t.Helper()
	t.Setenv("WATCHDOG_USEC", strconv.FormatInt(timeout.Microseconds(), 10))
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
}

// lockedBuffer is a log sink shared by the watchdog goroutine and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestWatchdogSchedule drives RunWatchdog on the fake clock of a synctest
// bubble while the pings travel over a real unixgram socket: sends never
// block (the queue is drained before it fills), so the bubble's goroutines
// stay durably blocked on the ticker and time advances deterministically.
func TestWatchdogSchedule(t *testing.T) {
	sd := listenNotify(t)
	watchdogEnv(t, 2*time.Second) // pings due every 1 s
	logs := &lockedBuffer{}

	synctest.Test(t, func(t *testing.T) {
		var sick atomic.Pointer[error]
		healthy := func() error {
			if e := sick.Load(); e != nil {
				return *e
			}
			return nil
		}
		n := New(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- n.RunWatchdog(ctx, healthy) }()

		start := time.Now()
		wedged := errors.New("xds owner loop did not answer")
		steps := []struct {
			at     time.Duration // fake time since start when we look
			before func()        // applied before advancing to at
			want   []string
		}{
			{at: 0, want: []string{"WATCHDOG=1"}},           // first ping at once
			{at: 999 * time.Millisecond, want: nil},         // nothing before half the timeout
			{at: time.Second, want: []string{"WATCHDOG=1"}}, // exactly at half
			{at: 2 * time.Second, want: []string{"WATCHDOG=1"}},
			{at: 3 * time.Second, before: func() { sick.Store(&wedged) }, want: nil}, // unhealthy: withheld
			{at: 4 * time.Second, want: nil},                                         // still unhealthy
			{at: 5 * time.Second, before: func() { sick.Store(nil) }, want: []string{"WATCHDOG=1"}},
			{at: 6 * time.Second, want: []string{"WATCHDOG=1"}},
		}
		for _, s := range steps {
			if s.before != nil {
				s.before()
			}
			time.Sleep(start.Add(s.at).Sub(time.Now()))
			synctest.Wait()
			if diff := cmp.Diff(s.want, sd.drain(t)); diff != "" {
				t.Fatalf("at %v: datagrams (-want +got):\n%s", s.at, diff)
			}
		}

		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunWatchdog returned %v after cancel, want nil", err)
			}
		default:
			t.Fatal("RunWatchdog still running after its context was cancelled")
		}
		if got := sd.drain(t); len(got) != 0 {
			t.Errorf("got %q after cancel, want no more pings", got)
		}
	})

	// Two unhealthy ticks, one error line; recovery logged once.
	out := logs.String()
	if got := strings.Count(out, "withholding systemd watchdog ping"); got != 1 {
		t.Errorf("got %d 'withholding' log lines, want 1:\n%s", got, out)
	}
	if !strings.Contains(out, "xds owner loop did not answer") {
		t.Errorf("log does not carry the health error:\n%s", out)
	}
	if got := strings.Count(out, "resuming systemd watchdog pings"); got != 1 {
		t.Errorf("got %d 'resuming' log lines, want 1:\n%s", got, out)
	}
}

// TestWatchdogBlockedHealthCheckStopsPings: a health check that hangs is a
// wedged daemon; no ping may go out while it hangs.
func TestWatchdogBlockedHealthCheckStopsPings(t *testing.T) {
	sd := listenNotify(t)
	watchdogEnv(t, 2*time.Second)
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var calls atomic.Int32
		healthy := func() error {
			if calls.Add(1) == 2 {
				<-release // the second check wedges
			}
			return nil
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- New(nil).RunWatchdog(ctx, healthy) }()

		synctest.Wait()
		if diff := cmp.Diff([]string{"WATCHDOG=1"}, sd.drain(t)); diff != "" {
			t.Fatalf("at start (-want +got):\n%s", diff)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := sd.drain(t); len(got) != 0 {
			t.Fatalf("got %q while the health check hung, want none", got)
		}
		// Un-wedge: the pending check completes and pings, then the tick
		// that came due while it hung runs at once (a Ticker keeps one).
		close(release)
		synctest.Wait()
		if diff := cmp.Diff([]string{"WATCHDOG=1", "WATCHDOG=1"}, sd.drain(t)); diff != "" {
			t.Fatalf("after release (-want +got):\n%s", diff)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunWatchdog: %v", err)
		}
	})
}

func TestWatchdogReturnsAtOnceWhenNotConfigured(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string // "" unsets
		notify bool
	}{
		{name: "no WATCHDOG_USEC", env: map[string]string{"WATCHDOG_USEC": "", "WATCHDOG_PID": ""}, notify: true},
		{name: "watchdog for another pid", env: map[string]string{"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": strconv.Itoa(os.Getpid() + 1)}, notify: true},
		{name: "no NOTIFY_SOCKET", env: map[string]string{"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": ""}, notify: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sd := listenNotify(t)
			if !tc.notify {
				t.Setenv("NOTIFY_SOCKET", "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
				if v == "" {
					os.Unsetenv(k)
				}
			}
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				called := false
				err := New(nil).RunWatchdog(t.Context(), func() error { called = true; return nil })
				if err != nil {
					t.Fatalf("got error %v, want nil", err)
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("returned after %v of fake time, want at once", d)
				}
				if called {
					t.Error("health check called although no watchdog is configured")
				}
			})
			if got := sd.drain(t); len(got) != 0 {
				t.Errorf("got datagrams %q, want none", got)
			}
		})
	}
}

func TestWatchdogRejectsMalformedEnv(t *testing.T) {
	for _, usec := range []string{"soon", "0", "-5"} {
		t.Run(usec, func(t *testing.T) {
			listenNotify(t)
			t.Setenv("WATCHDOG_USEC", usec)
			t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
			err := New(nil).RunWatchdog(t.Context(), func() error { return nil })
			if err == nil || !strings.Contains(err.Error(), "watchdog") {
				t.Errorf("WATCHDOG_USEC=%q: got error %v, want a watchdog settings error", usec, err)
			}
		})
	}
}

// TestWatchdogRealClock is the one test on the real clock: pings really
// arrive, repeatedly, at roughly half the timeout.
func TestWatchdogRealClock(t *testing.T) {
	sd := listenNotify(t)
	const timeout = 200 * time.Millisecond
	watchdogEnv(t, timeout)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- New(nil).RunWatchdog(ctx, func() error { return nil }) }()

	for i := range 3 {
		if got := sd.next(t); got != "WATCHDOG=1" {
			t.Fatalf("ping %d: got %q, want WATCHDOG=1", i, got)
		}
	}
	// Pings go at 0, 100 and 200 ms after start, and a ticker never fires
	// early, so the third cannot arrive before 200 ms unless the interval is
	// wrong. No upper bound: a loaded machine may deliver late.
	if got := time.Since(start); got < timeout {
		t.Errorf("three pings within %v, want the third no earlier than %v", got, timeout)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunWatchdog: %v", err)
	}
}
