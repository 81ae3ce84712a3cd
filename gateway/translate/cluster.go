package translate

import (
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/edgegate/edgegate/gateway/model"
)

// Cluster returns the upstream cluster for a Service port with its ready endpoints. A Service that
// has gone, or has no such port any more, gives a cluster with no endpoints (Envoy answers 503)
// until the routes pointing at it are re-translated.
//
// In pod mode every endpoint address must pass allow (the admin's deny-list: loopback, link-local,
// the node itself, control-plane ranges); the addresses it refuses are dropped and returned, so a
// tenant's EndpointSlice can never point the edge at something that is not a tenant workload.
// nodePort addresses come from Node objects, which only the platform writes.
func Cluster(ref ClusterRef, mode EndpointMode, objs Objects, allow func(netip.Addr) bool) (c model.Cluster, denied []string) {
	c = model.Cluster{Name: ref.Name}
	svc := objs.Service(ref.Namespace, ref.Service)
	if svc == nil {
		return c, nil
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == ref.Port {
			port = &svc.Spec.Ports[i]
		}
	}
	if port == nil {
		return c, nil
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		// Allowed by the admin when the route was parsed; Envoy resolves the name itself.
		c.ExternalName = &model.ExternalName{Host: strings.TrimSuffix(strings.ToLower(svc.Spec.ExternalName), "."), Port: uint32(port.Port)}
		return c, nil
	}
	seen := map[model.Endpoint]bool{}
	add := func(addr string, p int32) {
		ip, err := netip.ParseAddr(addr)
		if err != nil || p <= 0 || p > 65535 {
			return
		}
		e := model.Endpoint{Address: ip.String(), Port: uint32(p)}
		if !seen[e] {
			seen[e] = true
			c.Endpoints = append(c.Endpoints, e)
		}
	}
	switch mode {
	case EndpointsNodePort:
		if port.NodePort != 0 {
			for _, a := range objs.ReadyNodeAddresses() {
				add(a, port.NodePort)
			}
		}
	default:
		for _, slice := range objs.EndpointSlices(ref.Namespace, ref.Service) {
			if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
				continue // FQDN slices are not supported
			}
			target := int32(0)
			for _, sp := range slice.Ports {
				name := ""
				if sp.Name != nil {
					name = *sp.Name
				}
				proto := corev1.ProtocolTCP
				if sp.Protocol != nil {
					proto = *sp.Protocol
				}
				if name == port.Name && proto == corev1.ProtocolTCP && sp.Port != nil {
					target = *sp.Port
				}
			}
			if target == 0 {
				continue
			}
			for _, ep := range slice.Endpoints {
				// Ready unset means ready (discovery.k8s.io/v1 semantics); serving-but-terminating
				// endpoints are not used: they are going away.
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				if len(ep.Addresses) == 0 {
					continue
				}
				if ip, err := netip.ParseAddr(ep.Addresses[0]); err == nil && allow != nil && !allow(ip) {
					denied = append(denied, ep.Addresses[0])
					continue
				}
				add(ep.Addresses[0], target)
			}
		}
	}
	sort.Slice(c.Endpoints, func(i, j int) bool {
		a, b := c.Endpoints[i], c.Endpoints[j]
		if a.Address != b.Address {
			return a.Address < b.Address
		}
		return a.Port < b.Port
	})
	sort.Strings(denied)
	return c, denied
}
