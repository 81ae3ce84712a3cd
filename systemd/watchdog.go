package systemd

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// RunWatchdog feeds the systemd service watchdog until ctx is done.
//
// It reads WATCHDOG_USEC (set by WatchdogSec=) and, every half of that
// timeout as sd_watchdog_enabled(3) advises, calls healthy and sends
// WATCHDOG=1 only if healthy returned nil. A daemon that stays unhealthy, or
// whose healthy blocks, therefore misses the deadline and systemd restarts
// it (WatchdogSignal, SIGABRT by default, makes the Go runtime dump every
// goroutine's stack to the journal first). The first check and ping happen
// immediately.
//
// healthy is a liveness check, not a fitness check: it must return an error
// only when a restart is the right remedy (an owner loop stopped answering),
// never because Envoy or a remote cluster is down, since restarting edgegate
// fixes neither. One failed check is enough to miss the deadline. healthy is
// called from RunWatchdog's goroutine only, never concurrently with itself.
//
// RunWatchdog returns nil at once when no watchdog is configured for this
// process (WATCHDOG_USEC unset, or WATCHDOG_PID naming another process) or
// NOTIFY_SOCKET is unset, and returns nil when ctx is done. It returns an
// error only for a malformed WATCHDOG_USEC or WATCHDOG_PID. A failed send is
// logged and retried at the next tick, not returned: systemd may be
// restarting itself. Run it in its own goroutine; it does not return while
// healthy blocks.
func (n *Notifier) RunWatchdog(ctx context.Context, healthy func() error) error {
	timeout, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("read systemd watchdog settings: %w", err)
	}
	if timeout == 0 || os.Getenv("NOTIFY_SOCKET") == "" {
		n.log.Debug("systemd watchdog not configured")
		return nil
	}
	interval := timeout / 2
	n.log.Info("systemd watchdog running", "timeout", timeout, "interval", interval)

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var w watchdogState
	for {
		n.tick(&w, healthy, timeout)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// watchdogState remembers the last outcome so each change is logged once
// instead of every interval.
type watchdogState struct {
	unhealthy bool
	sendFails bool
}

// tick runs one health check and, if it passes, one ping.
func (n *Notifier) tick(w *watchdogState, healthy func() error, timeout time.Duration) {
	if err := healthy(); err != nil {
		if !w.unhealthy {
			n.log.Error("withholding systemd watchdog ping, service will be restarted unless health returns",
				"error", err, "timeout", timeout)
		}
		w.unhealthy = true
		return
	}
	if w.unhealthy {
		n.log.Info("healthy again, resuming systemd watchdog pings")
		w.unhealthy = false
	}
	if err := n.send(daemon.SdNotifyWatchdog); err != nil {
		if !w.sendFails {
			n.log.Warn("systemd watchdog ping failed, retrying at the next interval", "error", err)
		}
		w.sendFails = true
		return
	}
	if w.sendFails {
		n.log.Info("systemd watchdog ping delivered again")
		w.sendFails = false
	}
}
