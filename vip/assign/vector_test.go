package assign

import (
	"bytes"
	"crypto/sha256"
	"sort"
)

// hashOrder sorts names by sha256(name#ip), MetalLB's tie-break.
func hashOrder(v VIP, names ...string) []string {
	sort.Slice(names, func(i, j int) bool {
		hi := sha256.Sum256([]byte(names[i] + "#" + v.Addr.String()))
		hj := sha256.Sum256([]byte(names[j] + "#" + v.Addr.String()))
		return bytes.Compare(hi[:], hj[:]) < 0
	})
	return names
}
