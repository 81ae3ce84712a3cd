package attack

import (
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestRouteQuota: the quota tenant (tenancy.tenants.<name>.quota.maxRoutes = 2) creates three
// one-route Ingresses a second apart, named so that name order is the reverse of age: only the
// newest is rejected (QuotaExceeded), the older ones keep serving, another tenant is served
// throughout, and deleting an old one admits the newest.
func TestRouteQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	victim := e.tenant("victim")
	victim.service("victim")
	vhost := victim.own("www")
	victim.ingress("site", route(vhost, "/", "victim"))
	g := e.guard(vhost, "/", "victim")

	q := e.tenantNamed(named.quota, nil)
	q.service("q")
	names := []string{"q-c", "q-b", "q-a"} // oldest first; name order says the opposite
	for i, name := range names {
		if i > 0 {
			time.Sleep(claimGap)
		}
		q.ingress(name, route(q.own(name), "/", "q"))
	}
	q.waitReason("q-a", "QuotaExceeded")
	e.waitServed(q.own("q-c"), "/", "q")
	e.waitServed(q.own("q-b"), "/", "q")
	e.expectStatus(q.own("q-a"), "/", http.StatusNotFound)
	q.notRejected("Ingress", "q-b")
	q.notRejected("Ingress", "q-c")
	g.end()

	if err := e.kube.NetworkingV1().Ingresses(q.ns).Delete(e.ctx, "q-c", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitServed(q.own("q-a"), "/", "q")
	e.expectServed(q.own("q-b"), "/", "q")
}

// TestHostRateLimit: the rated tenant's host (rateRPS requests a second, burst rateBurst) under a
// bounded burst answers 429 once its bucket is empty, whatever the Host's case, trailing dot or
// port; another tenant's host, requested in between, is never limited.
func TestHostRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	victim := e.tenant("victim")
	victim.service("victim")
	vhost := victim.own("www")
	victim.ingress("site", route(vhost, "/", "victim"))
	e.waitServed(vhost, "/", "victim")

	r := e.tenantNamed(named.rated, nil)
	r.service("rated")
	rhost := r.own("busy")
	r.ingress("busy", route(rhost, "/", "rated"))
	e.waitServed(rhost, "/", "rated")

	const burst = 40
	variants := []string{rhost, strings.ToUpper(rhost), rhost + ".", rhost + ":80"}
	ok, limited, victimOK := 0, 0, 0
	began := time.Now()
	for i := range burst {
		resp, err := e.client.Get(variants[i%len(variants)], "/")
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case resp.Status == http.StatusOK && resp.Backend() == "rated":
			ok++
		case resp.Status == http.StatusTooManyRequests && resp.Echo == nil:
			limited++
		default:
			t.Errorf("rated host: unexpected answer %s", resp)
		}
		if err := e.client.CheckBackend(vhost, "/", "victim"); err != nil {
			t.Errorf("other tenant's host during the burst: %v", err)
		} else {
			victimOK++
		}
	}
	took := time.Since(began)
	t.Logf("burst of %d to the rated host in %s: %d served, %d answered 429; other tenant: %d/%d served",
		burst, took.Round(time.Millisecond), ok, limited, victimOK, burst)
	// The bucket allows at most rateBurst plus rateRPS per elapsed second (plus one refill in
	// progress); everything else must be 429.
	if allowed := rateBurst + rateRPS*(int(took.Seconds())+1); ok > allowed {
		t.Errorf("rated host served %d of %d requests in %s, the limit allows at most %d", ok, burst, took, allowed)
	}
	if limited == 0 {
		t.Error("no request to the rated host was answered 429")
	}
}
