package xdsserver

import (
	"strings"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

// wildcardSecret serves a host name that has no certificate of its own from the certificate of the
// wildcard covering it ("a.example.com" from "*.example.com"): Envoy's on-demand certificate
// selector asks for the client's SNI itself. The Secret is re-made under the requested name,
// because Envoy rejects an SDS secret whose name differs from the one it asked for. With a nil
// resources map it only names the target.
func wildcardSecret(name string, resources map[string]entry) (string, entry, bool) {
	dot := strings.IndexByte(name, '.')
	if dot <= 0 || strings.HasPrefix(name, "*.") || strings.Contains(name, "/") {
		return "", entry{}, false
	}
	target := "*" + name[dot:]
	e, ok := resources[target]
	if !ok {
		return target, entry{}, false
	}
	var sec tlsv3.Secret
	if err := proto.Unmarshal(e.value, &sec); err != nil {
		return target, entry{}, false
	}
	sec.Name = name
	m, err := marshal(&sec)
	if err != nil {
		return target, entry{}, false
	}
	return target, m, true
}
