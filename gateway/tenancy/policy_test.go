package tenancy

import (
	"net/netip"
	"testing"
)

func TestCoversAndOverlap(t *testing.T) {
	tests := []struct {
		a, b          string
		covers, overl bool
	}{
		{"*.example.com", "a.example.com", true, true},
		{"*.example.com", "b.a.example.com", false, false},
		{"*.example.com", "example.com", false, false},
		{"*.example.com", "*.example.com", false, true},
		{"*.example.com", "*.a.example.com", false, false},
		{"a.example.com", "a.example.com", false, true},
		{"a.example.com", "*.example.com", false, true},
		{"*.ample.com", "a.example.com", false, false},
	}
	for _, tc := range tests {
		if got := Covers(tc.a, tc.b); got != tc.covers {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.covers)
		}
		if got := Overlap(tc.a, tc.b); got != tc.overl {
			t.Errorf("Overlap(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.overl)
		}
	}
	if got := Parent("a.b.example.com"); got != "*.b.example.com" {
		t.Errorf("Parent = %q", got)
	}
	if got := Parent("*.example.com"); got != "" {
		t.Errorf("Parent of a wildcard = %q, want empty", got)
	}
}

func TestCheckHost(t *testing.T) {
	p := &Policy{
		AllowedSuffixes: []string{"{tenant}.apps.example.com"},
		Reserved:        []string{"admin.apps.example.com", "*.internal.example.com"},
		Tenants: map[string]Tenant{
			"acme": {Pinned: []string{"shop.acme.com", "*.acme.io"}},
		},
	}
	acme, globex := ID{Cluster: "c", Name: "acme"}, ID{Cluster: "c", Name: "globex"}
	tests := []struct {
		id     ID
		host   string
		reason string // "" = allowed
	}{
		{acme, "web.acme.apps.example.com", ""},
		{acme, "*.acme.apps.example.com", ""},
		{acme, "a.b.acme.apps.example.com", ""},
		{acme, "acme.apps.example.com", ""},
		{acme, "web.globex.apps.example.com", ReasonHostnameNotAllowed},
		{acme, "*.apps.example.com", ReasonHostnameReserved}, // covers the reserved admin host
		{globex, "evilacme.apps.example.com", ReasonHostnameNotAllowed},
		{acme, "shop.acme.com", ""},
		{globex, "shop.acme.com", ReasonHostnameNotAllowed},
		{acme, "x.acme.io", ""},
		{acme, "*.acme.io", ""},
		{acme, "y.x.acme.io", ReasonHostnameNotAllowed},
		{acme, "admin.apps.example.com", ReasonHostnameReserved},
		{acme, "db.internal.example.com", ReasonHostnameReserved},
		{acme, "*.internal.example.com", ReasonHostnameReserved},
	}
	for _, tc := range tests {
		err := p.CheckHost(tc.id, tc.host)
		got := ""
		if err != nil {
			got = err.Reason
		}
		if got != tc.reason {
			t.Errorf("CheckHost(%s, %q) = %q (%v), want %q", tc.id, tc.host, got, err, tc.reason)
		}
	}
	if err := (&Policy{}).CheckHost(acme, "anything.example.org"); err != nil {
		t.Errorf("empty policy refused a host: %v", err)
	}
}

func TestEndpointAllowed(t *testing.T) {
	p := &Policy{DeniedRanges: append([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}, AlwaysDenied...), NodeAddresses: NewAddressSet(netip.MustParseAddr("198.51.100.7"))}
	for addr, want := range map[string]bool{
		"198.18.0.10": true, "127.0.0.1": false, "127.9.9.9": false, "::1": false, "169.254.169.254": false,
		"fe80::1": false, "10.0.0.5": false, "10.0.1.5": true, "198.51.100.7": false, "::ffff:127.0.0.1": false,
		"0.0.0.0": false, "2001:db8::1": true,
	} {
		if got := p.EndpointAllowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("EndpointAllowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestTenantOf(t *testing.T) {
	p := &Policy{TenantLabel: map[string]string{"main": "owner"}}
	if got := p.TenantOf("main", "ns1", map[string]string{"owner": "acme"}); got != (ID{Cluster: "main", Name: "acme"}) {
		t.Errorf("labelled namespace: %v", got)
	}
	if got := p.TenantOf("main", "ns2", nil); got != (ID{Cluster: "main", Name: "ns2", Unlabelled: true}) {
		t.Errorf("unlabelled namespace: %v", got)
	}
	// A namespace named like a label group is not that group.
	if a, b := p.TenantOf("main", "acme", nil), p.TenantOf("main", "x", map[string]string{"owner": "acme"}); a == b {
		t.Errorf("unlabelled namespace %q joined label group %v", "acme", b)
	}
	if got := p.TenantOf("other", "ns1", map[string]string{"owner": "acme"}); got != (ID{Cluster: "other", Name: "ns1"}) {
		t.Errorf("cluster without a tenant label: %v", got)
	}
	// An unlabelled namespace gets no {tenant} suffix and no per-tenant overrides.
	p.AllowedSuffixes = []string{"{tenant}.apps.example.com"}
	p.Tenants = map[string]Tenant{"acme": {Pinned: []string{"shop.acme.com"}}}
	unl := p.TenantOf("main", "acme", nil)
	for _, h := range []string{"web.acme.apps.example.com", "shop.acme.com"} {
		if err := p.CheckHost(unl, h); err == nil {
			t.Errorf("unlabelled namespace named acme may use %q", h)
		}
	}
	if err := p.CheckHost(p.TenantOf("main", "x", map[string]string{"owner": "acme"}), "web.acme.apps.example.com"); err != nil {
		t.Errorf("label group acme: %v", err)
	}
}
