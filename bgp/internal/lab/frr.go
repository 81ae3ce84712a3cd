package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FRR is a zebra+bgpd pair running in a namespace without systemd.
type FRR struct {
	NS  string
	Dir string
}

// FRRBin is where Debian's frr package puts the daemons.
const FRRBin = "/usr/lib/frr"

// StartFRR starts zebra and bgpd in ns with the given bgpd.conf (@DIR@ is replaced by its directory), each with per-namespace paths
// (-u root fails, so the files are made readable for user frr).
func (l *Lab) StartFRR(ns, bgpdConf string) *FRR {
	l.TB.Helper()
	dir := filepath.Join(l.Dir, "frr-"+filepath.Base(ns))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		l.TB.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			l.TB.Fatal(err)
		}
	}
	write("zebra.conf", "hostname router\n")
	write("bgpd.conf", strings.ReplaceAll(bgpdConf, "@DIR@", dir))
	exec.Command("chown", "-R", "frr:frr", dir).Run()
	f := &FRR{NS: ns, Dir: dir}
	for _, d := range []string{"zebra", "bgpd"} {
		if err := f.StartDaemon(d); err != nil {
			l.TB.Fatal(err)
		}
	}
	l.TB.Cleanup(f.stop)
	if err := Eventually(10*time.Second, func() error { _, err := f.VTY("show bgp summary json"); return err }); err != nil {
		l.TB.Fatalf("frr did not come up: %v", err)
	}
	return f
}

// StartDaemon starts one FRR daemon (zebra or bgpd) with this FRR's per-namespace paths.
func (f *FRR) StartDaemon(d string) error {
	_, err := In(f.NS, filepath.Join(FRRBin, d), "-d", "-u", "frr", "-g", "frr",
		"--vty_socket", f.Dir, "-z", filepath.Join(f.Dir, "zserv.api"), "-P", "0",
		"-i", filepath.Join(f.Dir, d+".pid"), "-f", filepath.Join(f.Dir, d+".conf"))
	return err
}

// KillDaemon SIGKILLs one FRR daemon (a crash: no NOTIFICATION) and waits until it is gone.
func (f *FRR) KillDaemon(d string) error {
	b, err := os.ReadFile(filepath.Join(f.Dir, d+".pid"))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%s pid file: %w", d, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", d, err)
	}
	return Eventually(5*time.Second, func() error {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z ") { // gone, or a zombie nobody reaps
			return nil
		}
		return fmt.Errorf("%s (pid %d) still running", d, pid)
	})
}

func (f *FRR) stop() {
	for _, d := range []string{"bgpd", "zebra"} {
		b, err := os.ReadFile(filepath.Join(f.Dir, d+".pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// VTY runs one vtysh command against this FRR.
func (f *FRR) VTY(cmd string) ([]byte, error) {
	out, err := exec.Command("vtysh", "--vty_socket", f.Dir, "-c", cmd).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("vtysh %q: %w: %s", cmd, err, out)
	}
	return out, nil
}

// FRRNeighbor is one entry of `show bgp neighbors json`.
type FRRNeighbor struct {
	RemoteAs int    `json:"remoteAs"`
	State    string `json:"bgpState"`
}

// ParseFRRNeighbors parses `show bgp neighbors json`.
func ParseFRRNeighbors(b []byte) (map[string]FRRNeighbor, error) {
	m := map[string]FRRNeighbor{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse frr neighbors: %w", err)
	}
	return m, nil
}

// Neighbors returns the BGP neighbours by address.
func (f *FRR) Neighbors() (map[string]FRRNeighbor, error) {
	b, err := f.VTY("show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	return ParseFRRNeighbors(b)
}

// FRRBGPPath is one path of `show bgp <afi> unicast <prefix> json`.
type FRRBGPPath struct {
	ASPath struct {
		String string `json:"string"`
	} `json:"aspath"`
	LocalPref int  `json:"locPrf"`
	Valid     bool `json:"valid"`
	Multipath bool `json:"multipath"`
	Stale     bool `json:"stale"` // kept by graceful restart (RFC 4724) after the session went down
	Community *struct {
		String string `json:"string"`
	} `json:"community"`
	LargeCommunity *struct {
		String string `json:"string"`
	} `json:"largeCommunity"`
	NextHops []struct {
		IP    string `json:"ip"`
		Scope string `json:"scope"`
	} `json:"nexthops"`
	BestPath *struct {
		Overall bool `json:"overall"`
	} `json:"bestpath"`
}

// ParseFRRBGPPrefix parses `show bgp ipv4|ipv6 unicast <prefix> json` (empty object: no paths).
func ParseFRRBGPPrefix(b []byte) ([]FRRBGPPath, error) {
	var v struct {
		Paths []FRRBGPPath `json:"paths"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("parse frr bgp prefix: %w", err)
	}
	return v.Paths, nil
}

// BGPPaths returns FRR's BGP paths for prefix.
func (f *FRR) BGPPaths(p netip.Prefix) ([]FRRBGPPath, error) {
	afi := "ipv4"
	if p.Addr().Is6() {
		afi = "ipv6"
	}
	b, err := f.VTY(fmt.Sprintf("show bgp %s unicast %s json", afi, p))
	if err != nil {
		return nil, err
	}
	return ParseFRRBGPPrefix(b)
}

// FRRRoute is one route of `show ip route <prefix> json`.
type FRRRoute struct {
	Protocol  string `json:"protocol"`
	Selected  bool   `json:"selected"`
	Installed bool   `json:"installed"`
	NextHops  []struct {
		IP     string `json:"ip"`
		Active bool   `json:"active"`
		FIB    bool   `json:"fib"`
	} `json:"nexthops"`
}

// ParseFRRRoute parses `show ip|ipv6 route <prefix> json` and returns the FIB next hops of the selected,
// installed route (nil if there is none).
func ParseFRRRoute(b []byte) ([]netip.Addr, error) {
	m := map[string][]FRRRoute{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse frr route: %w", err)
	}
	var out []netip.Addr
	for _, routes := range m {
		for _, r := range routes {
			if !r.Selected || !r.Installed {
				continue
			}
			for _, nh := range r.NextHops {
				if !nh.FIB {
					continue
				}
				a, err := netip.ParseAddr(nh.IP)
				if err != nil {
					return nil, fmt.Errorf("parse frr route next hop %q: %w", nh.IP, err)
				}
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// RIBNextHops returns the next hops zebra installed for prefix.
func (f *FRR) RIBNextHops(p netip.Prefix) ([]netip.Addr, error) {
	afi := "ip"
	if p.Addr().Is6() {
		afi = "ipv6"
	}
	b, err := f.VTY(fmt.Sprintf("show %s route %s json", afi, p))
	if err != nil {
		return nil, err
	}
	return ParseFRRRoute(b)
}
