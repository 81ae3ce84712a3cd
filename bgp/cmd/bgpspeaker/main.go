// Command bgpspeaker runs edgegate's BGP component from a YAML file, for integration tests and
// benchmarks in network namespaces. It is a test tool, not the appliance.
//
//	bgpspeaker run -config node.yaml [-http 198.19.0.10:80,...] [-linger 1s]
//	    stdin commands, one per line, each answered with one JSON line on stdout:
//	    fit | unfit | drain | reload | status | exit
//	    (exit: Run returns without a drain and the process exits, as on a crash or an undrained restart)
//	    SIGTERM/SIGINT: drain (RFC 8326), keep serving HTTP for -linger, exit.
//	bgpspeaker serve -name n1 -http 198.19.0.10:80,...
//	    serves HTTP only (the node's service as a process of its own), until killed
//	bgpspeaker load -url http://VIP/ -n 2000 -c 8 -max 30s
//	    bounded client loop (a new connection per request); prints {"ok":..,"failed":..,"backends":{..}}
//	bgpspeaker longlived -addr VIP:80 -conns 40
//	    opens long-lived connections, prints their backends, waits for a stdin line, reuses each once
//	    and prints which broke.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bgpspeaker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: bgpspeaker run|serve|load|longlived [flags]")
	}
	switch args[0] {
	case "run":
		return runSpeaker(args[1:])
	case "serve":
		return runServe(args[1:])
	case "load":
		return runLoad(args[1:])
	case "longlived":
		return runLongLived(args[1:])
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}
