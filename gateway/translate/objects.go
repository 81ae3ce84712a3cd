package translate

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Objects gives read-only access to the objects of one remote cluster that translation needs.
// Implementations must be safe for concurrent reads; translate never mutates what they return.
type Objects interface {
	// Service returns the Service namespace/name, or nil.
	Service(namespace, name string) *corev1.Service
	// EndpointSlices returns the EndpointSlices labelled for the Service namespace/name.
	EndpointSlices(namespace, service string) []*discoveryv1.EndpointSlice
	// TLSSecret returns the kubernetes.io/tls Secret namespace/name, or nil.
	TLSSecret(namespace, name string) *corev1.Secret
	// ReadyNodeAddresses returns the InternalIP addresses of the cluster's Ready nodes (nodePort mode).
	ReadyNodeAddresses() []string
}

// EndpointMode says how a remote cluster's Services are reached.
type EndpointMode string

const (
	// EndpointsPod sends traffic straight to the pod addresses in EndpointSlices.
	EndpointsPod EndpointMode = "pod"
	// EndpointsNodePort sends traffic to every Ready node's InternalIP on the Service's nodePort.
	EndpointsNodePort EndpointMode = "nodePort"
)
