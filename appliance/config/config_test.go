package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const minimal = `
node: {name: edge-1}
clusters:
  - name: main
    kubeconfig: /etc/edgegate/main.kubeconfig
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listeners", len(c.Listeners), 2},
		{"https min tls", c.Listeners[1].TLS.MinVersion, "1.2"},
		{"endpoint mode", c.Clusters[0].EndpointMode, EndpointsPod},
		{"controller", c.Ingress.Controller, DefaultController},
		{"holdoff", c.Ingress.Holdoff.Duration, DefaultHoldoff},
		{"max delay", c.Ingress.MaxDelay.Duration, DefaultMaxDelay},
		{"xds", c.XDS.Address, DefaultXDSAddress},
		{"envoy mode", c.Envoy.Mode, EnvoyExternal},
		{"envoy admin", c.Envoy.AdminAddress, DefaultEnvoyAdmin},
		{"drain", c.Envoy.DrainTime.Duration, 30 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// want lists substrings that must all appear, one problem each.
		want []string
	}{
		{"unknown key", minimal + "bogus: 1\n", []string{`unknown field "bogus"`}},
		{"unknown nested key", minimal + "xds: {adress: 127.0.0.1:1}\n", []string{`unknown field "adress"`}},
		{"empty", "", []string{"config is empty"}},
		{"every problem at once", `
node: {name: Edge_1}
listeners:
  - {name: http, address: 1.2.3, port: 0, protocol: TCP}
  - {name: http, address: 127.0.0.1, port: 19000, protocol: HTTP, tls: {minVersion: "1.3"}}
clusters:
  - {name: main, kubeconfig: "", endpointMode: hostNetwork}
ingress: {controller: "no slash", statusAddresses: [not-an-ip], holdoff: 2s, maxDelay: 1s}
xds: {address: "0.0.0.0:18000"}
envoy: {mode: supervise, adminAddress: "10.0.0.1:19000"}
`, []string{
			`node.name: "Edge_1": must be a DNS label`,
			`listeners[0].address: "1.2.3": must be an IP address`,
			`listeners[0].port: 0: must be between 1 and 65535`,
			`listeners[0].protocol: "TCP": must be HTTP or HTTPS`,
			`listeners[1].name: "http": duplicate listener name`,
			`listeners[1].tls: set: only HTTPS listeners take TLS settings`,
			`listeners[1].port: 19000: clashes with envoy.adminAddress`,
			`clusters[0].kubeconfig: "": required`,
			`clusters[0].endpointMode: "hostNetwork": must be pod or nodePort`,
			`ingress.controller: "no slash": must be a domain-prefixed path`,
			`ingress.statusAddresses[0]: "not-an-ip": must be an IP address`,
			`ingress.holdoff: 2s: must not exceed ingress.maxDelay (1s)`,
			`xds.address: "0.0.0.0:18000": must be on a loopback address`,
			`envoy.binary: "": required when envoy.mode is supervise`,
			`envoy.adminAddress: "10.0.0.1:19000": must be on a loopback address`,
		}},
		{"no clusters", "node: {name: a}\n", []string{"clusters: 0: need between 1 and 64 remote clusters"}},
		{"bad duration", minimal + "ingress: {holdoff: 10}\n", []string{"duration must be a string"}},
		{"memory limit not a quantity", minimal + "memoryLimit: lots\n", []string{`memoryLimit: "lots": must be a quantity like 1536Mi`}},
		{"memory limit too small", minimal + "memoryLimit: 1Mi\n", []string{`memoryLimit: "1Mi": must be at least 64Mi`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q; got:\n%s", w, msg)
				}
			}
			if lines := strings.Count(msg, "\n") + 1; len(tc.want) > 1 && lines != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%s", lines, len(tc.want), msg)
			}
			if len(tc.want) > 1 && !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
		})
	}
}
