package bgp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
)

// FakeSpeaker is an in-memory Speaker for unit tests of the logic around the speaker. It records the
// state a real speaker would hold and every call, and can be told to fail calls. Safe for concurrent use.
type FakeSpeaker struct {
	mu      sync.Mutex
	started bool
	global  Global
	onPeer  func(PeerEvent)
	peers   map[netip.Addr]PeerConfig
	routes  map[netip.Prefix]Route
	export  map[netip.Addr][]netip.Prefix
	calls   []string
	fail    map[string]error // call name ("AddPeer 10.0.0.1", "Announce 1.2.3.4/32", "SetExport") -> error
	changed chan struct{}
}

// NewFakeSpeaker returns an empty fake.
func NewFakeSpeaker() *FakeSpeaker {
	return &FakeSpeaker{
		peers:   map[netip.Addr]PeerConfig{},
		routes:  map[netip.Prefix]Route{},
		export:  map[netip.Addr][]netip.Prefix{},
		fail:    map[string]error{},
		changed: make(chan struct{}, 1),
	}
}

// ErrFake is returned by calls told to fail with FailOn.
var ErrFake = errors.New("fake speaker failure")

// FailOn makes the call named call fail with ErrFake until cleared with ok=true.
func (f *FakeSpeaker) FailOn(call string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ok {
		delete(f.fail, call)
	} else {
		f.fail[call] = ErrFake
	}
}

func (f *FakeSpeaker) record(call string) error {
	f.calls = append(f.calls, call)
	select {
	case f.changed <- struct{}{}:
	default:
	}
	if err := f.fail[call]; err != nil {
		return fmt.Errorf("%s: %w", call, err)
	}
	return nil
}

// Changed is signalled (coalesced) after every call.
func (f *FakeSpeaker) Changed() <-chan struct{} { return f.changed }

// Calls returns the calls made so far and forgets them.
func (f *FakeSpeaker) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// Routes returns the announced routes.
func (f *FakeSpeaker) Routes() map[netip.Prefix]Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.routes)
}

// PeerConfigs returns the configured peers.
func (f *FakeSpeaker) PeerConfigs() map[netip.Addr]PeerConfig {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.peers)
}

// Export returns the last export map.
func (f *FakeSpeaker) Export() map[netip.Addr][]netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.export)
}

// Emit delivers a session event as the real speaker would.
func (f *FakeSpeaker) Emit(ev PeerEvent) {
	f.mu.Lock()
	fn := f.onPeer
	f.mu.Unlock()
	if fn != nil {
		fn(ev)
	}
}

// Start implements Speaker.
func (f *FakeSpeaker) Start(_ context.Context, g Global, onPeer func(PeerEvent)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Start"); err != nil {
		return err
	}
	f.started, f.global, f.onPeer = true, g, onPeer
	return nil
}

// Stop implements Speaker.
func (f *FakeSpeaker) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Stop"); err != nil {
		return err
	}
	f.started = false
	f.routes = map[netip.Prefix]Route{}
	return nil
}

// AddPeer implements Speaker.
func (f *FakeSpeaker) AddPeer(_ context.Context, p PeerConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("AddPeer " + p.Address.String()); err != nil {
		return err
	}
	if _, ok := f.peers[p.Address]; ok {
		return fmt.Errorf("peer %s exists", p.Address)
	}
	f.peers[p.Address] = p
	return nil
}

// UpdatePeer implements Speaker.
func (f *FakeSpeaker) UpdatePeer(_ context.Context, p PeerConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("UpdatePeer " + p.Address.String()); err != nil {
		return err
	}
	if _, ok := f.peers[p.Address]; !ok {
		return fmt.Errorf("peer %s not found", p.Address)
	}
	f.peers[p.Address] = p
	return nil
}

// DeletePeer implements Speaker.
func (f *FakeSpeaker) DeletePeer(_ context.Context, a netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("DeletePeer " + a.String()); err != nil {
		return err
	}
	delete(f.peers, a)
	return nil
}

// SetExport implements Speaker.
func (f *FakeSpeaker) SetExport(_ context.Context, export map[netip.Addr][]netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("SetExport"); err != nil {
		return err
	}
	f.export = maps.Clone(export)
	for k, v := range f.export {
		f.export[k] = slices.Clone(v)
	}
	return nil
}

// Announce implements Speaker.
func (f *FakeSpeaker) Announce(_ context.Context, r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Announce " + r.Prefix.String()); err != nil {
		return err
	}
	f.routes[r.Prefix] = r
	return nil
}

// Withdraw implements Speaker.
func (f *FakeSpeaker) Withdraw(_ context.Context, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Withdraw " + p.String()); err != nil {
		return err
	}
	delete(f.routes, p)
	return nil
}

// Peers implements Speaker: every configured peer is reported established.
func (f *FakeSpeaker) Peers(context.Context) ([]PeerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []PeerState
	for _, a := range sortedAddrs(f.peers) {
		n := 0
		for _, p := range f.export[a] {
			if _, ok := f.routes[p]; ok {
				n++
			}
		}
		out = append(out, PeerState{Address: a, State: StateEstablished, Advertised: uint64(n)})
	}
	return out, nil
}

var _ Speaker = (*FakeSpeaker)(nil)
var _ Speaker = (*GoBGP)(nil)
