package announce

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

func TestBurstSpacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		errs := 0
		Burst(t.Context(), 3, 1100*time.Millisecond, func() error {
			at = append(at, time.Since(start))
			return errors.New("lost")
		}, func(error) { errs++ })
		want := []time.Duration{0, 1100 * time.Millisecond, 2200 * time.Millisecond}
		if len(at) != len(want) {
			t.Fatalf("sent at %v, want %v", at, want)
		}
		for i := range want {
			if at[i] != want[i] {
				t.Errorf("copy %d at %v, want %v", i, at[i], want[i])
			}
		}
		if errs != 3 {
			t.Errorf("%d errors reported, want 3 (errors must not stop the burst)", errs)
		}
	})
}

func TestBurstStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		n := 0
		go func() { time.Sleep(1500 * time.Millisecond); cancel() }()
		Burst(ctx, 10, time.Second, func() error { n++; return nil }, nil)
		if n != 2 {
			t.Errorf("%d copies before cancel at 1.5s, want 2", n)
		}
	})
}

func TestParseNATarget(t *testing.T) {
	target := netip.MustParseAddr("fd00:ee::200")
	pkt := make([]byte, 40+32)
	pkt[0] = 6 << 4
	pkt[6] = 58   // ICMPv6
	pkt[40] = 136 // neighbour advertisement
	copy(pkt[48:64], target.AsSlice())
	if got, ok := parseNATarget(pkt); !ok || got != target {
		t.Errorf("NA target %v %v, want %v", got, ok, target)
	}
	pkt[40] = 135 // solicitation: not an announcement
	if _, ok := parseNATarget(pkt); ok {
		t.Error("neighbour solicitation taken for an advertisement")
	}
	if _, ok := parseNATarget(pkt[:50]); ok {
		t.Error("truncated packet parsed")
	}
}

func TestEnsureARPSysctls(t *testing.T) {
	root := t.TempDir()
	old := SysctlRoot
	SysctlRoot = root
	t.Cleanup(func() { SysctlRoot = old })
	write := func(dev, name, v string) {
		os.MkdirAll(filepath.Join(root, dev), 0o755)
		if err := os.WriteFile(filepath.Join(root, dev, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(dev, name string) string {
		b, _ := os.ReadFile(filepath.Join(root, dev, name))
		return string(b)
	}
	write("all", "arp_ignore", "0")
	write("all", "arp_announce", "0")
	write("eth0", "arp_ignore", "0")
	write("eth0", "arp_announce", "0")

	if err := EnsureARPSysctls("eth0", false); !errors.Is(err, ErrSysctl) {
		t.Errorf("verify on defaults: %v, want ErrSysctl", err)
	}
	if err := EnsureARPSysctls("eth0", true); err != nil {
		t.Fatalf("set: %v", err)
	}
	if got := read("eth0", "arp_ignore") + read("eth0", "arp_announce"); got != "12" {
		t.Errorf("after set: arp_ignore+arp_announce = %q, want 1 and 2", got)
	}
	if err := EnsureARPSysctls("eth0", false); err != nil {
		t.Errorf("verify after set: %v", err)
	}
	// all=8 (ignore every request) cannot be lowered per interface: reported, not papered over.
	write("all", "arp_ignore", "8")
	if err := EnsureARPSysctls("eth0", true); !errors.Is(err, ErrSysctl) {
		t.Errorf("all.arp_ignore=8: %v, want ErrSysctl", err)
	}
}
