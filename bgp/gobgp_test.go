package bgp

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

func TestAPIPeer(t *testing.T) {
	g := NewGoBGP(slog.New(slog.NewTextHandler(io.Discard, nil)))
	g.global = Global{ASN: 65001}
	p := g.apiPeer(PeerConfig{
		Name: "tor", Address: netip.MustParseAddr("198.18.1.1"), Port: 179, PeerASN: 65000, LocalASN: 65002,
		SourceAddress: netip.MustParseAddr("198.18.1.11"), HoldTime: 3 * time.Second, KeepaliveTime: time.Second,
		ConnectRetry: 2 * time.Second, IdleHoldTime: time.Second, Password: "pw", TTLSecurityHops: 1,
		IPv4: true, IPv6: true, GracefulRestart: true, RestartTime: 30 * time.Second,
	})
	checks := []struct {
		name      string
		got, want any
	}{
		{"local as", p.Conf.LocalAsn, uint32(65002)},
		{"password", p.Conf.AuthPassword, "pw"},
		{"source", p.Transport.LocalAddress, "198.18.1.11"},
		{"hold", p.Timers.Config.HoldTime, uint64(3)},
		{"connect retry", p.Timers.Config.ConnectRetry, uint64(2)},
		{"idle hold", p.Timers.Config.IdleHoldTimeAfterReset, uint64(1)},
		{"gtsm ttl min", p.TtlSecurity.TtlMin, uint32(255)},
		{"gr restart time", p.GracefulRestart.RestartTime, uint32(30)},
		{"gr restarting bit", p.GracefulRestart.LocalRestarting, true},
		{"gr deferral", p.GracefulRestart.DeferralTime, uint32(10)},
		{"families", len(p.AfiSafis), 2},
		{"per-family gr", p.AfiSafis[1].MpGracefulRestart.Config.Enabled, true},
		{"no multihop", p.EbgpMultihop == nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}
