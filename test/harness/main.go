package harness

import (
	"fmt"
	"os"
	"testing"
)

// Suite is what a test package's TestMain shares: a working directory, and what to do around the
// tests.
type Suite struct {
	// Name prefixes messages and the working directory ("e2e", "attack").
	Name string
	// Setup starts the shared components in dir; Teardown stops them (also after a failed Setup).
	Setup    func(dir string) error
	Teardown func() error
	// OnFailure runs after failed tests, before Teardown (e.g. to save Envoy's config dump).
	OnFailure func(dir string)
	// Logs, when set, is printed after failed tests, after Teardown.
	Logs func() string
}

// RunMain runs a package's tests around the suite's shared components and returns the exit code.
// Without root it skips (network namespaces and routes need it). The working directory is removed
// when everything passed and kept, with its path printed, otherwise.
func RunMain(m *testing.M, s Suite) int {
	if os.Geteuid() != 0 {
		fmt.Printf("%s: skipped: needs root (network namespaces, veth pairs, routes)\n", s.Name)
		return 0
	}
	dir, err := os.MkdirTemp("", "edgegate-"+s.Name+"-")
	if err != nil {
		fmt.Printf("%s: %v\n", s.Name, err)
		return 1
	}
	code := 1
	defer func() {
		if code == 0 {
			os.RemoveAll(dir)
		} else {
			fmt.Printf("%s: logs kept in %s\n", s.Name, dir)
		}
	}()
	if err := s.Setup(dir); err != nil {
		fmt.Printf("%s: setup: %v\n", s.Name, err)
		_ = s.Teardown()
		return code
	}
	code = m.Run()
	if code != 0 && s.OnFailure != nil {
		s.OnFailure(dir)
	}
	if err := s.Teardown(); err != nil {
		fmt.Printf("%s: teardown: %v\n", s.Name, err)
		code = 1
	}
	if code != 0 && s.Logs != nil {
		fmt.Println(s.Logs())
	}
	return code
}
