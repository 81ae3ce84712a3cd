package membership

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestCoalescer(t *testing.T) {
	const q, max = 20 * time.Millisecond, 100 * time.Millisecond
	tests := map[string]struct {
		events []time.Duration // offsets at which Notify is called
		want   []time.Duration // offsets at which a batch is delivered
	}{
		"single event after quiescence":    {events: []time.Duration{0}, want: []time.Duration{q}},
		"burst merged":                     {events: []time.Duration{0, 5 * time.Millisecond, 10 * time.Millisecond}, want: []time.Duration{10*time.Millisecond + q}},
		"two bursts apart":                 {events: []time.Duration{0, 200 * time.Millisecond}, want: []time.Duration{q, 200*time.Millisecond + q}},
		"steady trickle capped by quantum": {events: every(0, 15*time.Millisecond, 250*time.Millisecond), want: []time.Duration{max, 105*time.Millisecond + max, 240*time.Millisecond + q}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				c := NewCoalescer(q, max)
				go c.Run(ctx)
				start := time.Now()
				var got []time.Duration
				done := make(chan struct{})
				go func() {
					defer close(done)
					for {
						select {
						case <-ctx.Done():
							return
						case <-c.C():
							got = append(got, time.Since(start))
						}
					}
				}()
				for _, at := range tc.events {
					time.Sleep(at - time.Since(start))
					c.Notify()
				}
				time.Sleep(time.Second)
				cancel()
				<-done
				if len(got) != len(tc.want) {
					t.Fatalf("batches at %v, want %v", got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Errorf("batch %d at %v, want %v (all: %v)", i, got[i], tc.want[i], got)
					}
				}
			})
		})
	}
}

func every(from, step, until time.Duration) []time.Duration {
	var out []time.Duration
	for d := from; d < until; d += step {
		out = append(out, d)
	}
	return out
}
