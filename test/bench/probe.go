package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/test/harness"
)

// prober sends requests to Envoy's plain-HTTP listener with a chosen Host header and checks
// that the right backend answered for that host.
type prober struct {
	addr string       // Envoy's HTTP listener, host:port
	keep *http.Client // keep-alive connections (how real clients and load balancers talk)
	// alive, if set, is checked between polls: an error (the run was cancelled, a process under
	// test exited) ends the wait at once instead of at its deadline.
	alive func() error
}

func (p *prober) aborted() error {
	if p.alive == nil {
		return nil
	}
	return p.alive()
}

// probeTimeout bounds one request: Envoy answers locally in about a millisecond.
const probeTimeout = 5 * time.Second

func newProber(addr string) *prober {
	return &prober{addr: addr, keep: newClient(addr, true)}
}

func newClient(addr string, keepAlive bool) *http.Client {
	d := &net.Dialer{Timeout: probeTimeout}
	return &http.Client{Timeout: probeTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr) // always Envoy, whatever the Host
		},
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 64,
		MaxIdleConns:        1024,
		IdleConnTimeout:     time.Minute,
	}}
}

// check sends GET / for host and returns nil if the expected backend answered with 200 and saw
// that host. status is the HTTP status (0 on a connection error).
func check(c *http.Client, addr, host, backend string) (status int, err error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return 0, err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s: status %d", host, resp.StatusCode)
	}
	var e harness.Echo
	if err := json.Unmarshal(body, &e); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: body %.80q is not a backend's echo", host, body)
	}
	if e.Backend != backend || e.Host != host {
		return resp.StatusCode, fmt.Errorf("%s: answered by %q for host %q, want %q", host, e.Backend, e.Host, backend)
	}
	return resp.StatusCode, nil
}

func (p *prober) check(host, backend string) error {
	_, err := check(p.keep, p.addr, host, backend)
	return err
}

// waitServed polls host every interval until its backend answers, and returns the time of the
// first correct answer. It gives up at the deadline.
func (p *prober) waitServed(host, backend string, interval time.Duration, deadline time.Time) (time.Time, error) {
	var last error
	for {
		if last = p.check(host, backend); last == nil {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("not served by the deadline: %w", last)
		}
		if err := p.aborted(); err != nil {
			return time.Time{}, fmt.Errorf("%w (last: %v)", err, last)
		}
		time.Sleep(interval)
	}
}

// waitAllServed polls every target until each has answered correctly once, round robin over the
// ones still missing (pausing interval between rounds), until the deadline.
func (p *prober) waitAllServed(targets []target, interval time.Duration, deadline time.Time) (missing int, last error) {
	pending := targets
	for len(pending) > 0 {
		var still []target
		for _, t := range pending {
			if err := p.check(t.host, t.backend); err != nil {
				still = append(still, t)
				last = err
			}
		}
		pending = still
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		if err := p.aborted(); err != nil {
			return len(pending), fmt.Errorf("%w (last: %v)", err, last)
		}
		time.Sleep(interval)
	}
	return len(pending), last
}

// target is a host and the backend that must answer it.
type target struct{ host, backend string }

// sweep requests every target once with workers in parallel (keep-alive) and counts failures.
func (p *prober) sweep(targets []target, workers int) (failed int, firstErr error) {
	var next, bad atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(targets) {
					return
				}
				if err := p.check(targets[i].host, targets[i].backend); err != nil {
					bad.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	wg.Wait()
	return int(bad.Load()), firstErr
}
