package attack

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgegate/edgegate/test/harness"
)

// TestSnippetAnnotations: configuration-snippet-like annotations (ingress-nginx's, HAProxy's, in
// any letter case) reject the whole Ingress (AnnotationNotAllowed); their text never reaches
// Envoy, and the victim is served throughout.
func TestSnippetAnnotations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	victim, attacker := e.tenant("victim"), e.tenant("attacker")
	victim.service("victim")
	vhost := victim.own("www")
	victim.ingress("site", route(vhost, "/", "victim"))
	g := e.guard(vhost, "/", "victim")
	attacker.service("attacker")

	marker := "INJECTED-" + harness.RandomSuffix()
	payload := "location / { proxy_pass http://169.254.169.254/; } # " + marker + "\n}\nserver { listen 9901; }"
	cases := map[string]string{
		"cfg":     "nginx.ingress.kubernetes.io/configuration-snippet",
		"server":  "nginx.ingress.kubernetes.io/server-snippet",
		"auth":    "nginx.ingress.kubernetes.io/auth-snippet",
		"haproxy": "haproxy.org/backend-config-snippet",
		"mixed":   "example.com/Server-Snippet",
	}
	for name, key := range cases {
		ing := harness.Ingress(attacker.ns, name, className, route(attacker.own(name), "/", "attacker"))
		ing.Annotations = map[string]string{key: payload}
		attacker.create(ing)
	}
	for name := range cases {
		attacker.waitReason(name, "AnnotationNotAllowed")
	}
	g.end()
	for name := range cases {
		e.expectStatus(attacker.own(name), "/", 404)
	}
	e.notInEnvoy(attacker.ns, marker)
}

// TestOversizeAnnotations: 200 KiB annotation values full of configuration syntax, on an
// annotation edgegate does not know and on the legacy class annotation: nothing breaks. Envoy
// accepts every update (no NACK), edgegate stays ready, the victim is served throughout, the
// value never reaches Envoy, the otherwise valid Ingress is still served, and the Ingress whose
// class annotation is a 200 KiB string is not ours.
func TestOversizeAnnotations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	victim, attacker := e.tenant("victim"), e.tenant("attacker")
	victim.service("victim")
	vhost := victim.own("www")
	victim.ingress("site", route(vhost, "/", "victim"))
	g := e.guard(vhost, "/", "victim")
	attacker.service("attacker")
	nacks := e.nacks()

	marker := "OVERSIZE-" + harness.RandomSuffix()
	chunk := `"}]}, {"name":"x","typed_config":{}} end; os.execute("id") ` + "\r\n\t{{.}} ${HOME} %s %n \u202e" + marker
	big := strings.Repeat(chunk, 200<<10/len(chunk)+1)[:200<<10]

	huge := harness.Ingress(attacker.ns, "huge", className, route(attacker.own("huge"), "/", "attacker"))
	huge.Annotations = map[string]string{"edgegate.io/anything": big}
	attacker.create(huge)

	class := harness.Ingress(attacker.ns, "huge-class", "", route(attacker.own("huge-class"), "/", "attacker"))
	class.Annotations = map[string]string{"kubernetes.io/ingress.class": big}
	attacker.create(class)

	// The unknown annotation is ignored: the Ingress is an ordinary one.
	e.waitServed(attacker.own("huge"), "/", "attacker")
	g.end()

	e.expectStatus(attacker.own("huge-class"), "/", 404)
	ing, err := e.kube.NetworkingV1().Ingresses(attacker.ns).Get(e.ctx, "huge-class", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ing.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("Ingress with a 200 KiB class annotation got a status from edgegate: %v", ing.Status.LoadBalancer.Ingress)
	}
	if n := e.nacks(); n != nacks {
		st, _ := e.status()
		t.Errorf("Envoy rejected %d updates during the attack (last: %s)", n-nacks, st.XDS.LastRejection)
	}
	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready {
		t.Error("edgegate is not ready after the oversize annotations")
	}
	e.notInEnvoy(marker)
	e.expectServed(vhost, "/", "victim")
}
