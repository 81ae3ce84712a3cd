package systemd

import (
	"errors"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeSystemd is the receiving end of NOTIFY_SOCKET: a real unixgram socket
// in the test's temporary directory, as systemd's /run/systemd/notify is.
type fakeSystemd struct {
	conn *net.UnixConn
}

// listenNotify binds a unixgram socket and points NOTIFY_SOCKET at it for
// the rest of the test.
func listenNotify(t *testing.T) *fakeSystemd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "n.sock")
	return listenNotifyAt(t, path)
}

func listenNotifyAt(t *testing.T, name string) *fakeSystemd {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen on fake notify socket %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return &fakeSystemd{conn: conn}
}

// next blocks (in real time, bounded) for the next datagram.
func (f *fakeSystemd) next(t *testing.T) string {
	t.Helper()
	// A generous bound so a broken sender fails the test instead of hanging it.
	if err := f.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("set read deadline: %v", err)
	}
	buf := make([]byte, 4096)
	n, err := f.conn.Read(buf)
	if err != nil {
		t.Fatalf("read notify datagram: %v", err)
	}
	return string(buf[:n])
}

// drain returns every datagram queued right now without blocking. It reads
// with MSG_DONTWAIT on the raw descriptor, so it never parks in the Go
// network poller and is usable inside a synctest bubble.
func (f *fakeSystemd) drain(t *testing.T) []string {
	t.Helper()
	raw, err := f.conn.SyscallConn()
	if err != nil {
		t.Fatalf("raw notify socket: %v", err)
	}
	var got []string
	buf := make([]byte, 4096)
	for {
		var n int
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			return true
		}); err != nil {
			t.Fatalf("raw read: %v", err)
		}
		if errors.Is(rerr, syscall.EAGAIN) {
			return got
		}
		if rerr != nil {
			t.Fatalf("recvfrom notify socket: %v", rerr)
		}
		got = append(got, string(buf[:n]))
	}
}
