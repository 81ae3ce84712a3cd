package appliance

import (
	"os"
	"regexp"
	"testing"

	"github.com/edgegate/edgegate/appliance/config"
)

// TestREADMEConfigExamplesParse keeps the configuration examples in README.md true: the first
// YAML block is a whole configuration; later blocks are sections added to it.
func TestREADMEConfigExamplesParse(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml blocks in README.md, want at least 2", len(blocks))
	}
	base := blocks[0][1]
	if _, err := config.Parse([]byte(base)); err != nil {
		t.Errorf("README's configuration does not parse: %v", err)
	}
	for i, blk := range blocks[1:] {
		if _, err := config.Parse([]byte(base + blk[1])); err != nil {
			t.Errorf("README yaml block %d added to the first does not parse: %v", i+2, err)
		}
	}
}
