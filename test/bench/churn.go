package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/test/harness"
)

// loadStats counts what a bounded client loop against existing routes saw.
type loadStats struct {
	requests, non2xx, wrong, connErrors atomic.Int64
	mu                                  sync.Mutex
	samples                             []string // the first few failures
	done                                chan struct{}
}

func (s *loadStats) fail(what string) {
	s.mu.Lock()
	if len(s.samples) < 5 {
		s.samples = append(s.samples, time.Now().Format("15:04:05.000")+" "+what)
	}
	s.mu.Unlock()
}

// Load loop shape: loadWorkers clients, half on keep-alive connections and half opening a new
// connection per request (so both reuse and the listener's accept path are covered), each
// sending one request every loadInterval: ~400 requests/s in all, enough to see any error
// window and little enough to leave the two cores to the controller and Envoy.
const (
	loadWorkers  = 4
	loadInterval = 10 * time.Millisecond
)

// runLoad sends requests to random existing targets until stop is closed or maxDur passes.
func runLoad(addr string, targets []target, stop <-chan struct{}, maxDur time.Duration) *loadStats {
	s := &loadStats{done: make(chan struct{})}
	var wg sync.WaitGroup
	deadline := time.Now().Add(maxDur)
	for w := range loadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(addr, w%2 == 0)
			tick := time.NewTicker(loadInterval)
			defer tick.Stop()
			for time.Now().Before(deadline) {
				t := targets[rand.IntN(len(targets))]
				status, err := check(c, addr, t.host, t.backend)
				s.requests.Add(1)
				switch {
				case err == nil:
				case status == 0:
					s.connErrors.Add(1)
					s.fail(err.Error())
				case status < 200 || status > 299:
					s.non2xx.Add(1)
					s.fail(err.Error())
				default:
					s.wrong.Add(1)
					s.fail(err.Error())
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	go func() { wg.Wait(); close(s.done) }()
	return s
}

func (s *loadStats) wait() { <-s.done }

// longLived holds connections open across changes, each sending a request on its own TCP
// connection every longLivedInterval (HTTP/1.1 keep-alive): a connection counts as broken if the
// server closes it, a request on it fails, or a response is not the route's backend.
type longLived struct {
	requests, broken atomic.Int64
	mu               sync.Mutex
	samples          []string
	wg               sync.WaitGroup
}

// longLivedInterval: once a second per connection, 100 connections → 100 requests/s.
const longLivedInterval = time.Second

func startLongLived(addr string, targets []target, n int, stop <-chan struct{}, maxDur time.Duration) (*longLived, error) {
	l := &longLived{}
	deadline := time.Now().Add(maxDur)
	for i := range n {
		conn, err := net.DialTimeout("tcp", addr, probeTimeout)
		if err != nil {
			return nil, fmt.Errorf("open long-lived connection %d: %w", i, err)
		}
		t := targets[rand.IntN(len(targets))]
		l.wg.Add(1)
		go l.run(conn, t, stop, deadline)
	}
	return l, nil
}

func (l *longLived) run(conn net.Conn, t target, stop <-chan struct{}, deadline time.Time) {
	defer l.wg.Done()
	defer conn.Close()
	br := bufio.NewReader(conn)
	// Spread the connections' requests over the interval.
	time.Sleep(time.Duration(rand.Int64N(int64(longLivedInterval))))
	for time.Now().Before(deadline) {
		if err := oneRequest(conn, br, t); err != nil {
			l.broken.Add(1)
			l.mu.Lock()
			if len(l.samples) < 5 {
				l.samples = append(l.samples, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
			l.mu.Unlock()
			return
		}
		l.requests.Add(1)
		select {
		case <-stop:
			return
		case <-time.After(longLivedInterval):
		}
	}
}

func oneRequest(conn net.Conn, br *bufio.Reader, t target) error {
	_ = conn.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", t.host); err != nil {
		return fmt.Errorf("%s: write: %w", t.host, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("%s: read: %w", t.host, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: read body: %w", t.host, err)
	}
	var e harness.Echo
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &e) != nil || e.Backend != t.backend {
		return fmt.Errorf("%s: status %d body %.80q, want 200 from %s", t.host, resp.StatusCode, body, t.backend)
	}
	if resp.Close {
		return fmt.Errorf("%s: server closes the connection (Connection: close)", t.host)
	}
	return nil
}
