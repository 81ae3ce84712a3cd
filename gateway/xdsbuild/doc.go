// Package xdsbuild turns the gateway model into Envoy resources. It is pure: each function maps a
// model value to a new proto message and shares nothing between calls.
//
// Layout (see gateway/README.md for the reasons):
//   - Listeners come only from the appliance configuration. Every HTTP connection manager uses
//     Scoped RDS: the scope key is the x-edgegate-host header, which a small Lua filter sets to the
//     normalised request host (lower case, no port, no trailing dot) before routing, falling back to
//     the "*.<parent>" wildcard scope and then to the catch-all scope "*" when no scope for the exact
//     host has a route. Each virtual host is one ScopedRouteConfiguration with its routes inline, so a
//     change to one host sends one small resource and Envoy rebuilds one small route table.
//   - One Cluster per Service port (EDS), so endpoints change without touching clusters or routes.
//     Envoy discovers clusters on demand (the on_demand filter), so it holds only those in use.
//   - TLS certificates are SDS Secrets named by host, fetched on demand by the client's SNI.
package xdsbuild
