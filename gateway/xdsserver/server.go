// Package xdsserver serves Envoy resources to the local Envoy over the aggregated (ADS) gRPC stream,
// delta (incremental) or state-of-the-world, with go-control-plane.
//
// Each resource type lives in its own deltaCache, so an update touches only the named resources and
// Envoy receives only those (delta xDS), at a cost proportional to the change (see deltacache.go). Server.Apply is the single way to change what is served;
// it skips resources whose proto is unchanged and orders additions and removals so Envoy never sees
// a reference to something it does not have yet (secrets and clusters before the scopes and
// listeners that use them; removals the other way round).
package xdsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Types are the resource types edgegate serves: what is used before what uses it.
var Types = []string{resource.SecretType, resource.ClusterType, resource.EndpointType, resource.ScopedRouteType, resource.ListenerType}

// maxMessageBytes bounds one gRPC message. The initial delta response for a type carries every
// resource of that type; at 200k scopes that is well over gRPC's 4 MiB default.
const maxMessageBytes = 512 << 20

// Update is a set of changes to apply at once: per type URL, resources to add or replace (by name)
// and names to remove. Resources are marshalled as they are put, a batch at a time on every core,
// so a whole-table update (the first configuration: 300k resources at 100k routes) never holds
// all its Go proto objects at once, only their wire bytes.
type Update struct {
	pending  map[string]map[string]types.Resource // put, not yet marshalled
	npending int
	ready    map[string]map[string]entry
	errs     []error
	Delete   map[string][]string
}

// marshalBatch is how many resources an Update holds as proto objects before marshalling them.
const marshalBatch = 4096

// Put records a resource to add or replace (a later Put of the same name wins).
func (u *Update) Put(typeURL, name string, r types.Resource) {
	if u.pending == nil {
		u.pending = map[string]map[string]types.Resource{}
	}
	if u.pending[typeURL] == nil {
		u.pending[typeURL] = map[string]types.Resource{}
	}
	if _, had := u.pending[typeURL][name]; !had {
		u.npending++
	}
	u.pending[typeURL][name] = r
	if u.npending >= marshalBatch {
		u.marshalPending()
	}
}

// marshalPending moves the pending resources to ready, marshalled.
func (u *Update) marshalPending() {
	if u.ready == nil {
		u.ready = map[string]map[string]entry{}
	}
	for t, rs := range u.pending {
		put, errs := marshalAll(t, rs)
		u.errs = append(u.errs, errs...)
		if u.ready[t] == nil {
			u.ready[t] = put
			continue
		}
		for name, m := range put {
			u.ready[t][name] = m
		}
	}
	u.pending, u.npending = nil, 0
}

// Remove records a resource to remove.
func (u *Update) Remove(typeURL, name string) {
	if u.Delete == nil {
		u.Delete = map[string][]string{}
	}
	u.Delete[typeURL] = append(u.Delete[typeURL], name)
}

// Stats counts what the server did; read it with Server.Stats.
type Stats struct {
	// Streams is the number of open ADS streams.
	Streams int
	// Pushed counts resources added or changed per type since start; Removed counts removals.
	Pushed  map[string]int
	Removed map[string]int
	// SentBytes is the total size of delta responses sent, per type.
	SentBytes map[string]int64
	// Rejected counts NACKs per type; LastRejection is Envoy's last error message.
	Rejected      map[string]int
	LastRejection string
}

// Server holds the served resources and the gRPC service. All methods are safe for concurrent use;
// Apply is normally called from the gateway's single owner goroutine.
type Server struct {
	log    *slog.Logger
	caches map[string]*deltaCache
	xds    serverv3.Server

	mu    sync.Mutex // serialises Apply and guards stats
	stats Stats
}

// New returns a server with empty caches. It starts nothing; call Serve.
func New(ctx context.Context, log *slog.Logger) *Server {
	s := &Server{
		log:    log,
		caches: map[string]*deltaCache{},
		stats: Stats{Pushed: map[string]int{}, Removed: map[string]int{}, SentBytes: map[string]int64{},
			Rejected: map[string]int{}},
	}
	mux := &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return r.GetTypeUrl() },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return r.GetTypeUrl() },
		Caches:        map[string]cache.Cache{},
	}
	for _, t := range Types {
		c := newDeltaCache(t)
		if t == resource.SecretType {
			c.alias = wildcardSecret
		}
		s.caches[t] = c
		mux.Caches[t] = c
	}
	s.xds = serverv3.NewServer(ctx, mux, serverv3.CallbackFuncs{
		StreamOpenFunc:        s.onOpen,
		StreamClosedFunc:      s.onClosed,
		DeltaStreamOpenFunc:   s.onOpen,
		DeltaStreamClosedFunc: s.onClosed,
		StreamDeltaRequestFunc: func(_ int64, req *discovery.DeltaDiscoveryRequest) error {
			s.onRequest(req.GetTypeUrl(), req.GetErrorDetail().GetMessage(), req.GetResponseNonce())
			return nil
		},
		StreamRequestFunc: func(_ int64, req *discovery.DiscoveryRequest) error {
			s.onRequest(req.GetTypeUrl(), req.GetErrorDetail().GetMessage(), req.GetResponseNonce())
			return nil
		},
		StreamDeltaResponseFunc: func(_ int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
			s.mu.Lock()
			s.stats.SentBytes[resp.GetTypeUrl()] += int64(proto.Size(resp))
			s.mu.Unlock()
		},
	})
	return s
}

func (s *Server) onOpen(_ context.Context, id int64, typeURL string) error {
	s.mu.Lock()
	s.stats.Streams++
	s.mu.Unlock()
	s.log.Info("xds stream opened", "stream", id, "type", typeURL)
	return nil
}

func (s *Server) onClosed(id int64, node *core.Node) {
	s.mu.Lock()
	s.stats.Streams--
	s.mu.Unlock()
	s.log.Info("xds stream closed", "stream", id, "node", node.GetId())
}

func (s *Server) onRequest(typeURL, errMsg, nonce string) {
	if errMsg == "" {
		return
	}
	s.mu.Lock()
	s.stats.Rejected[typeURL]++
	s.stats.LastRejection = errMsg
	s.mu.Unlock()
	s.log.Error("envoy rejected configuration", "type", typeURL, "nonce", nonce, "error", errMsg)
}

// Apply changes the served resources. Resources equal to what is already served are skipped, so
// Envoy only hears about real changes. Order matters so that Envoy never routes to something it
// has not got: new secrets, clusters and endpoints first, then the scopes and listeners that use
// them, then removals of scopes and listeners, and last removals of what they used.
// It returns how many resources were pushed or removed.
func (s *Server) Apply(u Update) (changed int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.marshalPending()
	errs := u.errs
	users := map[string]bool{resource.ScopedRouteType: true, resource.ListenerType: true}
	for _, phase := range []struct {
		upsert, used bool
	}{{true, true}, {true, false}, {false, false}, {false, true}} {
		for _, t := range Types {
			if users[t] == phase.used {
				continue
			}
			if phase.upsert {
				changed += s.upsert(t, u.ready[t])
			} else {
				changed += s.remove(t, u.Delete[t])
			}
		}
	}
	return changed, errors.Join(errs...)
}

func (s *Server) upsert(t string, put map[string]entry) int {
	if len(put) == 0 {
		return 0
	}
	n := s.caches[t].UpdateResources(put, nil)
	s.stats.Pushed[t] += n
	return n
}

// parallelMarshal: updates with more resources than this are marshalled on every core (the first
// configuration and the consistency pass: 300k resources at 100k routes); smaller ones are not
// worth the goroutines.
const parallelMarshal = 512

// marshalAll marshals every resource of an update, in parallel when it is large.
func marshalAll(t string, rs map[string]types.Resource) (map[string]entry, []error) {
	names := make([]string, 0, len(rs))
	for name := range rs {
		names = append(names, name)
	}
	out := make([]entry, len(names))
	errs := make([]error, len(names))
	work := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i], errs[i] = marshal(rs[names[i]])
		}
	}
	if workers := runtime.GOMAXPROCS(0); len(names) > parallelMarshal && workers > 1 {
		var wg sync.WaitGroup
		chunk := (len(names) + workers - 1) / workers
		for lo := 0; lo < len(names); lo += chunk {
			wg.Go(func() { work(lo, min(lo+chunk, len(names))) })
		}
		wg.Wait()
	} else {
		work(0, len(names))
	}
	put := make(map[string]entry, len(names))
	var failed []error
	for i, name := range names {
		if errs[i] != nil {
			failed = append(failed, fmt.Errorf("marshal %s %s: %w", t, name, errs[i]))
			continue
		}
		put[name] = out[i]
	}
	return put, failed
}

func (s *Server) remove(t string, names []string) int {
	if len(names) == 0 {
		return 0
	}
	n := s.caches[t].UpdateResources(nil, names)
	s.stats.Removed[t] += n
	return n
}

// Names returns the names served for a type (for status and tests).
func (s *Server) Names(typeURL string) []string {
	c := s.caches[typeURL]
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.resources))
	for n := range c.resources {
		out = append(out, n)
	}
	return out
}

// Get returns the served resource of a type by name, or nil (decoded again from what is served:
// for status, tools and tests, not the hot path).
func (s *Server) Get(typeURL, name string) types.Resource {
	c := s.caches[typeURL]
	if c == nil {
		return nil
	}
	c.mu.Lock()
	e, ok := c.resources[name]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	m, err := (&anypb.Any{TypeUrl: typeURL, Value: e.value}).UnmarshalNew()
	if err != nil {
		return nil
	}
	return m
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := s.stats
	cp.Pushed, cp.Removed, cp.SentBytes, cp.Rejected = cloneMap(s.stats.Pushed), cloneMap(s.stats.Removed), cloneMap(s.stats.SentBytes), cloneMap(s.stats.Rejected)
	return cp
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Serve runs the ADS gRPC service on lis until ctx is done.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMessageBytes),
		grpc.MaxSendMsgSize(maxMessageBytes),
		// No server keepalive pings: Envoy is local, a dead Envoy closes its socket, and an Envoy
		// busy applying 100k clusters cannot answer a ping in time — the stream was cut and the
		// apply restarted from scratch (found by the 100k benchmark). Envoy's own pings are allowed.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	discovery.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	done := make(chan error, 1)
	go func() { done <- g.Serve(lis) }()
	select {
	case <-ctx.Done():
		g.Stop()
		<-done
		return nil
	case err := <-done:
		return fmt.Errorf("xds grpc server: %w", err)
	}
}
