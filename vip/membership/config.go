package membership

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Sentinel errors wrapped by Config.Validate with the field path, the value and the limit.
var (
	ErrRequired = errors.New("required")
	ErrInvalid  = errors.New("invalid value")
	ErrRange    = errors.New("out of range")
)

// Config is the memberlist part of the appliance configuration (YAML key vip.memberlist).
type Config struct {
	// BindAddress is the IP memberlist listens on (UDP and TCP). Required and explicit: with a wildcard bind
	// memberlist guesses the advertised address from the "first private IP" and fails on hosts without one.
	BindAddress string `json:"bindAddress"`
	// BindPort is the UDP and TCP port. Default 7946 (memberlist's and MetalLB's port).
	BindPort int `json:"bindPort,omitempty"`
	// AdvertiseAddress is the IP peers reach this node on (NAT or a wildcard bind). Default: BindAddress.
	AdvertiseAddress string `json:"advertiseAddress,omitempty"`
	// AdvertisePort defaults to BindPort.
	AdvertisePort int `json:"advertisePort,omitempty"`
	// Seeds are "ip:port" of the other edge nodes; this node's own address may be listed (it is skipped), so one
	// list serves every node. Seeds are joined at start and re-joined periodically while absent from the view.
	Seeds []string `json:"seeds,omitempty"`
	// Secret is hashed with sha256 into the AES-256 gossip key. One of Secret or KeyringFile is required.
	Secret string `json:"secret,omitempty"`
	// KeyringFile is a JSON array of base64 keys, primary first; reloaded on change for rotation.
	KeyringFile string `json:"keyringFile,omitempty"`
	// ClusterLabel is sent with every packet and must match: two clusters on one L2 never merge. Default "edgegate".
	ClusterLabel string `json:"clusterLabel,omitempty"`

	Timings Timings `json:"timings,omitempty"`
}

// Timings are memberlist's failure-detection knobs. The defaults aim at ~1 s detection of a dead node on a LAN
// (measured 0.7-0.95 s with 3 nodes) while tolerating a loaded node.
type Timings struct {
	// ProbeInterval: each node probes one peer per interval (round-robin over the shuffled members). Default
	// 100ms: in a 3-node cluster some survivor probes a dead node within ~100-300 ms (measured kill -> suspicion
	// p99 307 ms, of which 100 ms is this interval); 200 ms made that wait the largest part of a failover (p99
	// 484-724 ms). Ten small UDP pings a second per node. DefaultLANConfig's 1 s alone would exceed the budget.
	ProbeInterval metav1.Duration `json:"probeInterval,omitempty"`
	// ProbeTimeout: wait for an ack before indirect probes and the TCP ping. Default 50ms: LAN RTT is well under
	// 1 ms, so 50x margin; a late ack only brings in the indirect probes and the TCP ping for the rest of the
	// interval, which Lifeguard's awareness stretches on a node that itself misses acks. It is also when a refused
	// TCP ping reveals a dead process (the dead-port fast path). Must be below probeInterval.
	ProbeTimeout metav1.Duration `json:"probeTimeout,omitempty"`
	// IndirectChecks: peers asked to probe on our behalf before suspecting. Default 3 (memberlist's LAN value):
	// one lossy link alone never makes a node suspect.
	IndirectChecks int `json:"indirectChecks,omitempty"`
	// SuspicionMult scales the suspicion timeout (mult x max(1, log10 n) x ProbeInterval). Default 4: 400 ms of
	// suspicion in which a live node can refute (the same window as before with 200 ms probes x 2; the LAN default
	// is 4 s with 1 s probes). Shorter would speed up host loss but is the defence against false failovers of a
	// starved node; a dead process on a live host skips it (dead-port fast path).
	SuspicionMult int `json:"suspicionMult,omitempty"`
	// SuspicionMaxTimeoutMult caps the stretched suspicion timeout when confirmations are missing. Default 4:
	// at most 1.6 s in larger clusters.
	SuspicionMaxTimeoutMult int `json:"suspicionMaxTimeoutMult,omitempty"`
	// AwarenessMaxMultiplier: Lifeguard stretches probe timing up to this factor on a node that misses its own
	// acks (CPU starvation). Default 8 (memberlist's): the protection against false suspicions under load.
	AwarenessMaxMultiplier int `json:"awarenessMaxMultiplier,omitempty"`
	// GossipInterval: how often suspect/dead/meta updates are gossiped. Default 50ms: an update reaches all of a
	// few nodes in ~100 ms; a few small UDP packets per second per node.
	GossipInterval metav1.Duration `json:"gossipInterval,omitempty"`
	// GossipNodes: peers gossiped to per interval. Default 3 (memberlist's LAN value).
	GossipNodes int `json:"gossipNodes,omitempty"`
	// RetransmitMult: each update is retransmitted mult x log(n+1) times. Default 4 (memberlist's LAN value).
	RetransmitMult int `json:"retransmitMult,omitempty"`
	// PushPullInterval: full state exchange with one random live peer (anti-entropy). Default 15s: half of
	// memberlist's LAN 30 s, the view converges faster after missed gossip, and a handful of nodes make it cheap.
	PushPullInterval metav1.Duration `json:"pushPullInterval,omitempty"`
	// TCPTimeout bounds TCP pings, push/pull and joins. Default 2s: a LAN answers in milliseconds, and a join to a
	// dead seed must not hold the rejoin loop for memberlist's 10 s.
	TCPTimeout metav1.Duration `json:"tcpTimeout,omitempty"`
	// DeadNodeReclaimTime: after this a dead node's name may rejoin from another address (a rebuilt machine).
	// Default 10s; memberlist's 0 means never, which locks a re-addressed node out until every peer restarts.
	DeadNodeReclaimTime metav1.Duration `json:"deadNodeReclaimTime,omitempty"`
	// RejoinInterval: how often seeds absent from the view are joined again. memberlist never re-merges a healed
	// partition by itself. Default 3s: a healed partition merges within ~3 s, at the cost of one TCP connection per
	// absent seed per interval.
	RejoinInterval metav1.Duration `json:"rejoinInterval,omitempty"`
}

// DefaultBindPort is memberlist's (and MetalLB's) port.
const DefaultBindPort = 7946

// WithDefaults returns c with every unset field defaulted.
func (c Config) WithDefaults() Config {
	if c.BindPort == 0 {
		c.BindPort = DefaultBindPort
	}
	if c.AdvertiseAddress == "" {
		c.AdvertiseAddress = c.BindAddress
	}
	if c.AdvertisePort == 0 {
		c.AdvertisePort = c.BindPort
	}
	if c.ClusterLabel == "" {
		c.ClusterLabel = "edgegate"
	}
	t := &c.Timings
	dur(&t.ProbeInterval, 100*time.Millisecond)
	dur(&t.ProbeTimeout, 50*time.Millisecond)
	num(&t.IndirectChecks, 3)
	num(&t.SuspicionMult, 4)
	num(&t.SuspicionMaxTimeoutMult, 4)
	num(&t.AwarenessMaxMultiplier, 8)
	dur(&t.GossipInterval, 50*time.Millisecond)
	num(&t.GossipNodes, 3)
	num(&t.RetransmitMult, 4)
	dur(&t.PushPullInterval, 15*time.Second)
	dur(&t.TCPTimeout, 2*time.Second)
	dur(&t.DeadNodeReclaimTime, 10*time.Second)
	dur(&t.RejoinInterval, 3*time.Second)
	return c
}

func dur(d *metav1.Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

func num(n *int, def int) {
	if *n == 0 {
		*n = def
	}
}

// Validate checks a defaulted Config; path prefixes every error (e.g. "vip.memberlist").
func (c Config) Validate(path string) error {
	var errs []error
	fail := func(field string, err error, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %w: %s", path, field, err, fmt.Sprintf(format, args...)))
	}
	addr := func(field, v string) {
		if v == "" {
			fail(field, ErrRequired, "an explicit IP address (no guessing from the first private IP)")
			return
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			fail(field, ErrInvalid, "%q is not an IP address", v)
			return
		}
		if field == "advertiseAddress" && a.IsUnspecified() {
			fail(field, ErrInvalid, "%q: peers cannot reach an unspecified address; set advertiseAddress", v)
		}
	}
	port := func(field string, p int) {
		if p < 1 || p > 65535 {
			fail(field, ErrRange, "%d, want 1..65535", p)
		}
	}
	addr("bindAddress", c.BindAddress)
	addr("advertiseAddress", c.AdvertiseAddress)
	port("bindPort", c.BindPort)
	port("advertisePort", c.AdvertisePort)
	seen := map[netip.AddrPort]bool{}
	for i, s := range c.Seeds {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			fail(fmt.Sprintf("seeds[%d]", i), ErrInvalid, "%q, want ip:port (explicit, no DNS)", s)
			continue
		}
		if seen[ap] {
			fail(fmt.Sprintf("seeds[%d]", i), ErrInvalid, "%q listed twice", s)
		}
		seen[ap] = true
	}
	switch {
	case c.Secret == "" && c.KeyringFile == "":
		fail("secret", ErrRequired, "gossip must be encrypted: set secret or keyringFile")
	case c.Secret != "" && c.KeyringFile != "":
		fail("keyringFile", ErrInvalid, "set either secret or keyringFile, not both")
	case c.Secret != "" && len(c.Secret) < 16:
		fail("secret", ErrRange, "%d characters, want at least 16", len(c.Secret))
	}
	if n := len(c.ClusterLabel); n > 255 {
		fail("clusterLabel", ErrRange, "%d bytes, memberlist allows at most 255", n)
	}
	t := c.Timings
	pos := func(field string, d time.Duration, min time.Duration) {
		if d < min {
			fail("timings."+field, ErrRange, "%v, want at least %v", d, min)
		}
	}
	pos("probeInterval", t.ProbeInterval.Duration, 10*time.Millisecond)
	pos("probeTimeout", t.ProbeTimeout.Duration, time.Millisecond)
	if t.ProbeTimeout.Duration >= t.ProbeInterval.Duration {
		fail("timings.probeTimeout", ErrRange, "%v, must be shorter than probeInterval %v", t.ProbeTimeout.Duration, t.ProbeInterval.Duration)
	}
	pos("gossipInterval", t.GossipInterval.Duration, time.Millisecond)
	pos("pushPullInterval", t.PushPullInterval.Duration, time.Second)
	pos("tcpTimeout", t.TCPTimeout.Duration, 10*time.Millisecond)
	pos("rejoinInterval", t.RejoinInterval.Duration, 100*time.Millisecond)
	pos("deadNodeReclaimTime", t.DeadNodeReclaimTime.Duration, 0)
	for _, f := range []struct {
		name string
		v    int
	}{{"indirectChecks", t.IndirectChecks}, {"suspicionMult", t.SuspicionMult}, {"suspicionMaxTimeoutMult", t.SuspicionMaxTimeoutMult},
		{"awarenessMaxMultiplier", t.AwarenessMaxMultiplier}, {"gossipNodes", t.GossipNodes}, {"retransmitMult", t.RetransmitMult}} {
		if f.v < 1 || f.v > 100 {
			fail("timings."+f.name, ErrRange, "%d, want 1..100", f.v)
		}
	}
	return errors.Join(errs...)
}
