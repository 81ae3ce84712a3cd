package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
)

type netnstestAddr = netip.Addr

var errFatal = errors.New("fatal")

// bench implements netnstest.T for a program.
type bench struct {
	cleanups []func()
	dirs     []string
}

func (b *bench) Helper() {}
func (b *bench) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vipbench: "+format+"\n", args...)
	panic(errFatal)
}
func (b *bench) Logf(format string, args ...any) { fmt.Printf(format+"\n", args...) }
func (b *bench) Cleanup(f func())                { b.cleanups = append(b.cleanups, f) }
func (b *bench) TempDir() string {
	d, err := os.MkdirTemp("", "vipbench-")
	if err != nil {
		b.Fatalf("%v", err)
	}
	b.dirs = append(b.dirs, d)
	return d
}
func (b *bench) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	for _, d := range b.dirs {
		os.RemoveAll(d)
	}
}
