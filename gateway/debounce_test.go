package gateway

import (
	"testing"
	"time"
)

func TestDebouncer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	tests := []struct {
		name   string
		events []time.Duration // offsets from t0
		want   time.Duration   // due, as an offset from t0
	}{
		{"single event waits the holdoff", []time.Duration{0}, 10 * ms},
		{"a later event extends the holdoff", []time.Duration{0, 5 * ms}, 15 * ms},
		{"a steady trickle is flushed at the maximum", []time.Duration{0, 9 * ms, 18 * ms, 27 * ms, 36 * ms, 45 * ms, 54 * ms, 63 * ms, 72 * ms, 81 * ms, 90 * ms, 99 * ms}, 100 * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := debouncer{holdoff: 10 * ms, max: 100 * ms}
			if d.pending() {
				t.Fatal("pending before any event")
			}
			for _, e := range tc.events {
				d.event(t0.Add(e))
			}
			if got := d.due().Sub(t0); got != tc.want {
				t.Errorf("due at %v, want %v", got, tc.want)
			}
			d.flushed()
			if d.pending() {
				t.Error("pending after flush")
			}
		})
	}
}
