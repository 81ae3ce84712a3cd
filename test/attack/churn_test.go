package attack

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/edgegate/edgegate/test/harness"
)

// TestChurnDoesNotStarveOtherTenants: a tenant floods the edge with new Services and Ingresses
// (churnServices of them at once) while a victim publishes its own: Envoy must accept every
// update (no NACK in /status) and the victim's new host must be served. A fresh edgegate, so the
// burst meets Envoy's first endpoint subscriptions as it does after every start.
func TestChurnDoesNotStarveOtherTenants(t *testing.T) {
	t.Parallel()
	e, _ := privateEnv(t, "attack-churn")
	victim, attacker := e.tenant("victim"), e.tenant("attacker")

	const churnServices = 30
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := w; i < churnServices; i += 3 {
				name := fmt.Sprintf("flood-%d", i)
				b, err := e.net.StartBackend(name, mustAddr(t, e))
				if err != nil {
					t.Error(err)
					return
				}
				t.Cleanup(b.Stop)
				for _, err := range []error{
					attacker.tryCreate(harness.Service(attacker.ns, name, harness.ServicePort("http", 80, b.Port()))),
					attacker.tryCreate(harness.EndpointSlice(attacker.ns, name, name+"-1",
						harness.Ports(harness.EndpointPort("http", b.Port())), harness.Endpoint(b.IP(), true))),
					attacker.tryCreate(harness.Ingress(attacker.ns, name, e.class, route(attacker.own(name), "/", name))),
				} {
					if err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	victim.service("victim")
	vhost := victim.own("www")
	victim.ingress("site", route(vhost, "/", "victim"))
	wg.Wait()

	e.waitServed(vhost, "/", "victim")
	for i := range churnServices {
		name := fmt.Sprintf("flood-%d", i)
		e.waitServed(attacker.own(name), "/", name)
	}
	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	for typ, n := range st.XDS.Rejected {
		if n > 0 {
			t.Errorf("Envoy rejected %d %s updates (last: %s)", n, typ, st.XDS.LastRejection)
		}
	}
}

func mustAddr(t *testing.T, e *env) netip.AddrPort {
	a, err := e.net.NewAddr()
	if err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(a, harness.DefaultBackendPort)
}
