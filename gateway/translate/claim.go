package translate

import (
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/edgegate/edgegate/gateway/model"
)

// ReasonAnnotationNotAllowed rejects configuration-injection annotations.
const ReasonAnnotationNotAllowed = "AnnotationNotAllowed"

// Claim is what an Ingress asks for, before any backend is resolved: the hostnames it wants to
// route, how many routes, which certificates. Host ownership and quotas are decided on claims,
// so they do not depend on whether the Ingress' Services exist yet.
type Claim struct {
	// Hosts are the normalised hostnames the Ingress routes, sorted and unique; model.CatchAllHost
	// for rules without a host and for the defaultBackend of an Ingress without rules.
	Hosts []string
	// Routes counts paths, plus one for a defaultBackend.
	Routes int
	// Secrets are the TLS Secret names it references, sorted and unique.
	Secrets []string
}

// ClaimOf validates what an Ingress asks for without looking anything up: hostnames, and that no
// configuration-snippet annotation is present (edgegate never passes configuration text through).
func ClaimOf(ref model.ObjectRef, ing *networkingv1.Ingress) (Claim, *model.Rejection) {
	reject := func(reason, format string, args ...any) (Claim, *model.Rejection) {
		return Claim{}, &model.Rejection{Object: ref, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	for k := range ing.Annotations {
		if strings.Contains(strings.ToLower(k), "snippet") {
			return reject(ReasonAnnotationNotAllowed, "annotation %q: configuration snippets are never accepted", k)
		}
	}
	hosts := map[string]bool{}
	var c Claim
	for i, rule := range ing.Spec.Rules {
		host := model.CatchAllHost
		if rule.Host != "" {
			h, err := NormalizeHost(rule.Host)
			if err != nil {
				return reject(ReasonInvalidHost, "spec.rules[%d].host %q: %v", i, rule.Host, err)
			}
			host = h
		}
		if rule.HTTP != nil && len(rule.HTTP.Paths) > 0 {
			hosts[host] = true
			c.Routes += len(rule.HTTP.Paths)
		}
	}
	if ing.Spec.DefaultBackend != nil {
		c.Routes++
		if len(ing.Spec.Rules) == 0 {
			hosts[model.CatchAllHost] = true
		}
	}
	secrets := map[string]bool{}
	for i, t := range ing.Spec.TLS {
		for k, h := range t.Hosts {
			if _, err := NormalizeHost(h); err != nil {
				return reject(ReasonInvalidHost, "spec.tls[%d].hosts[%d] %q: %v", i, k, h, err)
			}
		}
		if t.SecretName != "" {
			secrets[t.SecretName] = true
		}
	}
	c.Hosts, c.Secrets = sortedKeys(hosts), sortedKeys(secrets)
	return c, nil
}
