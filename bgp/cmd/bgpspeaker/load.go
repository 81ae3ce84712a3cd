package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// LoadResult is what the load subcommand prints.
type LoadResult struct {
	OK       int64            `json:"ok"`
	Failed   int64            `json:"failed"`
	Backends map[string]int64 `json:"backends"`
	Errors   []string         `json:"errors,omitempty"` // the first few
	// ErrorsAt is when each failed request (the first 100) failed, in Unix nanoseconds, for tests that
	// correlate failures with router events.
	ErrorsAt []int64 `json:"errorsAt,omitempty"`
	Seconds  float64 `json:"seconds"`
}

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	url := fs.String("url", "", "URL to GET")
	n := fs.Int("n", 1000, "requests (upper bound)")
	c := fs.Int("c", 4, "concurrent clients")
	maxDur := fs.Duration("max", 30*time.Second, "stop after this long even if -n is not reached")
	timeout := fs.Duration("timeout", 2*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	var next, ok, failed atomic.Int64
	var mu sync.Mutex
	res := LoadResult{Backends: map[string]int64{}}
	deadline := time.Now().Add(*maxDur)
	start := time.Now()
	var wg sync.WaitGroup
	for range *c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(*n) && time.Now().Before(deadline) {
				resp, err := client.Get(*url)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if len(res.Errors) < 5 {
						res.Errors = append(res.Errors, err.Error())
					}
					if len(res.ErrorsAt) < 100 {
						res.ErrorsAt = append(res.ErrorsAt, time.Now().UnixNano())
					}
				} else {
					ok.Add(1)
					res.Backends[string(body)]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.OK, res.Failed, res.Seconds = ok.Load(), failed.Load(), time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// LongLivedResult is what the longlived subcommand prints after the stdin line.
type LongLivedResult struct {
	Before []string `json:"before"` // backend per connection
	After  []string `json:"after"`  // backend per connection on reuse, "" if broken
}

func runLongLived(args []string) error {
	fs := flag.NewFlagSet("longlived", flag.ContinueOnError)
	addr := fs.String("addr", "", "host:port")
	conns := fs.Int("conns", 40, "connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	get := func(c conn) (string, error) {
		c.c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c.c, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
			return "", err
		}
		req, _ := http.NewRequest("GET", "/", nil)
		resp, err := http.ReadResponse(c.r, req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	var cs []conn
	res := LongLivedResult{}
	for range *conns {
		// Distinct source ports give distinct flow hashes on the router.
		nc, err := net.DialTimeout("tcp", *addr, 2*time.Second)
		if err != nil {
			return err
		}
		c := conn{nc, bufio.NewReader(nc)}
		b, err := get(c)
		if err != nil {
			return fmt.Errorf("first request: %w", err)
		}
		cs = append(cs, c)
		res.Before = append(res.Before, b)
	}
	fmt.Println(`{"ready":true}`)
	bufio.NewReader(os.Stdin).ReadString('\n')
	for _, c := range cs {
		b, err := get(c)
		if err != nil {
			b = ""
		}
		res.After = append(res.After, b)
		c.c.Close()
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
