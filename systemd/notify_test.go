package systemd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestNotifySendsExactDatagram(t *testing.T) {
	tests := []struct {
		name string
		call func(*Notifier) error
		want string
	}{
		{"ready", (*Notifier).Ready, "READY=1"},
		{"stopping", (*Notifier).Stopping, "STOPPING=1"},
		{"status", func(n *Notifier) error { return n.Status("syncing 2/3 clusters") }, "STATUS=syncing 2/3 clusters"},
		{"status empty clears", func(n *Notifier) error { return n.Status("") }, "STATUS="},
		{"status newline cannot inject a variable", func(n *Notifier) error { return n.Status("ok\nREADY=1\r\nx\ry") }, "STATUS=ok READY=1 x y"},
		{"extend timeout", func(n *Notifier) error { return n.ExtendTimeout(90 * time.Second) }, "EXTEND_TIMEOUT_USEC=90000000"},
		{"extend timeout sub-second", func(n *Notifier) error { return n.ExtendTimeout(1500 * time.Microsecond) }, "EXTEND_TIMEOUT_USEC=1500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sd := listenNotify(t)
			if err := tc.call(New(nil)); err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if diff := cmp.Diff([]string{tc.want}, sd.drain(t)); diff != "" {
				t.Errorf("datagrams (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReloadingCarriesMonotonicTimestamp(t *testing.T) {
	sd := listenNotify(t)
	before := monotonicUsec(t)
	if err := New(nil).Reloading(); err != nil {
		t.Fatalf("Reloading: %v", err)
	}
	after := monotonicUsec(t)

	got := sd.next(t)
	rest, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
	if !ok || !strings.HasSuffix(rest, "\n") {
		t.Fatalf("got datagram %q, want \"RELOADING=1\\nMONOTONIC_USEC=<n>\\n\"", got)
	}
	usec, err := strconv.ParseInt(strings.TrimSuffix(rest, "\n"), 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC in %q: %v", got, err)
	}
	if usec < before || usec > after {
		t.Errorf("got MONOTONIC_USEC=%d, want within [%d, %d] (CLOCK_MONOTONIC around the call)", usec, before, after)
	}
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatalf("clock_gettime: %v", err)
	}
	return ts.Nano() / 1000
}

func TestNotifyOrderFromOneGoroutine(t *testing.T) {
	sd := listenNotify(t)
	n := New(nil)
	for _, call := range []func() error{
		func() error { return n.Status("starting") },
		n.Ready,
		func() error { return n.Status("draining") },
		n.Stopping,
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"STATUS=starting", "READY=1", "STATUS=draining", "STOPPING=1"}
	if diff := cmp.Diff(want, sd.drain(t)); diff != "" {
		t.Errorf("datagrams (-want +got):\n%s", diff)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	// systemd and container managers may hand out an abstract socket
	// ("@name"); the name is netns-wide, so make it unique.
	sd := listenNotifyAt(t, fmt.Sprintf("@edgegate-systemd-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := New(nil).Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if got := sd.next(t); got != "READY=1" {
		t.Errorf("got %q, want READY=1", got)
	}
}

func TestNotifyWithoutSocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New(nil)
	for name, call := range map[string]func() error{
		"ready":     n.Ready,
		"reloading": n.Reloading,
		"stopping":  n.Stopping,
		"status":    func() error { return n.Status("x") },
		"extend":    func() error { return n.ExtendTimeout(time.Second) },
	} {
		if err := call(); err != nil {
			t.Errorf("%s without NOTIFY_SOCKET: got error %v, want nil", name, err)
		}
	}
}

func TestNotifyMissingSocketReturnsError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	err := New(nil).Ready()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got error %v, want one wrapping fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), `"READY=1"`) {
		t.Errorf("error %q does not name the state that failed", err)
	}
}

func TestNotifierConcurrentUse(t *testing.T) {
	// Run with -race: concurrent calls must neither race nor merge datagrams.
	sd := listenNotify(t)
	n := New(nil)
	const workers = 4 // below net.unix.max_dgram_qlen (10 by default) so no send waits on the reader
	done := make(chan error, workers)
	for i := range workers {
		go func() { done <- n.Status(fmt.Sprintf("worker %d", i)) }()
	}
	for range workers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	got := sd.drain(t)
	want := map[string]bool{}
	for i := range workers {
		want[fmt.Sprintf("STATUS=worker %d", i)] = true
	}
	gotSet := map[string]bool{}
	for _, d := range got {
		gotSet[d] = true
	}
	if diff := cmp.Diff(want, gotSet); diff != "" || len(got) != workers {
		t.Errorf("got %d datagrams %q, want one per worker (-want +got):\n%s", len(got), got, diff)
	}
}
