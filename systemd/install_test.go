package systemd

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// needRoot skips tests that chown or enter namespaces.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates files owned by other users, enters a network namespace)")
	}
}

// TestSysusersAndTmpfiles applies the sysusers.d and tmpfiles.d snippets
// with the real systemd tools to an empty root and checks the result.
func TestSysusersAndTmpfiles(t *testing.T) {
	sysusers := needTool(t, "systemd-sysusers")
	tmpfiles := needTool(t, "systemd-tmpfiles")
	needRoot(t)

	root := t.TempDir()
	for src, dst := range map[string]string{
		"edgegate.sysusers.conf": "usr/lib/sysusers.d/edgegate.conf",
		"edgegate.tmpfiles.conf": "usr/lib/tmpfiles.d/edgegate.conf",
	} {
		b, err := os.ReadFile(filepath.Join(unitsDir, src))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []*exec.Cmd{
		exec.Command(sysusers, "--root="+root),
		exec.Command(tmpfiles, "--root="+root, "--create"),
	} {
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
	}

	passwd := readColonFile(t, filepath.Join(root, "etc/passwd"))
	group := readColonFile(t, filepath.Join(root, "etc/group"))
	for _, user := range []string{"edgegate", "edgegate-envoy"} {
		p, ok := passwd[user]
		if !ok {
			t.Fatalf("user %s not created; passwd: %v", user, passwd)
		}
		if shell := p[6]; shell != "/usr/sbin/nologin" {
			t.Errorf("user %s has shell %q, want /usr/sbin/nologin", user, shell)
		}
		if uid, _ := strconv.Atoi(p[2]); uid == 0 || uid >= 1000 {
			t.Errorf("user %s has uid %d, want a system uid (1..999)", user, uid)
		}
	}
	members := func(g string) []string {
		if len(group[g]) < 4 {
			t.Fatalf("group %s not created; group: %v", g, group)
		}
		return strings.Split(group[g][3], ",")
	}
	if !slices.Contains(members("edgegate"), "edgegate-envoy") {
		t.Errorf("edgegate-envoy is not in group edgegate (cannot read the bootstrap): %v", group["edgegate"])
	}
	if !slices.Contains(members("edgegate-envoy"), "edgegate") {
		t.Errorf("edgegate is not in group edgegate-envoy (cannot reach Envoy's admin socket): %v", group["edgegate-envoy"])
	}

	id := func(m map[string][]string, name string) uint32 {
		n, err := strconv.ParseUint(m[name][2], 10, 32) // uid in passwd, gid in group
		if err != nil {
			t.Fatalf("id of %s: %v", name, err)
		}
		return uint32(n)
	}
	for _, d := range []struct {
		path     string
		uid, gid uint32
		mode     os.FileMode
	}{
		{"etc/edgegate", 0, id(group, "edgegate"), 0o750},
		{"var/lib/edgegate", id(passwd, "edgegate"), id(group, "edgegate"), 0o750},
	} {
		fi, err := os.Stat(filepath.Join(root, d.path))
		if err != nil {
			t.Errorf("%s: %v", d.path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || fi.Mode().Perm() != d.mode || st.Uid != d.uid || st.Gid != d.gid {
			t.Errorf("/%s: got dir=%v mode %o owner %d:%d, want dir mode %o owner %d:%d",
				d.path, fi.IsDir(), fi.Mode().Perm(), st.Uid, st.Gid, d.mode, d.uid, d.gid)
		}
	}
}

// readColonFile reads /etc/passwd (name:x:uid:gid:gecos:home:shell) or
// /etc/group (name:x:gid:members) into name -> fields.
func readColonFile(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		m[fields[0]] = fields
	}
	return m
}

// TestNetAdminWritesOnlyNetSysctls backs the ProtectKernelTunables=no choice
// in edgegate.service: a non-root process holding only CAP_NET_ADMIN, as
// edgegate runs, can write net.* sysctls (arp_ignore) of its own network
// namespace, cannot without the capability, and cannot write a non-net
// sysctl even with it. Runs in a throwaway network namespace.
func TestNetAdminWritesOnlyNetSysctls(t *testing.T) {
	needRoot(t)
	unshare, err1 := exec.LookPath("unshare")
	setpriv, err2 := exec.LookPath("setpriv")
	if err := errors.Join(err1, err2); err != nil {
		t.Skipf("needs unshare and setpriv (Debian package util-linux): %v", err)
	}
	// As nobody, in a new network namespace, with capSpec as the only
	// inheritable+ambient capabilities, write value to a sysctl file.
	write := func(capSpec, file, value string) ([]byte, error) {
		args := []string{"-n", setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all" + capSpec}
		if capSpec != "" {
			args = append(args, "--ambient-caps="+strings.TrimPrefix(capSpec, ","))
		}
		args = append(args, "--", "sh", "-c", `printf %s "$1" > "$2" && cat "$2"`, "sh", value, file)
		return exec.Command(unshare, args...).CombinedOutput()
	}
	const arpIgnore = "/proc/sys/net/ipv4/conf/lo/arp_ignore"

	out, err := write(",+net_admin", arpIgnore, "1")
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Errorf("with CAP_NET_ADMIN: write %s: %v, output %q; want it written", arpIgnore, err, out)
	}
	if out, err := write("", arpIgnore, "1"); err == nil {
		t.Errorf("without capabilities: write %s succeeded (%q); want permission denied", arpIgnore, out)
	}
	const swappiness = "/proc/sys/vm/swappiness"
	if _, err := os.Stat(swappiness); err == nil {
		if out, err := write(",+net_admin", swappiness, "60"); err == nil {
			t.Errorf("with CAP_NET_ADMIN: write %s succeeded (%q); want denied (not a net sysctl)", swappiness, out)
		}
	}
}
