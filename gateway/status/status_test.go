package status

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestBulkDoesNotDelayChanges: a whole-table backlog drains at bulkRate, and a change queued
// behind it is written at once. (The writes themselves go to a real apiserver in test/e2e; here a
// fake clientset records their order.)
func TestBulkDoesNotDelayChanges(t *testing.T) {
	const backlog = 3 * bulkRate // three seconds' worth
	var objs []runtime.Object
	for i := range backlog {
		objs = append(objs, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("b%d", i)}})
	}
	objs = append(objs, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "change"}})
	client := fake.NewClientset(objs...)
	var mu sync.Mutex
	var order []string
	client.PrependReactor("patch", "ingresses", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		order = append(order, a.(k8stesting.PatchAction).GetName())
		mu.Unlock()
		return false, nil, nil
	})
	w := New(slog.New(slog.DiscardHandler), map[string]Target{"main": {
		Client: client,
		Ingress: func(ns, name string) *networkingv1.Ingress {
			return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		},
	}})
	accepted := Desired{Accepted: true, Addresses: []string{"192.0.2.1"}}
	for i := range backlog {
		w.SetBulk(Key{Cluster: "main", Namespace: "ns", Name: fmt.Sprintf("b%d", i)}, accepted)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	time.Sleep(300 * time.Millisecond) // the bulk worker is busy
	w.Set(Key{Cluster: "main", Namespace: "ns", Name: "change"}, accepted)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		at := -1
		for i, n := range order {
			if n == "change" {
				at = i
			}
		}
		mu.Unlock()
		if at >= 0 {
			// ~30 bulk writes fit in the first 300 ms at bulkRate; the change comes right after.
			if at > bulkRate/2 {
				t.Fatalf("the change was write number %d, behind the bulk backlog", at+1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the change was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second)
	mu.Lock()
	n := len(order)
	mu.Unlock()
	// ~1.3 s at bulkRate: well under the whole backlog.
	if n > 2*bulkRate {
		t.Fatalf("%d writes after 1.3 s: the bulk queue is not rate-limited (bulkRate %d/s)", n, bulkRate)
	}
}

// TestBulkNoOpsDrainAtOnce: a whole-table pass over Ingresses whose status is already right (a
// restart over an unchanged table) writes nothing and is not paced: the bulk queue is empty in a
// fraction of the time bulkRate would take, and the Ingress that does need a write gets it.
func TestBulkNoOpsDrainAtOnce(t *testing.T) {
	const n = 5 * bulkRate // five seconds' worth at bulkRate
	addr := "192.0.2.1"
	client := fake.NewClientset(&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "stale"}})
	var mu sync.Mutex
	var patched []string
	client.PrependReactor("patch", "ingresses", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		patched = append(patched, a.(k8stesting.PatchAction).GetName())
		mu.Unlock()
		return false, nil, nil
	})
	w := New(slog.New(slog.DiscardHandler), map[string]Target{"main": {
		Client: client,
		Ingress: func(ns, name string) *networkingv1.Ingress {
			ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
			if name != "stale" {
				ing.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: addr}}
			}
			return ing
		},
	}})
	accepted := Desired{Accepted: true, Addresses: []string{addr}}
	for i := range n {
		w.SetBulk(Key{Cluster: "main", Namespace: "ns", Name: fmt.Sprintf("ok%d", i)}, accepted)
	}
	w.SetBulk(Key{Cluster: "main", Namespace: "ns", Name: "stale"}, accepted)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(2 * time.Second) // bulkRate pacing every item would take 5 s
	for w.bulk.Len() > 0 || len(snapshot(&mu, &patched)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 2 s: %d of %d bulk items still queued, patches %v", w.bulk.Len(), n+1, snapshot(&mu, &patched))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := snapshot(&mu, &patched); len(got) != 1 || got[0] != "stale" {
		t.Fatalf("patched %v, want only the stale Ingress", got)
	}
}

func snapshot(mu *sync.Mutex, s *[]string) []string {
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), *s...)
}
