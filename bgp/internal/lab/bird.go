package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BIRD is a bird2 daemon in a namespace.
type BIRD struct {
	NS, Dir string
}

// StartBIRD starts bird with conf (@DIR@ replaced by its directory) in ns.
func (l *Lab) StartBIRD(ns, conf string) *BIRD {
	l.TB.Helper()
	dir := filepath.Join(l.Dir, "bird-"+filepath.Base(ns))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.TB.Fatal(err)
	}
	p := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(conf, "@DIR@", dir)), 0o644); err != nil {
		l.TB.Fatal(err)
	}
	b := &BIRD{NS: ns, Dir: dir}
	l.MustIn(ns, "bird", "-c", p, "-s", filepath.Join(dir, "bird.ctl"), "-P", filepath.Join(dir, "bird.pid"))
	l.TB.Cleanup(func() {
		if s, err := os.ReadFile(filepath.Join(dir, "bird.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(s))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if err := Eventually(10*time.Second, func() error { _, err := b.Cmd("show status"); return err }); err != nil {
		l.TB.Fatalf("bird did not come up: %v", err)
	}
	return b
}

// Cmd runs a birdc command.
func (b *BIRD) Cmd(cmd string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", filepath.Join(b.Dir, "bird.ctl")}, strings.Fields(cmd)...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", cmd, err, out)
	}
	return string(out), nil
}

// ParseBIRDProtocols parses `birdc show protocols` into BGP protocol name -> first word of the info column
// ("Established", "Active", "Connect", ...). It assumes BIRD's default one-word "since" time format.
func ParseBIRDProtocols(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		// Name Proto Table State Since Info...
		if len(f) >= 6 && f[1] == "BGP" {
			m[f[0]] = f[5]
		}
	}
	return m
}
