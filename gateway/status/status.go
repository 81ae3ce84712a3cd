// Package status writes what the gateway decided back to the remote clusters: the addresses an
// accepted Ingress is served on (status.loadBalancer.ingress) and a Warning Event on every object
// that was rejected, naming the rule and the field.
//
// Writes happen on their own goroutines through a rate-limited work queue, so a slow or unreachable
// apiserver never delays configuration reaching Envoy; the queue keeps only the newest desired
// state per object and retries failed writes with backoff.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/edgegate/edgegate/gateway/model"
)

// Key identifies an object in a remote cluster: an Ingress (Kind empty or "Ingress"), or another
// kind that only ever gets Events (e.g. a Service whose endpoints were refused).
type Key struct{ Cluster, Kind, Namespace, Name string }

func (k Key) String() string { return k.Cluster + "/" + k.Namespace + "/" + k.Name }

func (k Key) isIngress() bool { return k.Kind == "" || k.Kind == "Ingress" }

// Desired is what the status of one Ingress should say.
type Desired struct {
	// Accepted Ingresses get Addresses as their load-balancer status.
	Accepted  bool
	Addresses []string
	// Rejection, when set, is announced with a Warning Event (once per distinct message).
	Rejection *model.Rejection
}

// Target is one remote cluster the writer talks to.
type Target struct {
	Client kubernetes.Interface
	// Ingress reads the cached Ingress (the informer's copy; never modified).
	Ingress func(namespace, name string) *networkingv1.Ingress
	// Service reads the cached Service, for Events about it.
	Service func(namespace, name string) *corev1.Service
}

// Writer applies desired statuses. Set and Forget are safe for concurrent use; Run does the writes.
type Writer struct {
	log     *slog.Logger
	targets map[string]Target
	queue   workqueue.TypedRateLimitingInterface[Key] // changes
	bulk    workqueue.TypedRateLimitingInterface[Key] // whole-table passes, drained at bulkRate

	mu        sync.Mutex
	desired   map[Key]Desired
	announced map[Key]string // last rejection message sent as an Event
	recorders map[string]record.EventRecorder
}

// New returns a writer for the given clusters. It starts nothing.
func New(log *slog.Logger, targets map[string]Target) *Writer {
	return &Writer{
		log:       log,
		targets:   targets,
		queue:     workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[Key]()),
		bulk:      workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[Key]()),
		desired:   map[Key]Desired{},
		announced: map[Key]string{},
		recorders: map[string]record.EventRecorder{},
	}
}

// Set records the desired status of an Ingress and queues a write if it changed.
func (w *Writer) Set(k Key, d Desired) { w.set(k, d, w.queue) }

// SetBulk is Set for a pass over the whole table (the first configuration, the consistency pass).
// Those writes drain from a queue of their own at bulkRate: on a first start over 200k Ingresses
// the backlog of status patches neither delays the status of new changes nor takes the CPU of
// the apiserver (and of this process, which sees each patch come back as an update) from them.
func (w *Writer) SetBulk(k Key, d Desired) { w.set(k, d, w.bulk) }

func (w *Writer) set(k Key, d Desired, q workqueue.TypedRateLimitingInterface[Key]) {
	w.mu.Lock()
	old, had := w.desired[k]
	w.desired[k] = d
	w.mu.Unlock()
	if had && equal(old, d) {
		return
	}
	q.Add(k)
}

// bulkRate bounds the writes of whole-table passes (per second; a restart over an unchanged table
// writes none, the statuses are already right). At 200k Ingresses a first start takes ~33 min to
// write them all.
const bulkRate = 100

// Forget drops an Ingress that is gone or no longer ours.
func (w *Writer) Forget(k Key) {
	w.mu.Lock()
	delete(w.desired, k)
	delete(w.announced, k)
	w.mu.Unlock()
}

func equal(a, b Desired) bool {
	if a.Accepted != b.Accepted || !slices.Equal(a.Addresses, b.Addresses) {
		return false
	}
	if (a.Rejection == nil) != (b.Rejection == nil) {
		return false
	}
	return a.Rejection == nil || *a.Rejection == *b.Rejection
}

// workers for changes: status writes are small and independent; two keep a burst moving without
// hammering the apiserver (client-go's own QPS limit applies on top). One more drains the bulk queue.
const workers = 2

// Run starts event recording and the write workers; it returns when ctx is done.
func (w *Writer) Run(ctx context.Context) error {
	for name, t := range w.targets {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: t.Client.CoreV1().Events("")})
		defer b.Shutdown()
		w.mu.Lock()
		w.recorders[name] = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "edgegate"})
		w.mu.Unlock()
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for w.next(ctx, w.queue, nil) {
			}
		})
	}
	limit := rate.NewLimiter(bulkRate, 1)
	wg.Go(func() {
		for w.next(ctx, w.bulk, limit) {
		}
	})
	<-ctx.Done()
	w.queue.ShutDown()
	w.bulk.ShutDown()
	wg.Wait()
	return nil
}

func (w *Writer) next(ctx context.Context, q workqueue.TypedRateLimitingInterface[Key], limit *rate.Limiter) bool {
	k, quit := q.Get()
	if quit {
		return false
	}
	defer q.Done(k)
	if err := w.write(ctx, k, limit); err != nil {
		if ctx.Err() != nil {
			return false
		}
		w.log.Warn("status write failed; retrying", "ingress", k.String(), "error", err)
		q.AddRateLimited(k)
		return true
	}
	q.Forget(k)
	return true
}

// write brings one object's status and Events in line with its desired state. limit, if set,
// paces the status patches only: an object whose status is already right (every Ingress after a
// restart over an unchanged table) costs no wait, so a whole-table pass that changes nothing drains
// at once instead of at bulkRate (200k Ingresses: 33 minutes with the queue's keys held).
func (w *Writer) write(ctx context.Context, k Key, limit *rate.Limiter) error {
	w.mu.Lock()
	d, ok := w.desired[k]
	rec := w.recorders[k.Cluster]
	announced := w.announced[k]
	w.mu.Unlock()
	t, known := w.targets[k.Cluster]
	if !ok || !known {
		return nil
	}
	if !k.isIngress() {
		if d.Rejection != nil && d.Rejection.Message != announced && rec != nil && t.Service != nil {
			if svc := t.Service(k.Namespace, k.Name); svc != nil {
				rec.Event(svc, corev1.EventTypeWarning, d.Rejection.Reason, d.Rejection.Message)
				w.mu.Lock()
				w.announced[k] = d.Rejection.Message
				w.mu.Unlock()
			}
		}
		return nil
	}
	ing := t.Ingress(k.Namespace, k.Name)
	if ing == nil {
		return nil // deleted meanwhile
	}
	if d.Rejection != nil && d.Rejection.Message != announced && rec != nil {
		rec.Event(ing, corev1.EventTypeWarning, d.Rejection.Reason, d.Rejection.Message)
		w.mu.Lock()
		w.announced[k] = d.Rejection.Message
		w.mu.Unlock()
	}
	if d.Rejection == nil {
		w.mu.Lock()
		delete(w.announced, k)
		w.mu.Unlock()
	}
	want := []networkingv1.IngressLoadBalancerIngress{}
	if d.Accepted {
		for _, a := range d.Addresses {
			want = append(want, networkingv1.IngressLoadBalancerIngress{IP: a})
		}
	}
	if slices.EqualFunc(ing.Status.LoadBalancer.Ingress, want, func(a, b networkingv1.IngressLoadBalancerIngress) bool {
		return a.IP == b.IP && a.Hostname == b.Hostname
	}) || (!d.Accepted && len(ing.Status.LoadBalancer.Ingress) == 0) {
		return nil
	}
	// A merge patch of the status subresource: the cached copy is stripped (labels, most
	// annotations, managedFields), so writing it back whole would erase the user's metadata.
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"loadBalancer": map[string]any{"ingress": want}}})
	if err != nil {
		return err
	}
	if limit != nil {
		if err := limit.Wait(ctx); err != nil {
			return err
		}
	}
	if _, err := t.Client.NetworkingV1().Ingresses(k.Namespace).Patch(ctx, k.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("patch status: %w", err)
	}
	return nil
}
