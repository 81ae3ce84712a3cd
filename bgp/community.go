package bgp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// LargeCommunity is an RFC 8092 large community.
type LargeCommunity struct {
	Global, Local1, Local2 uint32
}

func (l LargeCommunity) String() string {
	return fmt.Sprintf("%d:%d:%d", l.Global, l.Local1, l.Local2)
}

// community is either a standard (RFC 1997) or a large (RFC 8092) community.
type community struct {
	large    bool
	standard uint32
	lc       LargeCommunity
}

var errCommunitySyntax = errors.New(`want "A:B" (each 0-65535) or "large:A:B:C" (each 0-4294967295)`)

// parseCommunity parses MetalLB's community syntax: "65535:0" or "large:1:2:3".
func parseCommunity(s string) (community, error) {
	if rest, ok := strings.CutPrefix(s, "large:"); ok {
		parts := strings.Split(rest, ":")
		if len(parts) != 3 {
			return community{}, errCommunitySyntax
		}
		var v [3]uint32
		for i, p := range parts {
			n, err := strconv.ParseUint(p, 10, 32)
			if err != nil {
				return community{}, errCommunitySyntax
			}
			v[i] = uint32(n)
		}
		return community{large: true, lc: LargeCommunity{v[0], v[1], v[2]}}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) != 2 {
		return community{}, errCommunitySyntax
	}
	hi, err1 := strconv.ParseUint(parts[0], 10, 16)
	lo, err2 := strconv.ParseUint(parts[1], 10, 16)
	if err1 != nil || err2 != nil {
		return community{}, errCommunitySyntax
	}
	return community{standard: uint32(hi)<<16 | uint32(lo)}, nil
}

// resolveCommunity resolves a name from an advertisement: an alias from a Community object, else a literal.
func resolveCommunity(s string, aliases map[string]string) (community, error) {
	if v, ok := aliases[s]; ok {
		c, err := parseCommunity(v)
		if err != nil {
			return community{}, fmt.Errorf("alias %q = %q: %w", s, v, err)
		}
		return c, nil
	}
	return parseCommunity(s)
}

func formatStandard(c uint32) string {
	return fmt.Sprintf("%d:%d", c>>16, c&0xFFFF)
}
