package bgp

import (
	"time"

	metallbv1beta1 "go.universe.tf/metallb/api/v1beta1"
	metallbv1beta2 "go.universe.tf/metallb/api/v1beta2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Config is the `bgp:` section of the appliance configuration. It is decoded strictly (unknown keys are
// errors) with sigs.k8s.io/yaml. Peers, advertisements and communities are MetalLB objects as they are, so a
// MetalLB user can bring their manifests; fields GoBGP cannot honour are rejected by Validate.
//
// The file is per node: RouterID and the next hops are this node's own addresses.
type Config struct {
	// RouterID is this node's BGP identifier (an IPv4 address). GoBGP has no automatic selection.
	RouterID string `json:"routerID"`
	// ASN is the local AS number (4-byte ASNs allowed); a peer's spec.myASN, when set, overrides it for
	// that session (sent with GoBGP's local-as).
	ASN uint32 `json:"asn"`
	// ListenPort is the TCP port the speaker listens on. -1 (the default) means outbound sessions only;
	// set a port only for passive peering.
	ListenPort *int32 `json:"listenPort,omitempty"`
	// NextHopIPv4 is the next hop announced for IPv4 VIPs over IPv6 sessions (dualStackAddressFamily).
	// Empty: GoBGP uses the session's local address, which is right for IPv4 sessions.
	NextHopIPv4 string `json:"nextHopIPv4,omitempty"`
	// NextHopIPv6 is the global IPv6 next hop announced for IPv6 VIPs. It is required to carry IPv6 VIPs
	// over IPv4 sessions (MP-BGP): with "::" GoBGP sends an IPv4-mapped next hop, which FRR drops.
	NextHopIPv6 string `json:"nextHopIPv6,omitempty"`
	// IdleHoldTimeAfterReset is how long a peer stays idle after its session was reset or lost (GoBGP
	// itself holds a lost session idle for a fixed 5 s; the speaker re-adds the peer after this time).
	IdleHoldTimeAfterReset *metav1.Duration `json:"idleHoldTimeAfterReset,omitempty"`
	// DrainWait is how long Drain keeps the routes announced with GRACEFUL_SHUTDOWN before withdrawing.
	DrainWait *metav1.Duration `json:"drainWait,omitempty"`
	// GracefulRestartTime is the restart time advertised to peers with spec.enableGracefulRestart: how long
	// they keep our routes while edgegate restarts (Envoy keeps serving meanwhile).
	GracefulRestartTime *metav1.Duration `json:"gracefulRestartTime,omitempty"`

	// Peers are MetalLB BGPPeer objects (metallb.io/v1beta2).
	Peers []metallbv1beta2.BGPPeer `json:"peers,omitempty"`
	// PeerOptions holds per-peer settings MetalLB's BGPPeer has no field for, keyed by peer name.
	PeerOptions []PeerOptions `json:"peerOptions,omitempty"`
	// Advertisements are MetalLB BGPAdvertisement objects (metallb.io/v1beta1). None means one implicit
	// advertisement of every VIP to every peer.
	Advertisements []metallbv1beta1.BGPAdvertisement `json:"advertisements,omitempty"`
	// Communities are MetalLB Community objects (metallb.io/v1beta1): named aliases for community values.
	Communities []metallbv1beta1.Community `json:"communities,omitempty"`
}

// PeerOptions are the per-peer settings that MetalLB's BGPPeer does not carry.
type PeerOptions struct {
	// Peer is the metadata.name of the BGPPeer these options apply to.
	Peer string `json:"peer"`
	// PasswordFile is an absolute path to a file holding the TCP MD5 password (trailing newline ignored).
	// Preferred over the inline spec.password, which ends up in configuration dumps and backups.
	PasswordFile string `json:"passwordFile,omitempty"`
	// TTLSecurityHops enables GTSM (RFC 5082): only packets from at most this many hops away are accepted.
	// The router must enable it too (FRR: `neighbor X ttl-security hops N`). Excludes ebgpMultiHop.
	TTLSecurityHops uint8 `json:"ttlSecurityHops,omitempty"`
}

// Defaults. Each value says why.
const (
	// DefaultListenPort: edgegate dials its routers; listening on 179 would need CAP_NET_BIND_SERVICE and
	// open a port nobody uses. GoBGP still establishes outbound sessions with -1.
	DefaultListenPort int32 = -1
	// DefaultPeerPort is the IANA BGP port.
	DefaultPeerPort uint16 = 179
	// DefaultHoldTime: GoBGP v3 has no BFD, so the hold timer is the only way a router notices a hung node.
	// 9 s (three keepalives of 3 s) detects it in under 10 s without flapping on a busy node; MetalLB's 90 s
	// would black-hole a third of the traffic for a minute and a half. Sites that need faster go to 3 s.
	DefaultHoldTime = 9 * time.Second
	// DefaultConnectTime: GoBGP's ConnectRetry default is 120 s, so a router restart would leave the node
	// unannounced for two minutes. 2 s reconnects quickly at negligible cost (one SYN per peer).
	DefaultConnectTime = 2 * time.Second
	// DefaultIdleHoldTimeAfterReset: GoBGP waits 30 s after a reset before reconnecting; 1 s is enough to
	// damp a tight flap loop.
	DefaultIdleHoldTimeAfterReset = time.Second
	// DefaultDrainWait: routers need a few hundred ms to process the GRACEFUL_SHUTDOWN update and reprogram
	// their FIB (FRR batched ~65 ms in measurements); 5 s leaves margin for several routers and for route
	// reflectors in between, and is short next to a rolling upgrade.
	DefaultDrainWait = 5 * time.Second
	// DefaultGracefulRestartTime: long enough for systemd to restart edgegate (a few seconds), short enough
	// that routes of a node that really died do not linger for GoBGP's default 120 s.
	DefaultGracefulRestartTime = 30 * time.Second
	// gracefulRestartDeferral bounds how long a restarting speaker waits for the routers' End-of-RIB before
	// it sends its own routes (GoBGP's default is 360 s).
	gracefulRestartDeferral = 10 * time.Second
	// ebgpMultiHopTTL is the TTL used for ebgpMultiHop peers (MetalLB's is a boolean; FRR uses 255 too).
	ebgpMultiHopTTL = 255
)

// GracefulShutdownCommunity is RFC 8326's GRACEFUL_SHUTDOWN community, 65535:0.
const GracefulShutdownCommunity uint32 = 0xFFFF0000

// WithDefaults returns a copy of c with every unset field set to its default. It does not validate.
func (c Config) WithDefaults() Config {
	out := c
	if out.ListenPort == nil {
		p := DefaultListenPort
		out.ListenPort = &p
	}
	if out.IdleHoldTimeAfterReset == nil {
		out.IdleHoldTimeAfterReset = &metav1.Duration{Duration: DefaultIdleHoldTimeAfterReset}
	}
	if out.DrainWait == nil {
		out.DrainWait = &metav1.Duration{Duration: DefaultDrainWait}
	}
	if out.GracefulRestartTime == nil {
		out.GracefulRestartTime = &metav1.Duration{Duration: DefaultGracefulRestartTime}
	}
	out.Peers = make([]metallbv1beta2.BGPPeer, len(c.Peers))
	for i, p := range c.Peers {
		p = *p.DeepCopy()
		if p.Spec.MyASN == 0 {
			p.Spec.MyASN = c.ASN
		}
		if p.Spec.Port == 0 {
			p.Spec.Port = DefaultPeerPort
		}
		if p.Spec.HoldTime == nil {
			p.Spec.HoldTime = &metav1.Duration{Duration: DefaultHoldTime}
		}
		if p.Spec.KeepaliveTime == nil {
			// RFC 4271 §10 suggests one third of the hold time.
			p.Spec.KeepaliveTime = &metav1.Duration{Duration: p.Spec.HoldTime.Duration / 3}
		}
		if p.Spec.ConnectTime == nil {
			p.Spec.ConnectTime = &metav1.Duration{Duration: DefaultConnectTime}
		}
		out.Peers[i] = p
	}
	return out
}

// Node is the local node as the appliance knows it: its name and labels (the peers' and advertisements'
// nodeSelectors are evaluated against them; kubernetes.io/hostname is added from Name when missing).
type Node struct {
	Name   string
	Labels map[string]string
}

func (n Node) labels() map[string]string {
	out := make(map[string]string, len(n.Labels)+1)
	for k, v := range n.Labels {
		out[k] = v
	}
	if _, ok := out["kubernetes.io/hostname"]; !ok && n.Name != "" {
		out["kubernetes.io/hostname"] = n.Name
	}
	return out
}
