package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/bgp/internal/lab"
)

func birdConf(nodes int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `log "@DIR@/bird.log" all;
router id 198.18.1.1;
protocol device { scan time 10; }
# ECMP into the kernel needs merge paths.
protocol kernel { ipv4 { export all; import none; }; merge paths on; }
protocol kernel { ipv6 { export all; import none; }; merge paths on; }
# Honour RFC 8326 GRACEFUL_SHUTDOWN.
filter edge_in { if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; }
template bgp edge {
  local 198.18.1.1 as %d;
  hold time 3; keepalive time 1; connect retry time 1;
  error wait time 1, 5;
  ipv4 { import filter edge_in; export none; };
  ipv6 { import filter edge_in; export none; };
}
`, routerASN)
	for i := 1; i <= nodes; i++ {
		fmt.Fprintf(&b, "protocol bgp n%d from edge { neighbor %s as %d; }\n", i, nodeV4(i), nodeASN)
	}
	return b.String()
}

func TestBIRD(t *testing.T) {
	lab.Skip(t, "bird", "birdc")
	t.Parallel()
	tp := newTopo(t, 2)
	bird := tp.L.StartBIRD(tp.R, birdConf(2))
	for i := 1; i <= 2; i++ {
		tp.startNode(i, nodeOpts{fit: true})
	}
	if _, err := waitKernel(tp.R, vip4, addrs(nodeV4, 1, 2), 30*time.Second); err != nil {
		out, _ := bird.Cmd("show protocols")
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := waitKernel(tp.R, vip6, addrs(nodeV6, 1, 2), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	out, err := bird.Cmd("show protocols")
	if err != nil {
		t.Fatal(err)
	}
	if st := lab.ParseBIRDProtocols(out); st["n1"] != "Established" || st["n2"] != "Established" {
		t.Errorf("bird protocols %v, want n1 and n2 established", st)
	}
	r := load(t, tp.C, "http://198.19.0.10/", 200, 4, 20*time.Second)
	if r.Failed != 0 || r.Backends["n1"] == 0 || r.Backends["n2"] == 0 {
		t.Errorf("load through bird: %+v, want both nodes and no failure", r)
	}

	if _, err := tp.Procs[0].Do("unfit"); err != nil {
		t.Fatal(err)
	}
	if _, err := waitKernel(tp.R, vip4, addrs(nodeV4, 2), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Procs[0].Do("fit"); err != nil {
		t.Fatal(err)
	}
	if _, err := waitKernel(tp.R, vip4, addrs(nodeV4, 1, 2), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Drain n2: with the 65535:0 filter BIRD prefers n1 during the wait, then n2 withdraws.
	if _, err := tp.Procs[1].Do("drain"); err != nil {
		t.Fatal(err)
	}
	if _, err := waitKernel(tp.R, vip4, addrs(nodeV4, 1), 5*time.Second); err != nil {
		t.Fatal(err)
	}
}
