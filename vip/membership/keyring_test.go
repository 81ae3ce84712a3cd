package membership

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// A full rotation (install → use → remove) on running nodes keeps them together; afterwards a node holding only
// the new key joins and a node holding only the old key does not.
func TestKeyringRotationLive(t *testing.T) {
	dir := t.TempDir()
	oldKey := DeriveKey("the-old-cluster-secret")
	newKey := DeriveKey("the-new-cluster-secret")
	write := func(path string, keys ...[]byte) {
		t.Helper()
		var enc []string
		for _, k := range keys {
			enc = append(enc, base64.StdEncoding.EncodeToString(k))
		}
		b, _ := json.Marshal(enc)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	var mnet memberlist.MockNetwork
	var mu sync.Mutex
	start := func(name string, keys [][]byte, seeds []string) (*node, string) {
		t.Helper()
		path := filepath.Join(dir, name+".json")
		write(path, keys...)
		mu.Lock()
		tr := mnet.NewTransport(name)
		mu.Unlock()
		addr, port, _ := tr.FinalAdvertiseAddr("", 0)
		cfg := Config{BindAddress: addr.String(), BindPort: port, Seeds: seeds, KeyringFile: path}.WithDefaults()
		m, err := New(cfg, name, Meta{Fit: true}, Options{Transport: tr, Logger: testLogger(t).With("node", name), KeyringPoll: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		n := &node{m: m, cancel: cancel, done: make(chan error)}
		go func() { m.Run(ctx); close(n.done) }()
		t.Cleanup(func() { cancel(); <-n.done })
		<-m.Ready()
		return n, fmt.Sprintf("%s:%d", addr, port)
	}
	a, aAddr := start("a", [][]byte{oldKey}, nil)
	b, _ := start("b", [][]byte{oldKey}, []string{aAddr})
	both := func(ms []Member) bool { return slices.Equal(names(ms), []string{"a", "b"}) }
	waitView(t, a, "a and b together", both)

	steps := []struct {
		name string
		keys [][]byte
	}{
		{"install", [][]byte{oldKey, newKey}},
		{"use", [][]byte{newKey, oldKey}},
		{"remove", [][]byte{newKey}},
	}
	for _, s := range steps {
		for _, n := range []string{"a", "b"} {
			write(filepath.Join(dir, n+".json"), s.keys...)
		}
		// Wait for both nodes to load the step (the keyring loop polls every 50 ms), then check they stay together
		// over several probe rounds.
		time.Sleep(300 * time.Millisecond)
		for _, n := range []*node{a, b} {
			if got := names(n.m.Members()); !slices.Equal(got, []string{"a", "b"}) {
				t.Fatalf("after %s: view %v", s.name, got)
			}
		}
	}
	c, _ := start("c", [][]byte{newKey}, []string{aAddr})
	waitView(t, c, "c (new key only) joins", func(ms []Member) bool { return slices.Equal(names(ms), []string{"a", "b", "c"}) })
	d, _ := start("d", [][]byte{oldKey}, []string{aAddr})
	if d.m.JoinedPeers() != 0 {
		t.Error("a node with only the retired key joined")
	}
}
