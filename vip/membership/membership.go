// Package membership runs the edge nodes' gossip cluster on hashicorp/memberlist: explicit bind and advertise
// addresses, encrypted gossip (sha256-derived key or a rotating keyring file), a cluster label, a periodic re-join
// of absent seeds (memberlist never re-merges a healed partition by itself), node metadata carrying fitness, and
// member events coalesced into "the view changed" signals.
package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// keyringPoll is how often the keyring file is re-read. Rotation is three steps each applied on every node; a 5 s
// poll lets an operator (or Ansible) step through a rotation in well under a minute without a reload signal.
const keyringPoll = 5 * time.Second

// metaUpdateTimeout bounds how long a metadata broadcast is waited for; the update is gossiped regardless, this
// only limits the log noise on a node that is alone.
const metaUpdateTimeout = 2 * time.Second

// Member is one live (alive or suspect) node of the view.
type Member struct {
	Name string
	Addr netip.AddrPort
	Meta Meta
	// Suspect is memberlist's suspicion of the member. memberlist v0.7.0 never updates the State of the Node
	// records it hands out (only its internal copy), so this stays false; kept for when memberlist exposes it.
	Suspect bool
}

// Options carries what the appliance injects.
type Options struct {
	Logger *slog.Logger
	// Transport replaces the UDP/TCP transport (memberlist.MockNetwork in tests). Nil: real sockets on
	// BindAddress:BindPort.
	Transport memberlist.NodeAwareTransport
	// Coalesce bounds: see Coalescer. Zero: 20 ms quiescence, 100 ms quantum (see vip.Config).
	Quiescence, Quantum time.Duration
	// KeyringPoll overrides keyringPoll (tests).
	KeyringPoll time.Duration
}

// Membership is this node's view of the cluster. Members, SetMeta and Changes are safe from any goroutine; Run is
// called once.
type Membership struct {
	cfg  Config
	name string
	opts Options
	log  *slog.Logger
	co   *Coalescer

	meta     atomic.Pointer[[]byte]
	ml       atomic.Pointer[memberlist.Memberlist]
	metaKick chan struct{}
	ready    chan struct{}
	joined   atomic.Int64

	msgs      chan []byte    // payloads from other members' Send
	closed    atomic.Bool    // memberlist shut down: no more refused marks
	bg        sync.WaitGroup // dead-port goroutines, waited for by Run
	refusedMu sync.Mutex
	refused   map[string]bool // members whose memberlist port refused a connection (deadport.go)
}

// New checks cfg (defaulted) and the initial meta. It starts nothing.
func New(cfg Config, name string, meta Meta, opts Options) (*Membership, error) {
	if name == "" {
		return nil, fmt.Errorf("membership: %w: node name", ErrRequired)
	}
	if err := cfg.Validate("memberlist"); err != nil {
		return nil, err
	}
	b, err := meta.Encode()
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Quiescence == 0 {
		opts.Quiescence = 20 * time.Millisecond
	}
	if opts.Quantum == 0 {
		opts.Quantum = 100 * time.Millisecond
	}
	if opts.KeyringPoll == 0 {
		opts.KeyringPoll = keyringPoll
	}
	m := &Membership{
		cfg: cfg, name: name, opts: opts, log: opts.Logger,
		co:       NewCoalescer(opts.Quiescence, opts.Quantum),
		metaKick: make(chan struct{}, 1),
		ready:    make(chan struct{}),
		refused:  map[string]bool{},
		msgs:     make(chan []byte, msgBuffer),
	}
	m.meta.Store(&b)
	return m, nil
}

// userMsg prefixes the payloads of Send.
const userMsg = 'U'

// msgBuffer is how many received payloads wait for the consumer: messages are rare (one per VIP that changes
// holder); more would mean the consumer is stuck.
const msgBuffer = 64

// Send sends payload to the member name, best effort (one UDP packet, encrypted like gossip).
func (m *Membership) Send(name string, payload []byte) error {
	ml := m.ml.Load()
	if ml == nil {
		return errors.New("membership not running")
	}
	for _, n := range ml.Members() {
		if n.Name == name {
			return ml.SendBestEffort(n, append([]byte{userMsg}, payload...))
		}
	}
	return fmt.Errorf("no member %q", name)
}

// Messages delivers the payloads other members sent with Send; when the consumer falls behind they are dropped.
func (m *Membership) Messages() <-chan []byte { return m.msgs }

// Changes delivers a value (the time of the first event of the batch) whenever the view may have changed.
func (m *Membership) Changes() <-chan time.Time { return m.co.C() }

// Ready is closed once memberlist runs and the first join of the seeds was attempted.
func (m *Membership) Ready() <-chan struct{} { return m.ready }

// JoinedPeers is the number of seeds contacted by the last successful join.
func (m *Membership) JoinedPeers() int { return int(m.joined.Load()) }

// SetMeta publishes new metadata; the broadcast happens in Run's goroutine, so SetMeta never blocks.
func (m *Membership) SetMeta(meta Meta) error {
	b, err := meta.Encode()
	if err != nil {
		return err
	}
	m.meta.Store(&b)
	select {
	case m.metaKick <- struct{}{}:
	default:
	}
	m.co.Notify() // our own fitness is part of the view
	return nil
}

// Members returns the live members (including this node), sorted by name. Before Run starts it returns only self.
// A member whose memberlist port refused a connection is left out until it shows it is alive (deadport.go).
func (m *Membership) Members() []Member {
	ml := m.ml.Load()
	if ml == nil {
		return []Member{{Name: m.name, Meta: DecodeMeta(*m.meta.Load())}}
	}
	var out []Member
	for _, n := range ml.Members() {
		if m.isRefused(n.Name) {
			continue
		}
		a, _ := netip.AddrFromSlice(n.Addr)
		meta := DecodeMeta(n.Meta)
		if n.Name == m.name {
			meta = DecodeMeta(*m.meta.Load()) // our freshest, not the last gossiped copy
		}
		out = append(out, Member{Name: n.Name, Addr: netip.AddrPortFrom(a.Unmap(), n.Port), Meta: meta, Suspect: n.State == memberlist.StateSuspect})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Run creates the memberlist (binding its sockets), joins the seeds, keeps re-joining absent seeds, reloads the
// keyring file, and on ctx done leaves the cluster (so peers drop this node at once instead of after the failure
// detection time) and shuts down.
func (m *Membership) Run(ctx context.Context) error {
	conf, err := m.memberlistConfig()
	if err != nil {
		return err
	}
	ml, err := memberlist.Create(conf)
	if err != nil {
		_ = conf.Transport.Shutdown()
		return fmt.Errorf("start memberlist on %s:%d: %w", m.cfg.BindAddress, m.cfg.BindPort, err)
	}
	m.ml.Store(ml)
	defer func() {
		if err := ml.Leave(m.cfg.Timings.TCPTimeout.Duration); err != nil {
			m.log.Warn("leave memberlist", "error", err)
		}
		if err := ml.Shutdown(); err != nil {
			m.log.Warn("shutdown memberlist", "error", err)
		}
		m.closed.Store(true)
		m.bg.Wait()
	}()
	self := netip.AddrPortFrom(mustAddr(ml.LocalNode().Addr), ml.LocalNode().Port)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { m.co.Run(ctx) })
	wg.Go(func() { m.metaLoop(ctx, ml) })
	if m.cfg.KeyringFile != "" {
		wg.Go(func() { m.keyringLoop(ctx, conf.Keyring) })
	}

	m.join(ml, self, true)
	close(m.ready)
	m.co.Notify()
	t := time.NewTicker(m.cfg.Timings.RejoinInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.join(ml, self, false)
		}
	}
}

// join contacts every seed that is not self and not in the view.
func (m *Membership) join(ml *memberlist.Memberlist, self netip.AddrPort, first bool) {
	present := map[netip.AddrPort]bool{self: true}
	for _, n := range ml.Members() {
		present[netip.AddrPortFrom(mustAddr(n.Addr), n.Port)] = true
	}
	var missing []string
	for _, s := range m.cfg.Seeds {
		if ap, err := netip.ParseAddrPort(s); err == nil && !present[ap] {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return
	}
	n, err := ml.Join(missing)
	if n > 0 {
		m.joined.Store(int64(n))
	}
	switch {
	case err != nil && n == 0:
		lvl := slog.LevelDebug
		if first {
			lvl = slog.LevelWarn
		}
		m.log.Log(context.Background(), lvl, "join seeds", "seeds", missing, "error", err)
	case err != nil:
		m.log.Info("joined some seeds", "seeds", missing, "contacted", n, "error", err)
	default:
		m.log.Info("joined seeds", "seeds", missing, "contacted", n)
	}
}

func (m *Membership) metaLoop(ctx context.Context, ml *memberlist.Memberlist) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.metaKick:
			if err := ml.UpdateNode(metaUpdateTimeout); err != nil {
				m.log.Debug("broadcast node meta", "error", err)
			}
		}
	}
}

func (m *Membership) keyringLoop(ctx context.Context, kr *memberlist.Keyring) {
	last, _ := os.ReadFile(m.cfg.KeyringFile)
	t := time.NewTicker(m.opts.KeyringPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, err := os.ReadFile(m.cfg.KeyringFile)
		if err != nil || bytes.Equal(b, last) {
			continue
		}
		keys, err := ReadKeyringFile(m.cfg.KeyringFile)
		if err != nil {
			m.log.Error("reload keyring, keeping the current keys", "path", m.cfg.KeyringFile, "error", err)
			last = b
			continue
		}
		if err := ApplyKeys(kr, keys); err != nil {
			m.log.Error("apply keyring", "path", m.cfg.KeyringFile, "error", err)
			continue
		}
		last = b
		m.log.Info("keyring reloaded", "path", m.cfg.KeyringFile, "keys", len(keys))
	}
}

func (m *Membership) memberlistConfig() (*memberlist.Config, error) {
	c := memberlist.DefaultLANConfig()
	t := m.cfg.Timings
	c.Name = m.name
	c.BindAddr = m.cfg.BindAddress
	c.BindPort = m.cfg.BindPort
	c.AdvertiseAddr = m.cfg.AdvertiseAddress
	c.AdvertisePort = m.cfg.AdvertisePort
	c.Label = m.cfg.ClusterLabel
	c.ProbeInterval = t.ProbeInterval.Duration
	c.ProbeTimeout = t.ProbeTimeout.Duration
	c.IndirectChecks = t.IndirectChecks
	c.SuspicionMult = t.SuspicionMult
	c.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	c.AwarenessMaxMultiplier = t.AwarenessMaxMultiplier
	c.GossipInterval = t.GossipInterval.Duration
	c.GossipNodes = t.GossipNodes
	c.RetransmitMult = t.RetransmitMult
	c.PushPullInterval = t.PushPullInterval.Duration
	c.TCPTimeout = t.TCPTimeout.Duration
	c.DeadNodeReclaimTime = t.DeadNodeReclaimTime.Duration
	c.Delegate = &delegate{m: m}
	c.Events = &events{m: m, co: m.co}
	c.Logger = log.New(&logWriter{log: m.log}, "", 0)
	var keys [][]byte
	if m.cfg.KeyringFile != "" {
		var err error
		if keys, err = ReadKeyringFile(m.cfg.KeyringFile); err != nil {
			return nil, err
		}
	} else {
		keys = [][]byte{DeriveKey(m.cfg.Secret)}
	}
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	c.Keyring = kr
	c.GossipVerifyIncoming = true
	c.GossipVerifyOutgoing = true
	tr := m.opts.Transport
	if tr == nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{m.cfg.BindAddress}, BindPort: m.cfg.BindPort, Logger: c.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("memberlist transport on %s:%d: %w", m.cfg.BindAddress, m.cfg.BindPort, err)
		}
		tr = nt
	}
	c.Transport = &refusedTransport{NodeAwareTransport: tr, tcpTimeout: t.TCPTimeout.Duration, refused: m.markRefused}
	c.Ping = &pingDelegate{m: m}
	return c, nil
}

func mustAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

type delegate struct{ m *Membership }

func (d *delegate) NodeMeta(limit int) []byte {
	b := *d.m.meta.Load()
	if len(b) > limit {
		return nil // Encode already refused metas over MetaMaxSize; never reached
	}
	return b
}
func (d *delegate) NotifyMsg(b []byte) {
	switch {
	case len(b) > 1 && b[0] == refusedMsg:
		d.m.peerReportedRefused(string(b[1:]))
	case len(b) > 1 && b[0] == userMsg:
		select {
		case d.m.msgs <- slices.Clone(b[1:]): // memberlist may reuse b
		default: // the consumer is behind: drop, as a lost UDP packet would be
		}
	}
}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

type events struct {
	m  *Membership
	co *Coalescer
}

func (e *events) NotifyJoin(n *memberlist.Node)   { e.m.alive(n.Name); e.co.Notify() }
func (e *events) NotifyLeave(n *memberlist.Node)  { e.m.alive(n.Name); e.co.Notify() }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.m.alive(n.Name); e.co.Notify() }

// logWriter maps memberlist's "[LEVEL] memberlist: msg" lines onto slog levels.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	s := strings.TrimSpace(string(p))
	lvl := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if strings.HasPrefix(s, prefix) {
			lvl = l
			s = strings.TrimSpace(strings.TrimPrefix(s, prefix))
			break
		}
	}
	w.log.Log(context.Background(), lvl, strings.TrimPrefix(s, "memberlist: "), "component", "memberlist")
	return len(p), nil
}
