package main

import (
	"fmt"
	"strings"
	"time"
)

// table renders the results as one markdown table: metric | each controller | target.
func table(o *options, results []*result) string {
	type row struct {
		metric string
		value  func(r *result) string
		target string
	}
	ms := func(d time.Duration) string {
		if d >= 10*time.Second {
			return d.Round(100 * time.Millisecond).String()
		}
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	na := "n/a"
	rows := []row{
		{"objects created (Ingress+Service+EndpointSlice per route)", func(r *result) string {
			if r.genTime == 0 {
				return na
			}
			return fmt.Sprintf("%d in %s (%.0f/s)", r.genObjects, r.genTime.Round(100*time.Millisecond), float64(r.genObjects)/r.genTime.Seconds())
		}, "-"},
		{"1. route activation p50 / p99 / max (create accepted → first correct 200)", func(r *result) string {
			if len(r.act) == 0 {
				return na
			}
			s := fmt.Sprintf("%s / %s / %s (n=%d)", ms(percentile(r.act, .5)), ms(percentile(r.act, .99)), ms(percentile(r.act, 1)), len(r.act))
			if r.actFailed > 0 {
				s += fmt.Sprintf(", %d timed out", r.actFailed)
			}
			return s
		}, "p99 ≤ 200 ms at 100k, flat 10k→200k"},
		{"2. xDS bytes per route change (controller's metric)", func(r *result) string {
			if r.actSentBytes < 0 || len(r.act) == 0 {
				return na
			}
			return bytesStr(r.actSentBytes)
		}, "≤ 8 KiB"},
		{"2. xDS bytes per route change (Envoy rx on the xDS connection)", func(r *result) string {
			if r.actEnvoyBytes < 0 || len(r.act) == 0 {
				return na
			}
			return bytesStr(r.actEnvoyBytes)
		}, "≤ 8 KiB"},
		{"2. controller CPU per route change", func(r *result) string {
			if len(r.act) == 0 {
				return na
			}
			return ms(r.actCPU)
		}, "report"},
		{"3. controller RSS / Go heap in use at N", func(r *result) string {
			if r.ctrlRSS == 0 {
				return na
			}
			return fmt.Sprintf("%s / %s", mib(r.ctrlRSS), mib(int64(r.ctrlHeap)))
		}, "≤ 1 GiB at 200k"},
		{"4. Envoy RSS at N (after cold start / after restart)", func(r *result) string {
			if r.envoyRSS == 0 {
				return na
			}
			s := mib(r.envoyRSS)
			if r.envoyRSS2 > 0 {
				s += " / " + mib(r.envoyRSS2)
			}
			return s
		}, "≤ 2 GiB at 100k"},
		{"4. Envoy apply time (new Envoy, warm controller → sampled routes served)", func(r *result) string {
			if !r.envoyApplyOK {
				return na
			}
			return ms(r.envoyApply)
		}, "report"},
		{"5. cold start (controller start → sampled routes served)", func(r *result) string {
			if !r.coldOK {
				return na
			}
			return fmt.Sprintf("%s (Envoy started at +%s, when the xDS port accepted)", ms(r.coldStart), ms(r.xdsOpen))
		}, "≤ 30 s at 200k"},
		{"5. routes not served after cold start (full sweep of N)", func(r *result) string {
			if !r.sweepDone {
				return na
			}
			return fmt.Sprintf("%d / %d", r.sweepFailed, r.n)
		}, "0"},
		{"   controller busy after cold start (status backlog)", func(r *result) string {
			if r.settle == 0 {
				return na
			}
			if !r.settled {
				return "still busy after " + r.settle.Round(time.Second).String()
			}
			return "idle after " + r.settle.Round(time.Second).String()
		}, "-"},
		{"6. churn: routes added one at a time / time / all served after", func(r *result) string {
			if r.churnAdded == 0 {
				return na
			}
			s := fmt.Sprintf("%d / %s / %s", r.churnAdded, r.churnTime.Round(100*time.Millisecond), ms(r.churnConverge))
			if !r.churnOK {
				s += " (not all served)"
			}
			return s
		}, "-"},
		{"6. churn: client requests / non-2xx / connection errors / wrong backend", func(r *result) string {
			if r.load == nil {
				return na
			}
			return fmt.Sprintf("%d / %d / %d / %d", r.load.requests.Load(), r.load.non2xx.Load(), r.load.connErrors.Load(), r.load.wrong.Load())
		}, "0 non-2xx, 0 resets"},
		{"6. long-lived connections broken (open across N changes)", func(r *result) string {
			if r.ll == nil {
				return na
			}
			return fmt.Sprintf("%d / %d across %d changes (%d requests)", r.ll.broken.Load(), r.llOpen, r.llChanges, r.ll.requests.Load())
		}, "0 across 1,000"},
		{"   controller CPU during churn", func(r *result) string {
			if r.churnAdded == 0 {
				return na
			}
			return r.churnCPU.Round(10 * time.Millisecond).String()
		}, "-"},
		{"   after churn: controller RSS / heap, Envoy RSS", func(r *result) string {
			if r.finalCtrlRSS == 0 {
				return na
			}
			return fmt.Sprintf("%s / %s, %s", mib(r.finalCtrlRSS), mib(int64(r.finalHeap)), mib(r.finalEnvoyRSS))
		}, "-"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## edgegate scale benchmark: N = %d routes, %d activations, %d churn routes, %d long-lived connections\n\n",
		o.routes, o.changes, o.churn, o.longLived)
	b.WriteString("| metric |")
	for _, r := range results {
		fmt.Fprintf(&b, " %s |", r.name)
	}
	b.WriteString(" target |\n|---|")
	for range results {
		b.WriteString("---|")
	}
	b.WriteString("---|\n")
	for _, rw := range rows {
		fmt.Fprintf(&b, "| %s |", rw.metric)
		for _, r := range results {
			fmt.Fprintf(&b, " %s |", rw.value(r))
		}
		fmt.Fprintf(&b, " %s |\n", rw.target)
	}
	for _, r := range results {
		if r.desc != "" {
			fmt.Fprintf(&b, "\n- %s: measured %s", r.name, r.desc)
		}
		for _, n := range r.notes {
			fmt.Fprintf(&b, "\n- %s: %s", r.name, n)
		}
	}
	return b.String()
}

func bytesStr(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
