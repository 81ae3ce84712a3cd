package xdsbuild

import (
	"fmt"
	"testing"
)

// TestScopeName: names fit libc++'s 22-byte short-string buffer (see ScopeName), never start with
// "*" (wildcard hosts), are stable across releases (a renamed scope is a remove and an add for every
// host when an upgraded edgegate reconnects to a running Envoy), and differ for different hosts.
func TestScopeName(t *testing.T) {
	if got, want := ScopeName("shop.example.com"), "ssulchitprmzyrabku5eqo"; got != want {
		t.Fatalf("ScopeName(shop.example.com) = %q, want %q (a change renames every scope of a running Envoy)", got, want)
	}
	if got := ScopeName("*.example.com"); got[0] == '*' || len(got) != 22 {
		t.Fatalf("ScopeName(*.example.com) = %q: want 22 bytes, not starting with *", got)
	}
	seen := map[string]string{}
	for i := range 100_000 {
		host := fmt.Sprintf("r%d.tenant-%d.example.com", i, i%977)
		name := ScopeName(host)
		if len(name) > 22 {
			t.Fatalf("ScopeName(%q) = %q: %d bytes, want at most 22", host, name, len(name))
		}
		if other, dup := seen[name]; dup {
			t.Fatalf("%q and %q share scope name %q", host, other, name)
		}
		seen[name] = host
	}
}
