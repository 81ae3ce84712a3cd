package membership

import (
	"encoding/json"
	"fmt"
)

// MetaMaxSize is memberlist's limit for node metadata (memberlist.MetaMaxSize); a larger meta is refused by
// memberlist at startup and on every update, so Encode fails early with a clear message instead.
const MetaMaxSize = 512

// MaxReasonLen bounds the unfit reason carried in gossip so a long error text cannot push the meta over
// MetaMaxSize; the appliance's status API keeps the full text.
const MaxReasonLen = 120

// Meta is what every node publishes about itself in gossip.
type Meta struct {
	// Fit: the node can take traffic (Envoy ready, config synced from every required cluster, not draining).
	Fit bool `json:"f"`
	// Reason says why the node is unfit (empty when fit).
	Reason string `json:"r,omitempty"`
	// Weight is the node's own preference, added to its rank score for every VIP.
	Weight int64 `json:"w,omitempty"`
	// Ads maps each L2Advertisement the node is eligible for to its preference score for it.
	Ads map[string]int64 `json:"a,omitempty"`
}

// Encode returns the compact JSON form, failing when it does not fit memberlist's limit.
func (m Meta) Encode() ([]byte, error) {
	if len(m.Reason) > MaxReasonLen {
		m.Reason = m.Reason[:MaxReasonLen]
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode node meta: %w", err)
	}
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("node meta is %d bytes, memberlist's limit is %d: shorten L2Advertisement names or use fewer advertisements", len(b), MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta parses a peer's meta. An empty or unreadable meta yields an unfit node, never a fit one.
func DecodeMeta(b []byte) Meta {
	var m Meta
	if len(b) == 0 {
		return Meta{Reason: "no metadata"}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{Reason: "unreadable metadata"}
	}
	return m
}
