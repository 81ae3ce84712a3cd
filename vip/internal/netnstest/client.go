package netnstest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
)

var errResetBeforeAnswer = errors.New("connection reset before any answer")

// Sample is one request of a client loop.
type Sample struct {
	At   time.Time // when the request started
	Node string    // who answered ("" on failure)
	Err  error
	// Retried: the first attempt's established connection was reset before any answer byte and one immediate
	// retry was made, as an HTTP client or Envoy does for an idempotent request ("retry on reset"). An L2 move
	// breaks the TCP connections in flight at the instant neighbours switch MAC: the new owner has no state for
	// them. A failed retry is a failure.
	Retried bool
}

// Ask connects to a:Port from the client namespace and returns the answering node's name.
func (l *Lab) Ask(a netip.Addr, timeout time.Duration) (string, error) {
	var name string
	err := InNS(l.Client, func() error {
		var err error
		name, err = ask(a, timeout)
		return err
	})
	return name, err
}

func ask(a netip.Addr, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(a.String(), strconv.Itoa(Port)), timeout)
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		// The handshake completed (a refused SYN is ECONNREFUSED) and the connection was reset before connect
		// returned: the same in-flight reset as below.
		return "", fmt.Errorf("%w: %w", errResetBeforeAnswer, err)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	if err != nil && strings.HasSuffix(string(b), "\n") {
		// The whole answer arrived; the reset hit the connection's teardown (our FIN/ACK reached the new owner).
		err = nil
	}
	if len(b) == 0 && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		return "", fmt.Errorf("%w: %w", errResetBeforeAnswer, err)
	}
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(b))
	if name == "" {
		return "", errors.New("empty answer")
	}
	return name, nil
}

// Loop is a bounded client request loop against one VIP, running in the client namespace.
type Loop struct {
	stop chan struct{}
	done chan []Sample
}

// StartLoop sends one request every interval (each on a new connection, with timeout) until Stop, at most max
// requests or for at most maxDur.
func (l *Lab) StartLoop(a netip.Addr, interval, timeout time.Duration, max int, maxDur time.Duration) *Loop {
	lp := &Loop{stop: make(chan struct{}), done: make(chan []Sample, 1)}
	go func() {
		var samples []Sample
		err := InNS(l.Client, func() error {
			deadline := time.Now().Add(maxDur)
			t := time.NewTicker(interval)
			defer t.Stop()
			for len(samples) < max && time.Now().Before(deadline) {
				start := time.Now()
				name, err := ask(a, timeout)
				retried := false
				if errors.Is(err, errResetBeforeAnswer) {
					retried = true
					name, err = ask(a, timeout)
				}
				samples = append(samples, Sample{At: start, Node: name, Err: err, Retried: retried})
				select {
				case <-lp.stop:
					return nil
				case <-t.C:
				}
			}
			return nil
		})
		if err != nil {
			samples = append(samples, Sample{At: time.Now(), Err: err})
		}
		lp.done <- samples
	}()
	return lp
}

// Stop ends the loop and returns its samples.
func (lp *Loop) Stop() []Sample {
	close(lp.stop)
	return <-lp.done
}

// Failed counts failed samples.
func Failed(s []Sample) int {
	n := 0
	for _, x := range s {
		if x.Err != nil {
			n++
		}
	}
	return n
}

// Retried counts samples that needed the retry on reset.
func Retried(s []Sample) int {
	n := 0
	for _, x := range s {
		if x.Retried {
			n++
		}
	}
	return n
}

// Interruption is the time from event to the first successful answer by a node other than old, and the number of
// failed requests in between. ok is false when no such answer came.
func Interruption(s []Sample, event time.Time, old string) (d time.Duration, failed int, ok bool) {
	for _, x := range s {
		if x.At.Before(event) {
			continue
		}
		if x.Err == nil && x.Node != old {
			return x.At.Sub(event), failed, true
		}
		if x.Err != nil {
			failed++
		}
	}
	return 0, failed, false
}

// Answerers returns who answered, in order of first answer.
func Answerers(s []Sample) []string {
	var out []string
	for _, x := range s {
		if x.Err == nil && !slices.Contains(out, x.Node) {
			out = append(out, x.Node)
		}
	}
	return out
}

// ARPAnswers sends one ARP request for a from the client and returns the distinct MACs that replied within wait.
func (l *Lab) ARPAnswers(a netip.Addr, wait time.Duration) ([]string, error) {
	var macs []string
	err := InNS(l.Client, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := arp.Dial(ifi)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Request(a); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(wait))
		for {
			p, _, err := c.Read()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return nil
				}
				return err
			}
			if p.Operation == arp.OperationReply && p.SenderIP == a && !slices.Contains(macs, p.SenderHardwareAddr.String()) {
				macs = append(macs, p.SenderHardwareAddr.String())
			}
		}
	})
	return macs, err
}

// MAC returns the node's eth0 hardware address.
func (nd *Node) MAC() string {
	var mac string
	err := InNS(nd.NS, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr.String()
		return nil
	})
	if err != nil {
		nd.lab.t.Fatalf("mac of %s: %v", nd.Name, err)
	}
	return mac
}

// String formats samples compactly for failure messages.
func String(s []Sample) string {
	var b strings.Builder
	for _, x := range s {
		if x.Err != nil {
			fmt.Fprintf(&b, "%s err %v\n", x.At.Format("15:04:05.000"), x.Err)
		} else {
			fmt.Fprintf(&b, "%s %s\n", x.At.Format("15:04:05.000"), x.Node)
		}
	}
	return b.String()
}
