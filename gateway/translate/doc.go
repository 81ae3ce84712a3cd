// Package translate turns Kubernetes objects into the gateway model. It is pure: functions take
// objects (through the read-only Objects interface) and return new model values; nothing here talks
// to an apiserver, to Envoy, or keeps state between calls.
//
// Translation is per host so the pipeline can re-translate only the hosts an event touched: the
// pipeline keeps the index host → Ingresses and calls Host for each dirty host, and Cluster for each
// dirty Service port. Ingress semantics follow networking.k8s.io/v1:
//   - hosts are exact names or "*." wildcards matching exactly one DNS label; a rule with no host
//     matches every host (it lands on the catch-all host "*");
//   - pathType Exact, Prefix (element-wise: "/foo" matches "/foo/bar", never "/foobar") and
//     ImplementationSpecific (treated as Prefix);
//   - the longest matching path wins, and Exact beats Prefix at equal length;
//   - defaultBackend serves what no rule of its Ingress matches, on that Ingress' hosts (or every
//     host when the Ingress has no rules);
//   - backend Service ports by name or number; only ready endpoints.
//
// An Ingress that cannot be translated as a whole (missing Service or port, bad TLS Secret, invalid
// host or path) is rejected alone: Host skips it and reports a model.Rejection naming the field.
package translate
