package systemd

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends sd_notify datagrams to the service manager named by the
// NOTIFY_SOCKET environment variable.
//
// A Notifier is safe for concurrent use by multiple goroutines: it holds no
// mutable state, and every method sends exactly one datagram on a fresh
// connection, so a message is never interleaved with another. The order in
// which concurrent calls reach systemd is not defined; callers that need an
// order (STOPPING=1 after the last STATUS=) must make the calls from one
// goroutine. No method blocks for longer than one local datagram write.
//
// The environment is read on every call, not captured by New, so the
// variables must stay set for the life of the process.
type Notifier struct {
	log *slog.Logger
}

// New returns a Notifier that logs through log. A nil log discards messages.
// New starts nothing and does not touch the socket.
func New(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{log: log}
}

// Ready sends READY=1: start-up is complete (or a reload finished). With
// Type=notify, systemd keeps the unit "activating", and holds back units
// ordered after it, until this arrives; the watchdog is armed from here on.
func (n *Notifier) Ready() error {
	return n.send(daemon.SdNotifyReady)
}

// Reloading sends RELOADING=1 together with MONOTONIC_USEC, which systemd
// (Type=notify-reload, v253+) requires to tie the message to a reload
// request. The unit is shown as "reloading" until the next Ready.
func (n *Notifier) Reloading() error {
	return n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping sends STOPPING=1: a graceful shutdown has begun. systemd moves
// the unit to "deactivating", stops the watchdog and starts the
// TimeoutStopSec clock, after which it sends SIGKILL.
func (n *Notifier) Stopping() error {
	return n.send(daemon.SdNotifyStopping)
}

// Status sends STATUS=s, the one-line text `systemctl status` shows.
// Line breaks in s are replaced by spaces: a newline would end the
// assignment and let the rest be read as another notify variable.
func (n *Notifier) Status(s string) error {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return n.send("STATUS=" + s)
}

// ExtendTimeout sends EXTEND_TIMEOUT_USEC: the current start, stop or
// reload may take d longer from now than TimeoutStartSec or
// TimeoutStopSec allow. Send it repeatedly while making progress (a large
// cluster sync at start, a long Envoy drain at stop); systemd kills the
// service if d passes without another extension or completion.
func (n *Notifier) ExtendTimeout(d time.Duration) error {
	return n.send("EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10))
}

// send delivers one datagram. It returns nil when NOTIFY_SOCKET is unset.
func (n *Notifier) send(state string) error {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		return fmt.Errorf("sd_notify %q: %w", firstLine(state), err)
	}
	if sent {
		n.log.Debug("sd_notify sent", "state", firstLine(state))
	}
	return nil
}

// firstLine keeps error and log text on one line.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
