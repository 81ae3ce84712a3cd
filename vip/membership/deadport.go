package membership

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

// Dead-port fast path. When memberlist's UDP ping to a member goes unanswered for ProbeTimeout, it also tries
// the member over TCP. If that connection is refused, the member's host is up and its kernel answered RST:
// nothing listens on the memberlist port, so the member's process is gone (crash, SIGKILL, OOM kill, a restart).
// memberlist would still wait for the rest of the probe interval and then the whole suspicion timeout; this node
// leaves the member out of Members at once instead, and tells the other members, each of which checks for itself
// (a TCP connection to the member's port must be refused to it too) before doing the same: the member's VIPs
// move as soon as any node's probe hit the closed port, whichever node takes them over.
//
// Nothing else triggers it: a starved or frozen node's socket still accepts connections, and a dead host or cut
// link times out, so those stay with memberlist's suspicion (and Lifeguard's protection against false
// suspicions). The member is back in Members as soon as it answers a probe, gossips an update, or rejoins;
// memberlist declares it dead on its own schedule regardless.

// refusedTransport reports refused TCP pings to named members. Only the probe's TCP ping counts (it follows a
// failed UDP ping; memberlist dials it with the rest of the probe interval as timeout): push/pull and reliable
// sends dial with the full tcpTimeout and are ignored, so a firewall that rejects TCP while UDP probes succeed
// cannot make a live member flap.
type refusedTransport struct {
	memberlist.NodeAwareTransport
	tcpTimeout time.Duration
	refused    func(name string, fromPeer bool)
}

func (t *refusedTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil && a.Name != "" && timeout < t.tcpTimeout && errors.Is(err, syscall.ECONNREFUSED) {
		t.refused(a.Name, false)
	}
	return c, err
}

// refusedMsg prefixes the user message telling members that a member's port refused a probe.
const refusedMsg = 'R'

// markRefused leaves a member out of the view until it shows it is alive. A mark from this node's own probe is
// passed on to the other members (fromPeer false).
func (m *Membership) markRefused(name string, fromPeer bool) {
	if name == m.name || m.closed.Load() { // memberlist's last probes may still dial after Run shut it down
		return
	}
	m.refusedMu.Lock()
	was := m.refused[name]
	m.refused[name] = true
	m.refusedMu.Unlock()
	if was {
		return
	}
	how := "own probe"
	if fromPeer {
		how = "checked after a member's report"
	}
	m.log.Info("member's memberlist port refused a connection: treating it as failed now", "peer", name, "how", how)
	m.co.Notify()
	if ml := m.ml.Load(); ml != nil && !fromPeer {
		m.bg.Go(func() {
			msg := append([]byte{refusedMsg}, name...)
			for _, n := range ml.Members() {
				if n.Name != m.name && n.Name != name {
					_ = ml.SendBestEffort(n, msg) // best effort: the member's own probes are the fallback
				}
			}
		})
	}
}

// peerReportedRefused checks a member's report that name's port refused its probe: name is marked only if a
// connection from this node is refused too.
func (m *Membership) peerReportedRefused(name string) {
	ml := m.ml.Load()
	if ml == nil || name == m.name || m.closed.Load() || m.isRefused(name) {
		return
	}
	for _, n := range ml.Members() {
		if n.Name != name {
			continue
		}
		addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
		m.bg.Go(func() {
			if m.portRefused(addr) {
				m.markRefused(name, true)
			}
		})
		return
	}
}

// portRefused reports whether a TCP connection to addr is refused. On a connection it sends the cluster label
// header and closes: memberlist takes that as an empty stream (nothing logged on the member).
func (m *Membership) portRefused(addr string) bool {
	timeout := m.cfg.Timings.ProbeTimeout.Duration
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	_ = memberlist.AddLabelHeaderToStream(c, m.cfg.ClusterLabel)
	_ = c.Close()
	return false
}

// alive clears a refused mark: the member answered a probe, sent an update, joined or left.
func (m *Membership) alive(name string) {
	m.refusedMu.Lock()
	was := m.refused[name]
	delete(m.refused, name)
	m.refusedMu.Unlock()
	if was {
		m.log.Info("member refused earlier is alive again", "peer", name)
		m.co.Notify()
	}
}

func (m *Membership) isRefused(name string) bool {
	m.refusedMu.Lock()
	defer m.refusedMu.Unlock()
	return m.refused[name]
}

// pingDelegate clears refused marks on every successful probe.
type pingDelegate struct{ m *Membership }

func (p *pingDelegate) AckPayload() []byte { return nil }
func (p *pingDelegate) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	p.m.alive(other.Name)
}
