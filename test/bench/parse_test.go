package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParsePromSum(t *testing.T) {
	page := `# HELP edgegate_xds_sent_bytes_total Bytes of delta xDS responses sent.
# TYPE edgegate_xds_sent_bytes_total counter
edgegate_xds_sent_bytes_total{type="type.googleapis.com/envoy.config.cluster.v3.Cluster"} 4.743836e+06
edgegate_xds_sent_bytes_total{type="type.googleapis.com/envoy.config.listener.v3.Listener"} 4180
edgegate_xds_sent_bytes_total_extra 7
go_memstats_heap_inuse_bytes 2.5e+08
`
	for name, tc := range map[string]struct {
		metric string
		labels []string
		want   float64
	}{
		"sum over labels":      {"edgegate_xds_sent_bytes_total", nil, 4743836 + 4180},
		"label filter":         {"edgegate_xds_sent_bytes_total", []string{"Listener"}, 4180},
		"no labels":            {"go_memstats_heap_inuse_bytes", nil, 2.5e8},
		"longer name excluded": {"edgegate_xds_sent_bytes_total_extra", nil, 7},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := parsePromSum(strings.NewReader(page), tc.metric, tc.labels...)
			if err != nil || got != tc.want {
				t.Errorf("parsePromSum(%s, %v) = %v, %v; want %v", tc.metric, tc.labels, got, err, tc.want)
			}
		})
	}
	if _, err := parsePromSum(strings.NewReader(page), "missing_metric"); err == nil {
		t.Error("parsePromSum of a missing metric: no error")
	}
}

func TestParseEnvoyStat(t *testing.T) {
	page := "cluster.edgegate-xds.upstream_cx_rx_bytes_total: 123456\ncluster.other.upstream_cx_rx_bytes_total: 9\n"
	got, err := parseEnvoyStat(strings.NewReader(page), "cluster.edgegate-xds.upstream_cx_rx_bytes_total")
	if err != nil || got != 123456 {
		t.Errorf("got %v, %v; want 123456", got, err)
	}
	if _, err := parseEnvoyStat(strings.NewReader(page), "cluster.contour.upstream_cx_rx_bytes_total"); err == nil {
		t.Error("missing stat: no error")
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(d, q); got != want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", q, got, want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestOwnProcess(t *testing.T) {
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Errorf("cpuTime: %v", err)
	}
	r, err := rss(os.Getpid())
	if err != nil || r <= 0 {
		t.Errorf("rss = %d, %v; want > 0", r, err)
	}
}

func TestSampleTargets(t *testing.T) {
	all := make([]target, 1000)
	for i := range all {
		all[i] = target{host: strings.Repeat("x", i%7), backend: string(rune('a' + i%26))}
	}
	s := sampleTargets(all, 100)
	if len(s) != 100 || s[0] != all[0] || s[99] != all[999] {
		t.Errorf("sample: len %d, first %v, last %v; want 100 from first to last", len(s), s[0], s[len(s)-1])
	}
}
