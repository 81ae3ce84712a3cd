package gateway

import "time"

// debouncer decides when a burst of events should be flushed: holdoff after the last event, but no
// later than max after the first event of the burst, so a steady trickle still produces updates
// (Contour's holdoff + maximum, internal/contour/handler.go). It is owned by one goroutine.
type debouncer struct {
	holdoff, max time.Duration
	first        time.Time // first event of the pending burst; zero when nothing is pending
	last         time.Time
}

// event records an event at now.
func (d *debouncer) event(now time.Time) {
	if d.first.IsZero() {
		d.first = now
	}
	d.last = now
}

// pending reports whether events wait for a flush.
func (d *debouncer) pending() bool { return !d.first.IsZero() }

// due returns when the pending burst should be flushed.
func (d *debouncer) due() time.Time {
	holdoff := d.last.Add(d.holdoff)
	if limit := d.first.Add(d.max); limit.Before(holdoff) {
		return limit
	}
	return holdoff
}

// flushed clears the pending burst.
func (d *debouncer) flushed() { d.first, d.last = time.Time{}, time.Time{} }
