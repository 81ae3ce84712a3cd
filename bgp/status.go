package bgp

import (
	"context"
	"net/netip"
	"time"
)

// Status is what `edgegate status` shows for BGP.
type Status struct {
	Fit       bool           `json:"fit"`
	Reason    string         `json:"reason"`
	Phase     Phase          `json:"phase"`
	Announced []netip.Prefix `json:"announced"`
	Peers     []PeerStatus   `json:"peers"`
	LastError string         `json:"lastError,omitempty"`
}

// PeerStatus is one peer's session.
type PeerStatus struct {
	Name             string       `json:"name"`
	Address          netip.Addr   `json:"address"`
	State            SessionState `json:"state"`
	Uptime           string       `json:"uptime,omitempty"` // time since established, rounded to seconds
	RoutesAdvertised uint64       `json:"routesAdvertised"`
}

// Status reports the last applied state and the live sessions. Safe from any goroutine; asks the speaker
// for session state (GoBGP answers from its own loop), so it may block briefly.
func (c *Component) Status(ctx context.Context) (Status, error) {
	snap := c.status.Load()
	st := Status{Fit: snap.fit, Reason: snap.reason, Phase: snap.phase, Announced: snap.announced, LastError: snap.lastErr}
	live, err := c.speaker.Peers(ctx)
	if err != nil {
		return st, err
	}
	byAddr := map[netip.Addr]PeerState{}
	for _, p := range live {
		byAddr[p.Address] = p
	}
	for _, addr := range sortedAddrs(snap.peers) {
		ps := PeerStatus{Name: snap.peers[addr].Name, Address: addr, State: StateUnknown}
		if l, ok := byAddr[addr]; ok {
			ps.State = l.State
			ps.RoutesAdvertised = l.Advertised
			if !l.Since.IsZero() {
				ps.Uptime = time.Since(l.Since).Round(time.Second).String()
			}
		}
		st.Peers = append(st.Peers, ps)
	}
	return st, nil
}
