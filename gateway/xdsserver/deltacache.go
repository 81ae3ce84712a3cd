package xdsserver

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// deltaCache serves one resource type over delta xDS at a cost proportional to the change, not to
// the number of resources. go-control-plane's LinearCache walks every resource and clones every
// subscription's version map on each push and on each ACK (O(N) per change per Envoy: ~120 ms and
// ~10 MB at 200k scopes on 2 vCPUs), which would dominate route activation at scale.
//
// How: every change gets a sequence number in a change log. The version map a response hands back
// to go-control-plane's server (which stores it in the stream's Subscription and passes it to the
// next CreateDeltaWatch) carries a cursor entry — the sequence it reflects — so the next watch
// looks only at the log entries after it. A map without a cursor (a new stream, or Envoy
// reconnecting with its initial resource versions), or a cursor older than the log, gets one full
// comparison. Responses are built lazily on the stream's own goroutine, which is also the only
// goroutine that touches the version map: the map is updated in place there, O(change), where
// LinearCache would clone it.
//
// Delta only: the bootstrap edgegate writes always asks for DELTA_GRPC.
type deltaCache struct {
	typeURL string

	mu        sync.Mutex
	resources map[string]entry
	seq       uint64
	log       []change // changes with seq in (logStart, seq], oldest first
	logStart  uint64
	watches   map[*deltaWatch]struct{}

	// alias, when set, serves a requested name that has no resource of its own from another
	// resource (a wildcard certificate for a host name; see wildcardSecret). It returns the other
	// resource's name and the resource re-made under the requested name.
	alias func(name string, resources map[string]entry) (string, entry, bool)
}

// entry is a resource as sent: its wire bytes, so the served configuration costs its wire size in
// memory, not the size of its Go proto objects (several times larger). The Any that carries it is
// made when it is sent, with the cache's type URL (one string per type, not one per resource), and
// so is the version's text: most clusters and endpoints are never sent (Envoy asks for them on
// demand), and a number costs 8 bytes where its text cost 40.
type entry struct {
	value []byte
	hash  uint64 // xxhash of value: the version
}

// version is the entry's version as Envoy sees it: the hash in hex.
func (e entry) version() string { return strconv.FormatUint(e.hash, 16) }

// hasVersion reports whether v is e's version, without allocating.
func (e entry) hasVersion(v string) bool {
	var buf [16]byte
	return string(strconv.AppendUint(buf[:0], e.hash, 16)) == v
}

// marshal encodes a resource once, deterministically, and derives its version from the bytes (a
// 64-bit hash: a collision would let one change of one resource go unsent, about once in 10^19).
func marshal(r types.Resource) (entry, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil {
		return entry{}, err
	}
	return entry{value: b, hash: xxhash.Sum64(b)}, nil
}

type change struct {
	seq  uint64
	name string
}

// cursorKey is the version-map entry that records which change-log sequence the map reflects. It
// can never collide with a resource name (names are printable) and is never sent to Envoy: the
// server only stores the map and hands it back.
const cursorKey = "\x00edgegate-cursor"

// maxResponseBytes bounds the resources in one response (a whole table is sent in parts). One
// response of every scope was 52 MB at 100k hosts: gRPC held a buffer of that size, and Envoy
// decoded the whole message before applying any of it.
const maxResponseBytes = 4 << 20

// maxLog bounds the change log; a cursor that falls behind it costs one full comparison.
const maxLog = 1 << 17

func newDeltaCache(typeURL string) *deltaCache {
	return &deltaCache{typeURL: typeURL, resources: map[string]entry{}, watches: map[*deltaWatch]struct{}{}}
}

// lookup returns the resource served under name: its own, or an alias's; it holds c.mu.
func (c *deltaCache) lookup(name string) (entry, bool) {
	if e, ok := c.resources[name]; ok {
		return e, true
	}
	if c.alias != nil {
		if _, e, ok := c.alias(name, c.resources); ok {
			return e, true
		}
	}
	return entry{}, false
}

// aliasTarget returns the name whose resource would serve name if name had none ("" if none).
func (c *deltaCache) aliasTarget(name string) string {
	if c.alias == nil {
		return ""
	}
	target, _, _ := c.alias(name, nil)
	return target
}

// UpdateResources adds or replaces and removes resources, and wakes the watches that care; it
// returns how many resources changed (a put with the version already served and the removal of a
// name not served are no-ops). The versions are content hashes, so a reconnecting Envoy that
// already has a resource is not sent it again.
func (c *deltaCache) UpdateResources(put map[string]entry, remove []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := make([]string, 0, len(put)+len(remove))
	for name, m := range put {
		if old, ok := c.resources[name]; ok && old.hash == m.hash {
			continue
		}
		c.resources[name] = m
		changed = append(changed, name)
	}
	for _, name := range remove {
		if _, ok := c.resources[name]; !ok {
			continue
		}
		delete(c.resources, name)
		changed = append(changed, name)
	}
	if len(changed) == 0 {
		return 0
	}
	for _, name := range changed {
		c.seq++
		c.log = append(c.log, change{seq: c.seq, name: name})
	}
	// Trim in halves, so the copy is amortised over maxLog changes.
	if len(c.log) > 2*maxLog {
		over := len(c.log) - maxLog
		c.logStart = c.log[over-1].seq
		c.log = append([]change(nil), c.log[over:]...)
	}
	for w := range c.watches {
		if w.wants(changed, c.aliasTarget) {
			delete(c.watches, w)
			w.out <- &deltaResponse{cache: c, watch: w}
		}
	}
	return len(changed)
}

// deltaWatch is one open delta request of one stream.
type deltaWatch struct {
	req *discovery.DeltaDiscoveryRequest
	sub cache.Subscription
	out chan cache.DeltaResponse
}

func (w *deltaWatch) wants(changed []string, aliasTarget func(string) string) bool {
	if w.sub.IsWildcard() {
		return true
	}
	subscribed := w.sub.SubscribedResources()
	for _, n := range changed {
		if _, ok := subscribed[n]; ok {
			return true
		}
	}
	return len(aliasedBy(subscribed, changed, aliasTarget)) > 0
}

// aliasedBy returns the subscribed names served by an alias among changed. It scans the
// subscription only when a change can be an alias target (a "*." name): wildcard certificates
// change rarely, and the scan is over the names this Envoy asked for.
func aliasedBy(subscribed map[string]struct{}, changed []string, aliasTarget func(string) string) []string {
	targets := map[string]bool{}
	for _, n := range changed {
		if strings.HasPrefix(n, "*.") {
			targets[n] = true
		}
	}
	if len(targets) == 0 {
		return nil
	}
	var out []string
	for n := range subscribed {
		if t := aliasTarget(n); t != "" && targets[t] {
			out = append(out, n)
		}
	}
	return out
}

// CreateDeltaWatch answers at once when the subscription is behind (or on the first request of a
// wildcard subscription, which Envoy needs answered even when empty); otherwise it parks the watch.
// It runs on the stream's goroutine.
func (c *deltaCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, out chan cache.DeltaResponse) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, fmt.Errorf("request type %s does not match cache type %s", req.GetTypeUrl(), c.typeURL)
	}
	w := &deltaWatch{req: req, sub: sub, out: out}
	c.mu.Lock()
	defer c.mu.Unlock()
	firstWildcard := sub.IsWildcard() && req.GetResponseNonce() == ""
	if firstWildcard || c.behind(w) {
		out <- &deltaResponse{cache: c, watch: w}
		return func() {}, nil
	}
	c.watches[w] = struct{}{}
	return func() {
		c.mu.Lock()
		delete(c.watches, w)
		c.mu.Unlock()
	}, nil
}

// behind reports whether the watch's subscription lacks anything; it holds c.mu.
func (c *deltaCache) behind(w *deltaWatch) bool {
	updated, removed, _ := c.diff(w, 0)
	return len(updated) > 0 || len(removed) > 0
}

// diff computes what the watch's subscription lacks, unordered: resources to send and names to remove. It
// reads the subscription's version map, so it runs on the stream's goroutine; it holds c.mu.
//
// It stops once the resources to send exceed budget bytes (complete is then false): a table sent
// in parts costs each part about its own size, not a comparison of everything (a new Envoy's
// first 100k scopes took ten full comparisons, twice each). A budget of 0 stops at the first
// difference.
func (c *deltaCache) diff(w *deltaWatch, budget int) (updated, removed []string, complete bool) {
	sub := w.sub
	known := sub.ReturnedResources()
	candidates, full := c.candidates(known)
	// Names (un)subscribed by this request may have changed standing without a change in the log.
	for _, n := range w.req.GetResourceNamesSubscribe() {
		candidates[n] = true
	}
	for _, n := range w.req.GetResourceNamesUnsubscribe() {
		candidates[n] = true
	}
	wildcard := sub.IsWildcard()
	subscribed := sub.SubscribedResources()
	if !wildcard && !full && c.alias != nil {
		changed := make([]string, 0, len(candidates))
		for n := range candidates {
			changed = append(changed, n)
		}
		for _, n := range aliasedBy(subscribed, changed, c.aliasTarget) {
			candidates[n] = true
		}
	}
	// A name asked for now that does not exist is answered as removed, so Envoy stops waiting for
	// it (an on-demand certificate fails the handshake, an on-demand cluster its request).
	askedNow := map[string]bool{}
	if !wildcard {
		for _, n := range w.req.GetResourceNamesSubscribe() {
			askedNow[n] = true
		}
	}
	seen := map[string]bool{}
	size := 0
	consider := func(name string) (more bool) {
		if seen[name] || name == cursorKey {
			return true
		}
		seen[name] = true
		_, explicit := subscribed[name]
		if !wildcard && !explicit {
			return true
		}
		e, exists := c.lookup(name)
		have, known := known[name]
		switch {
		case exists && (!known || !e.hasVersion(have)):
			updated = append(updated, name)
			size += len(e.value) + len(name) + 16
		case !exists && (known || askedNow[name]):
			removed = append(removed, name)
			size += len(name)
		default:
			return true
		}
		return size <= budget
	}
	all := func(names ...iter.Seq[string]) bool {
		for _, seq := range names {
			for name := range seq {
				if !consider(name) {
					return false
				}
			}
		}
		return true
	}
	switch {
	case !full:
		complete = all(maps.Keys(candidates))
	case wildcard:
		complete = all(maps.Keys(c.resources), maps.Keys(known))
	default:
		complete = all(maps.Keys(subscribed), maps.Keys(known))
	}
	return updated, removed, complete
}

// candidates returns the names changed since the map's cursor, or full=true when the map has no
// usable cursor (the caller then compares everything).
func (c *deltaCache) candidates(known map[string]string) (map[string]bool, bool) {
	names := map[string]bool{}
	cur, err := strconv.ParseUint(known[cursorKey], 10, 64)
	if err != nil || cur < c.logStart || cur > c.seq {
		return names, true
	}
	i := sort.Search(len(c.log), func(i int) bool { return c.log[i].seq > cur })
	for _, ch := range c.log[i:] {
		names[ch.name] = true
	}
	return names, false
}

// Fetch is not supported: edgegate serves delta xDS only.
func (c *deltaCache) Fetch(context.Context, *cache.Request) (cache.Response, error) {
	return nil, errors.New("fetch is not supported")
}

// CreateWatch refuses state-of-the-world requests: edgegate's bootstrap asks for delta xDS.
func (c *deltaCache) CreateWatch(*cache.Request, cache.Subscription, chan cache.Response) (func(), error) {
	return nil, errors.New("state-of-the-world xDS is not served; use DELTA_GRPC")
}

// deltaResponse is computed when the server sends it, on the stream's goroutine, so it carries the
// newest state (several updates coalesce into one response) and may update the stream's version
// map in place.
type deltaResponse struct {
	cache *deltaCache
	watch *deltaWatch

	once     sync.Once
	resp     *discovery.DeltaDiscoveryResponse
	versions map[string]string
	err      error
}

func (r *deltaResponse) build() {
	r.once.Do(func() {
		c := r.cache
		c.mu.Lock()
		defer c.mu.Unlock()
		// A response carries about maxResponseBytes of resources; the rest follows in the
		// responses to Envoy's next requests (each ACK opens a watch that is behind, so it is
		// answered at once). The cursor moves only with the last part: until then every part
		// diffs again from the old one, and skips what the version map says was sent.
		updated, removed, complete := c.diff(r.watch, maxResponseBytes)
		sort.Strings(updated)
		sort.Strings(removed)
		resp := &discovery.DeltaDiscoveryResponse{TypeUrl: c.typeURL, SystemVersionInfo: strconv.FormatUint(c.seq, 10), RemovedResources: removed}
		versions := r.watch.sub.ReturnedResources()
		if versions == nil {
			versions = map[string]string{}
		}
		resp.Resources = make([]*discovery.Resource, 0, len(updated))
		for _, name := range updated {
			e, _ := c.lookup(name)
			v := e.version()
			resp.Resources = append(resp.Resources, &discovery.Resource{Name: name, Version: v,
				Resource: &anypb.Any{TypeUrl: c.typeURL, Value: e.value}})
			versions[name] = v
		}
		for _, name := range removed {
			delete(versions, name)
		}
		if complete {
			versions[cursorKey] = strconv.FormatUint(c.seq, 10)
		}
		r.resp, r.versions = resp, versions
	})
}

func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discovery.DeltaDiscoveryResponse, error) {
	r.build()
	return r.resp, r.err
}

func (r *deltaResponse) GetDeltaRequest() *discovery.DeltaDiscoveryRequest { return r.watch.req }

func (r *deltaResponse) GetSystemVersion() (string, error) { return r.GetResponseVersion(), nil }

func (r *deltaResponse) GetResponseVersion() string {
	r.build()
	if r.resp == nil {
		return ""
	}
	return r.resp.GetSystemVersionInfo()
}

func (r *deltaResponse) GetNextVersionMap() map[string]string { r.build(); return r.versions }

func (r *deltaResponse) GetReturnedResources() map[string]string { r.build(); return r.versions }

func (r *deltaResponse) GetContext() context.Context { return context.Background() }
