// Package systemd tells systemd what the edgegate daemon is doing over the
// sd_notify protocol (READY, RELOADING, STOPPING, STATUS, EXTEND_TIMEOUT_USEC)
// and keeps the service watchdog fed while the daemon reports itself healthy.
//
// It wraps github.com/coreos/go-systemd/v22/daemon. Every call is a no-op when
// NOTIFY_SOCKET is unset (the daemon runs outside systemd, in dev mode or in a
// test), so callers never need to branch on how they were started.
//
// The unit files, sysusers.d and tmpfiles.d snippets the appliance ships live
// in units/; README.md states the contract between them and this package.
package systemd
