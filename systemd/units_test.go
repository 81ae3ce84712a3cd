package systemd

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// unitsDir holds the files the appliance installs.
const unitsDir = "units"

// unitFile is a parsed systemd unit: section -> key -> values in file order.
// Enough of systemd's syntax for our own files: comments, sections,
// Key=Value; no line continuations (the check below rejects them).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, name string) unitFile {
	t.Helper()
	f, err := os.Open(filepath.Join(unitsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case text == "" || strings.HasPrefix(text, "#") || strings.HasPrefix(text, ";"):
		case strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]"):
			section = text[1 : len(text)-1]
			u[section] = map[string][]string{}
		case strings.HasSuffix(text, `\`):
			t.Fatalf("%s:%d: line continuation not supported by this test's parser", name, line)
		default:
			k, v, ok := strings.Cut(text, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not Key=Value inside a section: %q", name, line, text)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last is the effective value of a single-valued key.
func (u unitFile) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// words is every space-separated item of a list-valued key.
func (u unitFile) words(section, key string) []string {
	var w []string
	for _, v := range u[section][key] {
		w = append(w, strings.Fields(v)...)
	}
	return w
}

// execArgs splits an ExecStart= line the way systemd does for the subset we
// use: whitespace-separated words, double quotes, and "%%" for "%". Any other
// specifier or escape fails the test rather than being misread.
func execArgs(t *testing.T, line string) []string {
	t.Helper()
	var args []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted = !quoted
			inWord = true
		case c == '%':
			if i+1 >= len(line) || line[i+1] != '%' {
				t.Fatalf("ExecStart uses a %% specifier this test cannot expand: %q", line)
			}
			cur.WriteByte('%')
			i++
			inWord = true
		case c == '\\':
			t.Fatalf("ExecStart uses an escape this test cannot expand: %q", line)
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in ExecStart %q", line)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args
}

// flagValue returns the value after flag in args.
func flagValue(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// TestUnitContract checks the relations between the two units that the
// README promises and that systemd-analyze cannot know about.
func TestUnitContract(t *testing.T) {
	eg := parseUnit(t, "edgegate.service")
	ev := parseUnit(t, "edgegate-envoy.service")

	t.Run("edgegate speaks sd_notify with a watchdog", func(t *testing.T) {
		for key, want := range map[string]string{"Type": "notify", "NotifyAccess": "main", "KillMode": "mixed", "Restart": "on-failure"} {
			if got := eg.last("Service", key); got != want {
				t.Errorf("edgegate.service %s=%q, want %q", key, got, want)
			}
		}
		wd, err := time.ParseDuration(eg.last("Service", "WatchdogSec"))
		if err != nil || wd <= 0 {
			t.Errorf("edgegate.service WatchdogSec=%q: want a positive duration (%v)", eg.last("Service", "WatchdogSec"), err)
		}
	})

	t.Run("envoy survives edgegate restarts", func(t *testing.T) {
		for _, key := range []string{"BindsTo", "PartOf", "Requires", "Requisite", "Upholds"} {
			if slices.Contains(ev.words("Unit", key), "edgegate.service") {
				t.Errorf("edgegate-envoy.service %s=edgegate.service: a restart or stop of edgegate would take Envoy down", key)
			}
		}
		if got := ev.last("Service", "Restart"); got != "always" {
			t.Errorf("edgegate-envoy.service Restart=%q, want always", got)
		}
	})

	t.Run("edgegate stops before envoy", func(t *testing.T) {
		if !slices.Contains(eg.words("Unit", "After"), "edgegate-envoy.service") {
			t.Error("edgegate.service is not After=edgegate-envoy.service: at shutdown Envoy could stop before edgegate drains it")
		}
		if slices.Contains(ev.words("Unit", "After"), "edgegate.service") {
			t.Error("edgegate-envoy.service After=edgegate.service: ordering cycle, and Envoy would wait for READY=1, which waits for Envoy")
		}
	})

	evArgs := execArgs(t, ev.last("Service", "ExecStart"))

	t.Run("envoy drain fits into edgegate's stop timeout", func(t *testing.T) {
		drain, ok := flagValue(evArgs, "--drain-time-s")
		if !ok {
			t.Fatal("edgegate-envoy.service sets no --drain-time-s (Envoy's default is 600 s)")
		}
		d, err := time.ParseDuration(drain + "s")
		if err != nil {
			t.Fatalf("--drain-time-s %q: %v", drain, err)
		}
		stop, err := time.ParseDuration(eg.last("Service", "TimeoutStopSec"))
		if err != nil {
			t.Fatalf("edgegate.service TimeoutStopSec: %v", err)
		}
		if d >= stop {
			t.Errorf("Envoy drains for %v but edgegate is killed after %v", d, stop)
		}
	})

	t.Run("envoy runs without hot restart from edgegate's bootstrap", func(t *testing.T) {
		if !slices.Contains(evArgs, "--disable-hot-restart") {
			t.Errorf("edgegate-envoy.service ExecStart lacks --disable-hot-restart: %q", evArgs)
		}
		boot, ok := flagValue(evArgs, "--config-path")
		state := filepath.Join("/var/lib", eg.last("Service", "StateDirectory"))
		if !ok || filepath.Dir(boot) != state {
			t.Errorf("Envoy bootstrap %q is not in edgegate's StateDirectory %s", boot, state)
		}
		if !slices.Contains(ev.words("Service", "SupplementaryGroups"), eg.last("Service", "Group")) {
			t.Errorf("Envoy is not in edgegate's group %q, so it cannot read the bootstrap", eg.last("Service", "Group"))
		}
	})
}
