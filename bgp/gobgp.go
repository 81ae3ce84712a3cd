package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// GoBGP is the production Speaker: one embedded GoBGP v3 BgpServer for the life of the process (v3's
// Serve never returns, so the server is never recreated). Safe for concurrent use.
type GoBGP struct {
	log *slog.Logger

	mu      sync.Mutex
	srv     *server.BgpServer
	global  Global
	stopW   context.CancelFunc
	uuids   map[netip.Prefix][]byte       // announced paths, for DeletePath
	export  map[netip.Addr][]netip.Prefix // last SetExport
	gen     int                           // export policy generation (names are never reused)
	current string                        // current export policy name ("" = none)
	sets    []*api.DefinedSet             // defined sets of the current policy
	up      map[netip.Addr]bool           // sessions last seen established

	// peerMu serialises peer changes: the component's and reconnect's (see reconnect).
	peerMu  sync.Mutex
	peers   map[netip.Addr]PeerConfig // configured peers
	stopped bool
}

// NewGoBGP returns a GoBGP speaker logging to log. It starts nothing.
func NewGoBGP(log *slog.Logger) *GoBGP {
	return &GoBGP{log: log, uuids: map[netip.Prefix][]byte{}, up: map[netip.Addr]bool{}, peers: map[netip.Addr]PeerConfig{}}
}

const exportPolicyPrefix = "edgegate-export"

// Start implements Speaker.
func (g *GoBGP) Start(ctx context.Context, gl Global, onPeer func(PeerEvent)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv != nil {
		return errors.New("gobgp: already started")
	}
	srv := server.NewBgpServer(server.LoggerOption(&slogBridge{log: g.log}))
	go srv.Serve()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        gl.ASN,
		RouterId:   gl.RouterID.String(),
		ListenPort: gl.ListenPort,
	}})
	if err != nil {
		srv.Stop()
		return fmt.Errorf("gobgp: start: %w", err)
	}
	// Until the first SetExport nothing may leave: the global export policy's default is reject.
	if err := srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_REJECT,
	}}); err != nil {
		return fmt.Errorf("gobgp: default export policy: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	err = srv.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		pe := r.GetPeer()
		if pe == nil || pe.Type != api.WatchEventResponse_PeerEvent_STATE || pe.Peer == nil || pe.Peer.State == nil {
			return
		}
		addr, err := netip.ParseAddr(pe.Peer.State.NeighborAddress)
		if err != nil {
			return
		}
		addr = addr.Unmap()
		state := sessionState(pe.Peer.State.SessionState)
		g.mu.Lock()
		lost := g.up[addr] && state == StateIdle
		g.up[addr] = state == StateEstablished
		g.mu.Unlock()
		if lost {
			go g.reconnect(addr)
		}
		if onPeer != nil {
			onPeer(PeerEvent{Address: addr, State: state})
		}
	})
	if err != nil {
		cancel()
		return fmt.Errorf("gobgp: watch peers: %w", err)
	}
	g.srv, g.global, g.stopW = srv, gl, cancel
	return nil
}

// Stop implements Speaker: StopBgp sends a Cease NOTIFICATION on every session.
func (g *GoBGP) Stop(ctx context.Context) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.stopW()
	g.mu.Unlock()
	g.peerMu.Lock()
	g.stopped = true
	g.peerMu.Unlock()
	if err := srv.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		return fmt.Errorf("gobgp: stop: %w", err)
	}
	return nil
}

func (g *GoBGP) server() (*server.BgpServer, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv == nil {
		return nil, errors.New("gobgp: not started")
	}
	return g.srv, nil
}

// AddPeer implements Speaker.
func (g *GoBGP) AddPeer(ctx context.Context, p PeerConfig) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	g.peerMu.Lock()
	defer g.peerMu.Unlock()
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: g.apiPeer(p)}); err != nil {
		return fmt.Errorf("gobgp: add peer %s (%s): %w", p.Name, p.Address, err)
	}
	g.peers[p.Address] = p
	return nil
}

// reconnect replaces a peer whose established session was lost (router restart, hold timer, reset by
// the router), after the peer's IdleHoldTime. GoBGP v3 keeps a peer idle for a hard-coded 5 s after
// any session loss (its IdleHoldTimeAfterReset applies only to an administrative reset), so a router
// restart left us unannounced for 5 s + connect retry; a re-added peer connects within its first connect
// retry (1-2 s). Deleting the peer drops only what it sent us: nothing, edgegate imports no routes.
func (g *GoBGP) reconnect(addr netip.Addr) {
	g.peerMu.Lock()
	p, ok := g.peers[addr]
	g.peerMu.Unlock()
	if !ok {
		return
	}
	time.Sleep(p.IdleHoldTime)
	g.peerMu.Lock()
	defer g.peerMu.Unlock()
	cur, ok := g.peers[addr]
	g.mu.Lock()
	up := g.up[addr]
	g.mu.Unlock()
	if !ok || g.stopped || up || !reflect.DeepEqual(cur, p) {
		return // deleted, stopping, already back, or replaced meanwhile
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := g.server()
	if err == nil {
		err = srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()})
	}
	if err == nil {
		err = srv.AddPeer(ctx, &api.AddPeerRequest{Peer: g.apiPeer(p)})
	}
	if err != nil {
		g.log.Error("bgp reconnect after session loss failed; GoBGP retries by itself", "peer", p.Name, "address", addr, "error", err)
		return
	}
	g.log.Info("bgp peer re-added after session loss (reconnects without GoBGP's 5 s idle hold)", "peer", p.Name, "address", addr)
}

// UpdatePeer implements Speaker. GoBGP resets the session when transport, timers or password change.
func (g *GoBGP) UpdatePeer(ctx context.Context, p PeerConfig) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	g.peerMu.Lock()
	defer g.peerMu.Unlock()
	if _, err := srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: g.apiPeer(p)}); err != nil {
		return fmt.Errorf("gobgp: update peer %s (%s): %w", p.Name, p.Address, err)
	}
	g.peers[p.Address] = p
	return nil
}

// DeletePeer implements Speaker.
func (g *GoBGP) DeletePeer(ctx context.Context, addr netip.Addr) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	g.peerMu.Lock()
	defer g.peerMu.Unlock()
	if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("gobgp: delete peer %s: %w", addr, err)
	}
	delete(g.peers, addr)
	return nil
}

func (g *GoBGP) apiPeer(p PeerConfig) *api.Peer {
	conf := &api.PeerConf{
		NeighborAddress: p.Address.String(),
		PeerAsn:         p.PeerASN,
		AuthPassword:    p.Password,
		Description:     p.Name,
	}
	if p.LocalASN != 0 && p.LocalASN != g.global.ASN {
		conf.LocalAsn = p.LocalASN
	}
	tr := &api.Transport{RemotePort: uint32(p.Port)}
	if p.SourceAddress.IsValid() {
		tr.LocalAddress = p.SourceAddress.String()
	}
	ap := &api.Peer{
		Conf:      conf,
		Transport: tr,
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           seconds(p.ConnectRetry),
			HoldTime:               seconds(p.HoldTime),
			KeepaliveInterval:      seconds(p.KeepaliveTime),
			IdleHoldTimeAfterReset: seconds(p.IdleHoldTime),
		}},
	}
	if p.EBGPMultiHop {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: ebgpMultiHopTTL}
	}
	if p.TTLSecurityHops > 0 {
		// GTSM: send with TTL 255, accept only TTL >= 256-hops (RFC 5082 §3).
		ap.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: uint32(256 - int(p.TTLSecurityHops))}
	}
	if p.GracefulRestart {
		ap.GracefulRestart = &api.GracefulRestart{
			Enabled:         true,
			RestartTime:     uint32(seconds(p.RestartTime)),
			DeferralTime:    uint32(seconds(gracefulRestartDeferral)),
			LocalRestarting: true,
		}
	}
	fam := func(afi api.Family_Afi) *api.AfiSafi {
		a := &api.AfiSafi{Config: &api.AfiSafiConfig{
			Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true,
		}}
		if p.GracefulRestart {
			a.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		return a
	}
	if p.IPv4 {
		ap.AfiSafis = append(ap.AfiSafis, fam(api.Family_AFI_IP))
	}
	if p.IPv6 {
		ap.AfiSafis = append(ap.AfiSafis, fam(api.Family_AFI_IP6))
	}
	return ap
}

func seconds(d time.Duration) uint64 { return uint64(d / time.Second) }

// SetExport implements Speaker with one global export policy: per peer a statement matching the peer
// (neighbor-set; GoBGP evaluates it against the receiving peer on export) and its prefixes (prefix-set),
// accepting; the default action rejects. Per-peer policies exist only for route-server clients in GoBGP.
// The policy is rebuilt under a new name and swapped in atomically, then the old one is deleted.
func (g *GoBGP) SetExport(ctx context.Context, export map[netip.Addr][]netip.Prefix) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if maps.EqualFunc(g.export, export, slices.Equal) && g.current != "" {
		return nil
	}
	g.gen++
	name := fmt.Sprintf("%s-%d", exportPolicyPrefix, g.gen)
	var sets []*api.DefinedSet
	pol := &api.Policy{Name: name}
	cleanup := func() { // on failure, remove what this generation created
		dctx := context.WithoutCancel(ctx)
		if len(pol.Statements) > 0 {
			srv.DeletePolicy(dctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: name}, All: true})
		}
		for _, ds := range sets {
			srv.DeleteDefinedSet(dctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{DefinedType: ds.DefinedType, Name: ds.Name}, All: true})
		}
	}
	addSet := func(ds *api.DefinedSet) error {
		if err := srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
			return fmt.Errorf("gobgp: add defined set %s: %w", ds.Name, err)
		}
		sets = append(sets, ds)
		return nil
	}
	for _, peer := range sortedAddrs(export) {
		id := strings.NewReplacer(".", "_", ":", "_").Replace(peer.String())
		ns := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: fmt.Sprintf("%s-n-%s", name, id),
			List: []string{netip.PrefixFrom(peer, peer.BitLen()).String()}}
		nsAdded := false
		// A GoBGP prefix set holds one address family: one set and statement per family.
		for _, fam := range []string{"v4", "v6"} {
			ps := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: fmt.Sprintf("%s-p%s-%s", name, fam, id)}
			for _, p := range export[peer] {
				if p.Addr().Is4() == (fam == "v4") {
					ps.Prefixes = append(ps.Prefixes, &api.Prefix{IpPrefix: p.String(),
						MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Bits())})
				}
			}
			if len(ps.Prefixes) == 0 {
				continue
			}
			if !nsAdded {
				if err := addSet(ns); err != nil {
					cleanup()
					return err
				}
				nsAdded = true
			}
			if err := addSet(ps); err != nil {
				cleanup()
				return err
			}
			pol.Statements = append(pol.Statements, &api.Statement{
				Name: fmt.Sprintf("%s-s%s-%s", name, fam, id),
				Conditions: &api.Conditions{
					NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: ns.Name},
					PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: ps.Name},
				},
				Actions: &api.Actions{RouteAction: api.RouteAction_ACCEPT},
			})
		}
	}
	assign := &api.PolicyAssignment{Name: "global", Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_REJECT}
	if len(pol.Statements) > 0 {
		if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
			pol.Statements = nil
			cleanup()
			return fmt.Errorf("gobgp: add policy %s: %w", name, err)
		}
		assign.Policies = []*api.Policy{{Name: name}}
	} else {
		name = ""
	}
	if err := srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: assign}); err != nil {
		cleanup()
		return fmt.Errorf("gobgp: assign export policy: %w", err)
	}
	var errs []error
	if g.current != "" {
		if err := srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: g.current}, All: true}); err != nil {
			errs = append(errs, fmt.Errorf("gobgp: delete old policy %s: %w", g.current, err))
		}
		for _, ds := range g.sets {
			if err := srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{DefinedType: ds.DefinedType, Name: ds.Name}, All: true}); err != nil {
				errs = append(errs, fmt.Errorf("gobgp: delete old set %s: %w", ds.Name, err))
			}
		}
	}
	// Send newly allowed routes: soft reset out re-evaluates announced paths for the peer.
	for _, peer := range sortedAddrs(export) {
		if gained(g.export[peer], export[peer]) {
			if err := srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: peer.String(), Soft: true, Direction: api.ResetPeerRequest_OUT}); err != nil {
				errs = append(errs, fmt.Errorf("gobgp: soft reset out %s: %w", peer, err))
			}
		}
	}
	g.current, g.sets = name, sets
	g.export = maps.Clone(export)
	return errors.Join(errs...)
}

func gained(old, cur []netip.Prefix) bool {
	for _, p := range cur {
		if !slices.Contains(old, p) {
			return true
		}
	}
	return false
}

// Announce implements Speaker.
func (g *GoBGP) Announce(ctx context.Context, r Route) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	path, err := g.apiPath(r)
	if err != nil {
		return fmt.Errorf("gobgp: announce %s: %w", r.Prefix, err)
	}
	resp, err := srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
	if err != nil {
		return fmt.Errorf("gobgp: announce %s: %w", r.Prefix, err)
	}
	g.mu.Lock()
	g.uuids[r.Prefix] = resp.Uuid
	g.mu.Unlock()
	return nil
}

// Withdraw implements Speaker.
func (g *GoBGP) Withdraw(ctx context.Context, prefix netip.Prefix) error {
	srv, err := g.server()
	if err != nil {
		return err
	}
	g.mu.Lock()
	uuid, ok := g.uuids[prefix]
	g.mu.Unlock()
	if !ok {
		return nil
	}
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if prefix.Addr().Is6() {
		fam.Afi = api.Family_AFI_IP6
	}
	if err := srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: fam, Uuid: uuid}); err != nil {
		return fmt.Errorf("gobgp: withdraw %s: %w", prefix, err)
	}
	g.mu.Lock()
	delete(g.uuids, prefix)
	g.mu.Unlock()
	return nil
}

func (g *GoBGP) apiPath(r Route) (*api.Path, error) {
	attrs := []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP)}
	var nlri bgppkt.AddrPrefixInterface
	if r.Prefix.Addr().Is4() {
		nlri = bgppkt.NewIPAddrPrefix(uint8(r.Prefix.Bits()), r.Prefix.Addr().String())
		nh := "0.0.0.0" // GoBGP fills in the session's local address
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		attrs = append(attrs, bgppkt.NewPathAttributeNextHop(nh))
	} else {
		nlri = bgppkt.NewIPv6AddrPrefix(uint8(r.Prefix.Bits()), r.Prefix.Addr().String())
		nh := "::"
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		attrs = append(attrs, bgppkt.NewPathAttributeMpReachNLRI(nh, []bgppkt.AddrPrefixInterface{nlri}))
	}
	if r.ASPathPrepend > 0 {
		asns := make([]uint32, r.ASPathPrepend)
		for i := range asns {
			asns[i] = g.global.ASN
		}
		attrs = append(attrs, bgppkt.NewPathAttributeAsPath([]bgppkt.AsPathParamInterface{
			bgppkt.NewAs4PathParam(bgppkt.BGP_ASPATH_ATTR_TYPE_SEQ, asns)}))
	}
	if len(r.Communities) > 0 {
		attrs = append(attrs, bgppkt.NewPathAttributeCommunities(r.Communities))
	}
	if len(r.LargeCommunities) > 0 {
		lcs := make([]*bgppkt.LargeCommunity, 0, len(r.LargeCommunities))
		for _, l := range r.LargeCommunities {
			lcs = append(lcs, bgppkt.NewLargeCommunity(l.Global, l.Local1, l.Local2))
		}
		attrs = append(attrs, bgppkt.NewPathAttributeLargeCommunities(lcs))
	}
	if r.LocalPref != nil {
		attrs = append(attrs, bgppkt.NewPathAttributeLocalPref(*r.LocalPref))
	}
	return apiutil.NewPath(nlri, false, attrs, time.Now())
}

// Peers implements Speaker.
func (g *GoBGP) Peers(ctx context.Context) ([]PeerState, error) {
	srv, err := g.server()
	if err != nil {
		return nil, err
	}
	var out []PeerState
	err = srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		if p.State == nil || p.Conf == nil {
			return
		}
		addr, err := netip.ParseAddr(p.Conf.NeighborAddress)
		if err != nil {
			return
		}
		ps := PeerState{Address: addr.Unmap(), State: sessionState(p.State.SessionState)}
		if ps.State == StateEstablished && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			ps.Since = p.Timers.State.Uptime.AsTime()
		}
		// GoBGP counts the End-of-RIB marker it would send with the routes when graceful restart is
		// negotiated (configured here and the peer sent the capability): one per family.
		eor := uint64(0)
		if p.GracefulRestart != nil && p.GracefulRestart.Enabled && slices.ContainsFunc(p.State.RemoteCap, func(c *anypb.Any) bool {
			return c.MessageIs(&api.GracefulRestartCapability{})
		}) {
			eor = 1
		}
		for _, a := range p.AfiSafis {
			if a.State != nil {
				ps.Advertised += a.State.Advertised - min(eor, a.State.Advertised)
			}
		}
		out = append(out, ps)
	})
	if err != nil {
		return nil, fmt.Errorf("gobgp: list peers: %w", err)
	}
	return out, nil
}

func sessionState(s api.PeerState_SessionState) SessionState {
	switch s {
	case api.PeerState_IDLE:
		return StateIdle
	case api.PeerState_CONNECT:
		return StateConnect
	case api.PeerState_ACTIVE:
		return StateActive
	case api.PeerState_OPENSENT:
		return StateOpenSent
	case api.PeerState_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_ESTABLISHED:
		return StateEstablished
	}
	return StateUnknown
}
