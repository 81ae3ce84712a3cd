package membership

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
)

// Known vector from coreutils: printf 'edgegate-test-secret' | sha256sum. MetalLB >= v0.16.2 derives the same key.
func TestDeriveKeyVector(t *testing.T) {
	const want = "f48e816a09b54182ccaf6f5d19aacf04aed5d7cb09db92131db24ca98d9fbce8"
	if got := hex.EncodeToString(DeriveKey("edgegate-test-secret")); got != want {
		t.Errorf("DeriveKey = %s, want %s", got, want)
	}
}

func TestApplyKeysRotation(t *testing.T) {
	k := func(b byte) []byte { return slices.Repeat([]byte{b}, 32) }
	kr, err := memberlist.NewKeyring([][]byte{k(1)}, k(1))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		file        [][]byte
		wantPrimary []byte
		wantKeys    int
	}{
		{"install", [][]byte{k(1), k(2)}, k(1), 2},
		{"use", [][]byte{k(2), k(1)}, k(2), 2},
		{"remove", [][]byte{k(2)}, k(2), 1},
	}
	for _, s := range steps {
		if err := ApplyKeys(kr, s.file); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := kr.GetPrimaryKey(); string(got) != string(s.wantPrimary) {
			t.Errorf("%s: primary %x, want %x", s.name, got[:1], s.wantPrimary[:1])
		}
		if got := len(kr.GetKeys()); got != s.wantKeys {
			t.Errorf("%s: %d keys, want %d", s.name, got, s.wantKeys)
		}
	}
}

func TestReadKeyringFile(t *testing.T) {
	dir := t.TempDir()
	good := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := map[string]struct {
		content string
		wantErr error
		want    int
	}{
		"two keys":   {content: fmt.Sprintf("[%q, %q]", good, good), want: 2},
		"empty":      {content: "[]", wantErr: ErrKeyring},
		"not json":   {content: "key", wantErr: ErrKeyring},
		"short key":  {content: `["AAAA"]`, wantErr: ErrKeyring},
		"bad base64": {content: `["!!"]`, wantErr: ErrKeyring},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			keys, err := ReadKeyringFile(p)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if len(keys) != tc.want {
				t.Errorf("%d keys, want %d", len(keys), tc.want)
			}
		})
	}
}

func TestMetaRoundTripAndLimit(t *testing.T) {
	m := Meta{Fit: false, Reason: "envoy not ready", Weight: 3, Ads: map[string]int64{"l2": 10}}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, DecodeMeta(b)); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	big := Meta{Ads: map[string]int64{}}
	for i := range 40 {
		big.Ads[fmt.Sprintf("advertisement-with-a-long-name-%02d", i)] = 1
	}
	if _, err := big.Encode(); err == nil {
		t.Error("a meta over 512 bytes encoded without error")
	}
	if got := DecodeMeta([]byte("garbage")); got.Fit {
		t.Error("unreadable meta decoded as fit")
	}
}

type node struct {
	m      *Membership
	cancel context.CancelFunc
	done   chan error
}

func startMock(t *testing.T, net *memberlist.MockNetwork, mu *sync.Mutex, name, secret, label string, seeds []string, meta Meta) (*node, string) {
	t.Helper()
	mu.Lock()
	tr := net.NewTransport(name)
	mu.Unlock()
	addr, port, _ := tr.FinalAdvertiseAddr("", 0)
	cfg := Config{BindAddress: addr.String(), BindPort: port, Seeds: seeds, Secret: secret, ClusterLabel: label}.WithDefaults()
	m, err := New(cfg, name, meta, Options{Transport: tr, Logger: testLogger(t).With("node", name)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n := &node{m: m, cancel: cancel, done: make(chan error)}
	go func() {
		if err := m.Run(ctx); err != nil {
			t.Errorf("%s: run: %v", name, err)
		}
		close(n.done)
	}()
	t.Cleanup(func() { cancel(); <-n.done })
	<-m.Ready()
	return n, fmt.Sprintf("%s:%d", addr, port)
}

// waitView waits on the change signals until cond holds for the view, or fails after a generous bound.
func waitView(t *testing.T, n *node, what string, cond func([]Member) bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	// Push/pull and gossip also change views without an event on this node; re-check at every probe interval.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !cond(n.m.Members()) {
		select {
		case <-n.m.Changes():
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: view %+v", what, n.m.Members())
		}
	}
}

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestMockClusterJoinMetaAndKey(t *testing.T) {
	var net memberlist.MockNetwork
	var mu sync.Mutex
	const secret = "a-long-enough-test-secret"
	a, aAddr := startMock(t, &net, &mu, "a", secret, "", nil, Meta{Fit: true, Ads: map[string]int64{"l2": 0}})
	b, _ := startMock(t, &net, &mu, "b", secret, "", []string{aAddr}, Meta{Reason: "starting"})
	c, _ := startMock(t, &net, &mu, "c", secret, "", []string{aAddr}, Meta{Fit: true})
	all := func(ms []Member) bool { return slices.Equal(names(ms), []string{"a", "b", "c"}) }
	for _, n := range []*node{a, b, c} {
		waitView(t, n, "three members", all)
	}

	// Fitness travels in the metadata.
	if err := b.m.SetMeta(Meta{Fit: true, Weight: 5}); err != nil {
		t.Fatal(err)
	}
	waitView(t, a, "b fit with weight 5", func(ms []Member) bool {
		for _, m := range ms {
			if m.Name == "b" {
				return m.Meta.Fit && m.Meta.Weight == 5
			}
		}
		return false
	})

	// A node with another key is never admitted, nor is one with another cluster label.
	x, _ := startMock(t, &net, &mu, "x", "another-secret-of-length", "", []string{aAddr}, Meta{Fit: true})
	y, _ := startMock(t, &net, &mu, "y", secret, "other-cluster", []string{aAddr}, Meta{Fit: true})
	if got := x.m.JoinedPeers() + y.m.JoinedPeers(); got != 0 {
		t.Errorf("wrong key / label joined %d peers", got)
	}
	// Give them the time of several probe and push/pull rounds, then verify nobody merged.
	time.Sleep(time.Second) // a negative check: nothing to wait for
	if got := names(a.m.Members()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("view of a = %v, want only a, b, c", got)
	}
	for _, n := range []*node{x, y} {
		if got := len(n.m.Members()); got != 1 {
			t.Errorf("outsider sees %d members, want only itself", got)
		}
	}
	// Leaving is tested over real sockets (internal/netnstest): a MockTransport whose peer shut down blocks the
	// sender on an unbuffered channel, so departures cannot be exercised here.
}
