package bgp

import (
	"context"
	"net/netip"
	"time"
)

// Speaker is the BGP speaker the component drives: GoBGP in production (NewGoBGP), FakeSpeaker in tests.
//
// Implementations are safe for concurrent use, but the component calls every method except Peers from its
// single owner goroutine. Methods block until the speaker accepted the change (not until peers received it)
// or ctx is done.
type Speaker interface {
	// Start starts the speaker with the global settings. onPeer is called, from a speaker goroutine, on
	// every session state change; it must not block. Start is called once per process.
	Start(ctx context.Context, g Global, onPeer func(PeerEvent)) error
	// Stop closes every session with a Cease notification (routers withdraw our routes at once).
	Stop(ctx context.Context) error
	// AddPeer configures a neighbour; it receives nothing until SetExport allows prefixes for it.
	AddPeer(ctx context.Context, p PeerConfig) error
	// UpdatePeer changes a configured neighbour (the speaker may reset the session).
	UpdatePeer(ctx context.Context, p PeerConfig) error
	// DeletePeer removes a neighbour, closing its session.
	DeletePeer(ctx context.Context, addr netip.Addr) error
	// SetExport sets, for every neighbour, the prefixes it may receive (neighbours not in the map receive
	// nothing). Announced routes newly allowed for a neighbour are sent to it before SetExport returns;
	// routes no longer allowed are NOT withdrawn from a live session (GoBGP evaluates old and new path
	// with the new policy): the caller withdraws and re-announces those prefixes.
	SetExport(ctx context.Context, export map[netip.Addr][]netip.Prefix) error
	// Announce adds or replaces the route for r.Prefix.
	Announce(ctx context.Context, r Route) error
	// Withdraw removes the route for prefix; unknown prefixes are not an error.
	Withdraw(ctx context.Context, prefix netip.Prefix) error
	// Peers reports the configured neighbours and their sessions.
	Peers(ctx context.Context) ([]PeerState, error)
}

// Global is the speaker-wide configuration.
type Global struct {
	ASN        uint32
	RouterID   netip.Addr
	ListenPort int32 // -1: no listener
}

// PeerConfig is one neighbour as the speaker needs it: MetalLB's BGPPeer after defaulting and resolution.
type PeerConfig struct {
	Name            string
	Address         netip.Addr
	Port            uint16
	PeerASN         uint32
	LocalASN        uint32 // the session's local AS (GoBGP local-as when it differs from Global.ASN)
	SourceAddress   netip.Addr
	HoldTime        time.Duration
	KeepaliveTime   time.Duration
	ConnectRetry    time.Duration
	IdleHoldTime    time.Duration
	Password        string // TCP MD5 (RFC 2385); empty: none
	EBGPMultiHop    bool
	TTLSecurityHops uint8 // GTSM (RFC 5082); 0: off
	IPv4, IPv6      bool  // address families enabled on the session
	// GracefulRestart advertises the GR capability (RFC 4724) with RestartTime and the per-family
	// forwarding-state flag: routers keep our routes as stale while edgegate restarts (restarting-speaker
	// mode), and we keep the session semantics of a helper for routers that restart (we import no routes,
	// so helping costs nothing).
	GracefulRestart bool
	// RestartTime is the advertised restart time. With GracefulRestart the speaker also always sets the
	// Restart State bit: after a crash the router still holds our routes as stale and replaces them once
	// we send End-of-RIB; on a first start the bit is harmless.
	RestartTime time.Duration
}

// Route is one announced prefix with its path attributes.
type Route struct {
	Prefix           netip.Prefix
	NextHop          netip.Addr // invalid: the session's local address (IPv4) / explicit required for MP-BGP
	Communities      []uint32   // standard communities, sorted
	LargeCommunities []LargeCommunity
	LocalPref        *uint32 // sent to iBGP peers only
	ASPathPrepend    uint8
}

// PeerState is a neighbour's session as the speaker reports it.
type PeerState struct {
	Address    netip.Addr
	State      SessionState
	Since      time.Time // last state change into Established (zero if never)
	Advertised uint64    // routes advertised to the peer, all families
}

// PeerEvent is a session state change.
type PeerEvent struct {
	Address netip.Addr
	State   SessionState
}

// SessionState is the BGP FSM state (RFC 4271 §8).
type SessionState string

// Session states.
const (
	StateUnknown     SessionState = "unknown"
	StateIdle        SessionState = "idle"
	StateConnect     SessionState = "connect"
	StateActive      SessionState = "active"
	StateOpenSent    SessionState = "opensent"
	StateOpenConfirm SessionState = "openconfirm"
	StateEstablished SessionState = "established"
)
