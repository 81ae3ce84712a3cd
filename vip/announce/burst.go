package announce

import (
	"context"
	"time"
)

// Burst calls send count times, spacing apart, stopping early when ctx is done. Linux ignores an ARP update for a
// neighbour entry changed less than locktime (1 s by default) ago unless it recognises it as gratuitous, so the
// spacing must exceed it for a later copy to land on a neighbour that took the previous owner's answer within the
// lock window. send errors are passed to onErr and do not stop the burst (the next copy may succeed).
func Burst(ctx context.Context, count int, spacing time.Duration, send func() error, onErr func(error)) {
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; i < count; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := send(); err != nil && onErr != nil {
			onErr(err)
		}
		t.Reset(spacing)
	}
}
