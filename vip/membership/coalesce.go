package membership

import (
	"context"
	"time"
)

// Coalescer turns bursts of member events into single "the view changed" signals, like serf's member-event
// coalescing: after the first event it waits until no event arrived for Quiescence, but never longer than Quantum
// after the first event, so a steady trickle of events still produces a signal every Quantum.
//
// Notify is safe from any goroutine and never blocks; C is read by one consumer; Run owns the timers.
type Coalescer struct {
	Quiescence time.Duration
	Quantum    time.Duration

	in  chan struct{}
	out chan time.Time
}

// NewCoalescer starts nothing; call Run.
func NewCoalescer(quiescence, quantum time.Duration) *Coalescer {
	return &Coalescer{Quiescence: quiescence, Quantum: quantum, in: make(chan struct{}, 1), out: make(chan time.Time, 1)}
}

// Notify records an event.
func (c *Coalescer) Notify() {
	select {
	case c.in <- struct{}{}:
	default: // an event is already pending; Run will see it
	}
}

// C delivers one value per coalesced batch: the time of the batch's first event (to measure reaction latency).
// At most one batch is pending; a slow consumer sees later batches merged into it.
func (c *Coalescer) C() <-chan time.Time { return c.out }

// Run coalesces until ctx is done.
func (c *Coalescer) Run(ctx context.Context) {
	var (
		first     time.Time
		pending   bool
		quiet     = time.NewTimer(time.Hour)
		max       = time.NewTimer(time.Hour)
		stopTimer = func(t *time.Timer) { t.Stop() }
	)
	stopTimer(quiet)
	stopTimer(max)
	defer stopTimer(quiet)
	defer stopTimer(max)
	flush := func() {
		pending = false
		quiet.Stop()
		max.Stop()
		select {
		case c.out <- first:
		default:
			// The consumer has not taken the previous batch yet: it will re-read the whole view anyway.
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.in:
			if !pending {
				pending = true
				first = time.Now()
				max.Reset(c.Quantum)
			}
			quiet.Reset(c.Quiescence)
		case <-quiet.C:
			if pending {
				flush()
			}
		case <-max.C:
			if pending {
				flush()
			}
		}
	}
}
