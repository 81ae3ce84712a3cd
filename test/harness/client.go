package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Client sends requests to Envoy's listeners on 127.0.0.1 with a chosen Host
// header (and SNI for TLS), whatever the URL would say, and decodes the
// backend's Echo. Every request opens a new connection, so each one also
// proves the listener itself is there. The zero Timeout means
// DefaultRequestTimeout.
type Client struct {
	HTTPAddr  string         // host:port of the plain-HTTP listener
	HTTPSAddr string         // host:port of the TLS listener
	Roots     *x509.CertPool // CAs trusted for the TLS listener
	Timeout   time.Duration
}

// DefaultRequestTimeout bounds one request; Envoy answers locally in
// milliseconds, so seconds mean something is wrong.
const DefaultRequestTimeout = 3 * time.Second

// Response is what came back from one request.
type Response struct {
	Status int
	Body   string
	Echo   *Echo // nil unless the body was a backend's Echo
	// PeerCertificates is the chain the TLS listener served (TLS only).
	PeerCertificates []*x509.Certificate
}

// Backend is the name of the backend that answered, or "" if none did.
func (r *Response) Backend() string {
	if r.Echo == nil {
		return ""
	}
	return r.Echo.Backend
}

func (r *Response) String() string {
	if r.Echo != nil {
		return fmt.Sprintf("%d from backend %q (host %q, path %q)", r.Status, r.Echo.Backend, r.Echo.Host, r.Echo.Path)
	}
	body := r.Body
	if len(body) > 200 {
		body = body[:200] + "..."
	}
	return fmt.Sprintf("%d %q", r.Status, body)
}

// Get sends GET path with Host: host to the HTTP listener.
func (c *Client) Get(host, path string) (*Response, error) {
	return c.do(c.HTTPAddr, nil, host, path)
}

// GetTLS sends GET path with Host: host over TLS with the given SNI to the
// HTTPS listener, verifying the served certificate against Roots for sni.
func (c *Client) GetTLS(sni, host, path string) (*Response, error) {
	return c.do(c.HTTPSAddr, &tls.Config{ServerName: sni, RootCAs: c.Roots, MinVersion: tls.VersionTLS12}, host, path)
}

func (c *Client) do(addr string, tlsCfg *tls.Config, host, path string) (*Response, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultRequestTimeout
	}
	dialer := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr) // always Envoy's listener, never the Host
		},
		TLSClientConfig:   tlsCfg,
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}
	defer tr.CloseIdleConnections()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	req, err := http.NewRequest(http.MethodGet, scheme+"://"+addr+path, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Host = host
	resp, err := (&http.Client{Transport: tr, Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s%s via %s: %w", host, path, addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read body of %s%s: %w", host, path, err)
	}
	r := &Response{Status: resp.StatusCode, Body: string(body)}
	if resp.TLS != nil {
		r.PeerCertificates = resp.TLS.PeerCertificates
	}
	var echo Echo
	if resp.Header.Get("Content-Type") == "application/json" && json.Unmarshal(body, &echo) == nil && echo.Backend != "" {
		r.Echo = &echo
	}
	return r, nil
}

// ExpectBackend checks that r came from backend want and that the backend
// saw the host and path the client sent.
func ExpectBackend(r *Response, host, path, want string) error {
	if r.Status != http.StatusOK || r.Echo == nil {
		return fmt.Errorf("GET %s%s: got %s, want 200 from backend %q", host, path, r, want)
	}
	if r.Echo.Backend != want {
		return fmt.Errorf("GET %s%s: got %s, want backend %q", host, path, r, want)
	}
	if r.Echo.Path != path {
		return fmt.Errorf("GET %s%s: backend saw path %q, want %q", host, path, r.Echo.Path, path)
	}
	return nil
}

// WaitBackend polls until GET host+path on the HTTP listener is answered by
// backend want.
func (c *Client) WaitBackend(t testing.TB, host, path, want string) {
	t.Helper()
	Eventually(t, DefaultTimeout, fmt.Sprintf("wait for %s%s -> %s", host, path, want), func() error {
		r, err := c.Get(host, path)
		if err != nil {
			return err
		}
		return ExpectBackend(r, host, path, want)
	})
}

// WaitStatus polls until GET host+path on the HTTP listener answers status
// without reaching any backend.
func (c *Client) WaitStatus(t testing.TB, host, path string, status int) {
	t.Helper()
	Eventually(t, DefaultTimeout, fmt.Sprintf("wait for %s%s -> %d", host, path, status), func() error {
		return c.CheckStatus(host, path, status)
	})
}

// CheckStatus sends one request and checks its status and that no backend
// answered it.
func (c *Client) CheckStatus(host, path string, status int) error {
	r, err := c.Get(host, path)
	if err != nil {
		return err
	}
	if r.Status != status || r.Echo != nil {
		return fmt.Errorf("GET %s%s: got %s, want %d from envoy itself", host, path, r, status)
	}
	return nil
}

// CheckBackend sends one request and checks which backend answered.
func (c *Client) CheckBackend(host, path, want string) error {
	r, err := c.Get(host, path)
	if err != nil {
		return err
	}
	return ExpectBackend(r, host, path, want)
}

// LoadResult counts the outcome of a bounded request loop.
type LoadResult struct {
	Sent     int
	Failures int
	Errors   []string // the first few failures
}

// Load sends up to count requests (one every interval, never beyond
// maxDuration) and counts every answer that is not from backend want. stop,
// if not nil, ends the loop early when closed.
func (c *Client) Load(host, path, want string, count int, interval, maxDuration time.Duration, stop <-chan struct{}) LoadResult {
	var res LoadResult
	deadline := time.Now().Add(maxDuration)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for res.Sent < count && time.Now().Before(deadline) {
		res.Sent++
		err := c.CheckBackend(host, path, want)
		if err != nil {
			res.Failures++
			if len(res.Errors) < 10 {
				res.Errors = append(res.Errors, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
		}
		select {
		case <-stop:
			return res
		case <-tick.C:
		}
	}
	return res
}
