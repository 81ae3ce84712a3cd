package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/edgegate/edgegate/gateway"
	"github.com/edgegate/edgegate/gateway/source"
	"github.com/edgegate/edgegate/gateway/tenancy"
	"github.com/edgegate/edgegate/gateway/xdsserver"
)

// TestIncrementalMatchesFull applies random changes one at a time through the incremental path
// (only the changed object's event) and checks after each that the model equals a full
// translation of the same objects from scratch. This is what makes "translate only what is dirty"
// safe: ownership, quotas, merges and clusters must all follow a single event.
func TestIncrementalMatchesFull(t *testing.T) {
	policy := &tenancy.Policy{DefaultQuota: tenancy.Quota{MaxHosts: 3}, CatchAllNamespaces: []string{"main/t0"}}
	namespaces := []string{"t0", "t1", "t2"}
	hosts := []string{"a.example.com", "b.example.com", "*.example.com", "x.example.com", "c.example.org"}
	seed := uint64(1)
	rng := rand.New(rand.NewPCG(seed, 2))

	objects := map[string]string{} // key → YAML document
	for _, ns := range namespaces {
		objects["svc/"+ns] = nsService(ns, "198.18.0.1"+ns[1:])
	}
	objects["class"] = ingressClass
	docs := func() []string {
		out := make([]string, 0, len(objects))
		for _, d := range objects {
			out = append(out, d)
		}
		return out
	}
	mutable := &mutableSource{}
	mutable.set(t, decode(t, docs()...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	inc := gateway.New(gateway.Config{Controller: "edgegate.io/ingress", Tenancy: policy}, log, []gateway.Source{mutable}, nil, xdsserver.New(ctx, log), nil)
	inc.TranslateAll()

	for step := range 300 {
		ns := namespaces[rng.IntN(len(namespaces))]
		name := fmt.Sprintf("ing%d", rng.IntN(4))
		key := "ing/" + ns + "/" + name
		var ev source.Event
		switch op := rng.IntN(10); {
		case op < 6: // create or update
			n := 1 + rng.IntN(2)
			var hs []string
			for range n {
				hs = append(hs, hosts[rng.IntN(len(hosts))])
			}
			objects[key] = ing(ns, name, rng.IntN(30), hs...)
			ev = source.Event{Cluster: "main", Kind: source.KindIngress, Namespace: ns, Name: name}
		case op < 8: // delete
			delete(objects, key)
			ev = source.Event{Cluster: "main", Kind: source.KindIngress, Namespace: ns, Name: name}
		default: // move the Service's endpoint
			objects["svc/"+ns] = nsService(ns, fmt.Sprintf("198.18.1.%d", rng.IntN(200)+1))
			ev = source.Event{Cluster: "main", Kind: source.KindEndpointSlice, Namespace: ns, Name: "web"}
		}
		mutable.set(t, decode(t, docs()...))
		inc.Process(ev)

		_, full := runPipelineObjects(t, policy, decode(t, docs()...))
		if diff := cmp.Diff(full.Model(), inc.Model()); diff != "" {
			t.Fatalf("step %d (%s): incremental model differs from a full translation (-full +incremental):\n%s", step, key, diff)
		}
	}
}

func runPipelineObjects(t *testing.T, p *tenancy.Policy, objs []runtime.Object) (*source.Static, *gateway.Gateway) {
	t.Helper()
	src, err := source.NewStatic("main", "pod", objs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gw := gateway.New(gateway.Config{Controller: "edgegate.io/ingress", Tenancy: p}, log, []gateway.Source{src}, nil, xdsserver.New(ctx, log), nil)
	gw.TranslateAll()
	return src, gw
}

// TestInitialListNotificationsAfterFullPass: once a pass over the whole cache has run with the
// cluster synced, notifications of the informers' first list (which client-go keeps delivering
// after it reports the cache synced: 600k at 200k routes) cause no work; any other notification does.
func TestInitialListNotificationsAfterFullPass(t *testing.T) {
	objects := []string{ingressClass, nsService("t0", "198.18.0.10"), ing("t0", "a", 0, "a.example.com")}
	mutable := &mutableSource{}
	mutable.set(t, decode(t, objects...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	events := make(chan source.Event, 4)
	gw := gateway.New(gateway.Config{Controller: "edgegate.io/ingress", Holdoff: time.Millisecond, MaxDelay: 10 * time.Millisecond,
		StartupGrace: time.Minute, ConsistencyInterval: time.Hour}, log, []gateway.Source{mutable}, events, xdsserver.New(ctx, log), nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = gw.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "first publication", func() bool { return gw.Snapshot().Hosts == 1 })

	// A second Ingress, announced as part of the first list: the full pass is taken to have seen
	// it already, so nothing is re-translated (this source did not have it then, which makes the
	// difference visible).
	mutable.set(t, decode(t, append(objects, ing("t0", "b", 1, "b.example.com"))...))
	ev := source.Event{Cluster: "main", Kind: source.KindIngress, Namespace: "t0", Name: "b", Initial: true}
	events <- ev
	time.Sleep(100 * time.Millisecond) // ten times the debounce
	if got := gw.Snapshot().Hosts; got != 1 {
		t.Fatalf("%d hosts after a first-list notification, want 1: it caused a re-translation", got)
	}
	ev.Initial = false
	events <- ev
	waitFor(t, "the same notification, not from the first list, to be translated", func() bool { return gw.Snapshot().Hosts == 2 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFirstPublicationInParts: the first configuration, applied in parts (one Ingress each here),
// ends exactly where a single pass does, although hosts, owners and quotas span parts; and it did
// go out in parts (hosts shared by Ingresses of different parts were pushed more than once).
func TestFirstPublicationInParts(t *testing.T) {
	policy := &tenancy.Policy{DefaultQuota: tenancy.Quota{MaxHosts: 2}, CatchAllNamespaces: []string{"main/t0"}}
	rng := rand.New(rand.NewPCG(7, 8))
	hosts := []string{"a.example.com", "b.example.com", "*.example.com", "x.example.com", "c.example.org"}
	docs := []string{ingressClass}
	for _, ns := range []string{"t0", "t1", "t2"} {
		docs = append(docs, nsService(ns, "198.18.0.1"+ns[1:]))
		for i := range 6 {
			name := fmt.Sprintf("ing%d", i)
			// Each Ingress its own path, so a host merging Ingresses of several parts changes with each.
			d := ing(ns, name, rng.IntN(30), hosts[rng.IntN(len(hosts))], hosts[rng.IntN(len(hosts))])
			docs = append(docs, strings.ReplaceAll(d, "path: /,", "path: /"+ns+name+","))
		}
	}
	translate := func() (*gateway.Gateway, *xdsserver.Server) {
		src, err := source.NewStatic("main", "pod", decode(t, docs...))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		xds := xdsserver.New(ctx, log)
		gw := gateway.New(gateway.Config{Controller: "edgegate.io/ingress", Tenancy: policy}, log, []gateway.Source{src}, nil, xds, nil)
		gw.TranslateAll()
		return gw, xds
	}
	whole, wholeXDS := translate()
	restore := gateway.SetFirstPublicationPart(1)
	defer restore()
	parts, xds := translate()
	// What Envoy was sent, resource by resource (Model() would translate again from the cache).
	for _, typ := range xdsserver.Types {
		names, got := wholeXDS.Names(typ), xds.Names(typ)
		slices.Sort(names)
		slices.Sort(got)
		if !cmp.Equal(got, names) {
			t.Fatalf("%s: in parts %v, in one pass %v", typ, got, names)
		}
		for _, n := range names {
			if !proto.Equal(wholeXDS.Get(typ, n), xds.Get(typ, n)) {
				t.Fatalf("%s %s differs between one pass and parts:\n%v\n%v", typ, n, wholeXDS.Get(typ, n), xds.Get(typ, n))
			}
		}
	}
	if diff := cmp.Diff(whole.Model(), parts.Model()); diff != "" {
		t.Fatalf("first configuration in parts differs from one pass (-one pass +parts):\n%s", diff)
	}
	served := len(parts.Model().Hosts)
	if pushed := xds.Stats().Pushed[resource.ScopedRouteType]; pushed <= served {
		t.Fatalf("%d scope pushes for %d hosts: the configuration did not go out in parts", pushed, served)
	}
}
