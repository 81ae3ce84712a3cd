package attack

import (
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/edgegate/edgegate/test/harness"
)

// TestOwnershipSurvivesRestart: ownership is derived from the objects, not from edgegate's
// memory. With the attacker's competing Ingress still present (in a namespace and under a name
// that sort before the victim's, so only the creation time can decide), edgegate is restarted,
// and the victim updates its Ingress while edgegate is down: the new edgegate still gives the
// host to the victim and rejects the attacker. Its own edgegate (and IngressClass), so the
// shared one keeps serving the other tests.
func TestOwnershipSurvivesRestart(t *testing.T) {
	t.Parallel()
	e, eg := privateEnv(t, "attack-restart")

	suffix := harness.RandomSuffix()
	victim, attacker := e.tenantNamed("z-victim-"+suffix, nil), e.tenantNamed("a-attacker-"+suffix, nil)
	victim.service("victim")
	evil := attacker.service("attacker")
	host := "shop." + suffix + "." + freeSuffix
	victim.ingress("z-site", route(host, "/", "victim"))
	e.waitServed(host, "/", "victim")
	time.Sleep(claimGap)
	attacker.ingress("a-steal", route(host, "/", "attacker"))
	attacker.waitReason("a-steal", "HostOwnedByAnotherTenant")
	e.expectServed(host, "/", "victim")

	if err := eg.Stop(); err != nil {
		t.Fatal(err)
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ing, err := e.kube.NetworkingV1().Ingresses(victim.ns).Get(e.ctx, "z-site", metav1.GetOptions{})
		if err != nil {
			return err
		}
		ing.Spec.Rules[0].HTTP.Paths = append(ing.Spec.Rules[0].HTTP.Paths,
			harness.IngressPath(networkingv1.PathTypeExact, "/while-down", "victim", 80))
		_, err = e.kube.NetworkingV1().Ingresses(victim.ns).Update(e.ctx, ing, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eg.StartAndWait(); err != nil {
		t.Fatal(err)
	}

	// The first configuration the new edgegate publishes already has the victim as the owner.
	e.expectServed(host, "/", "victim")
	e.waitServed(host, "/while-down", "victim")
	attacker.waitReason("a-steal", "HostOwnedByAnotherTenant")
	res := e.client.Load(host, "/", "victim", 40, guardInterval, guardTime, nil)
	if res.Failures != 0 {
		t.Errorf("after the restart %d of %d requests missed the victim: %v", res.Failures, res.Sent, res.Errors)
	}
	e.untouched(evil)
}
