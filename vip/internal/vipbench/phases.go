package main

import (
	"bufio"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/edgegate/edgegate/vip/internal/netnstest"
)

// phases are the instants of one failover, from the survivors' logs, relative to the kill (0: not seen).
type phases struct {
	suspect time.Duration // first "Suspect <victim> has failed" (memberlist: a probe of the victim failed)
	dead    time.Duration // first local verdict: memberlist's "Marking <victim> as failed" or vip's fast path
	gained  time.Duration // first "vip gained" of the VIP (address added and routed locally)
	sent    time.Duration // first "vip announced" of the VIP (gratuitous ARP sent)
	answer  time.Duration // first answer by a survivor in the client loop
}

// logTimes returns the times of log lines of nd after since that contain every one of subs.
func logTimes(nd *netnstest.Node, since time.Time, subs ...string) []time.Time {
	var out []time.Time
	sc := bufio.NewScanner(strings.NewReader(nd.Log()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		ok := strings.HasPrefix(line, "time=")
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if !ok {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err == nil && t.After(since) {
			out = append(out, t)
		}
	}
	return out
}

// first is the earliest of ts relative to since, 0 if none.
func first(since time.Time, ts []time.Time) time.Duration {
	var best time.Duration
	for _, t := range ts {
		if d := t.Sub(since); best == 0 || d < best {
			best = d
		}
	}
	return best
}

func measurePhases(l *netnstest.Lab, victim *netnstest.Node, kill time.Time, vip string) phases {
	var sus, dead, gained, sent []time.Time
	for _, nd := range l.Nodes {
		if nd == victim {
			continue
		}
		sus = append(sus, logTimes(nd, kill, "Suspect "+victim.Name+" has failed")...)
		dead = append(dead, logTimes(nd, kill, "Marking "+victim.Name+" as failed")...)
		dead = append(dead, logTimes(nd, kill, "port refused", "peer="+victim.Name)...)
		gained = append(gained, logTimes(nd, kill, "vip gained", "vip="+vip)...)
		sent = append(sent, logTimes(nd, kill, "vip announced", "vip="+vip)...)
	}
	return phases{suspect: first(kill, sus), dead: first(kill, dead), gained: first(kill, gained), sent: first(kill, sent)}
}

func (p phases) String() string {
	r := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("suspect %s, dead %s, gained %s, announced %s, answer %s", r(p.suspect), r(p.dead), r(p.gained), r(p.sent), r(p.answer))
}

// phaseSummary prints p50/p99 of every phase and of the steps between them.
func phaseSummary(ps []phases) {
	type col struct {
		name string
		f    func(phases) time.Duration
	}
	cols := []col{
		{"kill -> suspect (probe wait + probe interval)", func(p phases) time.Duration { return p.suspect }},
		{"suspect -> dead (suspicion or fast path)", func(p phases) time.Duration { return sub(p.dead, p.suspect) }},
		{"dead -> gained (gossip, coalescer, address, route)", func(p phases) time.Duration { return sub(p.gained, p.dead) }},
		{"gained -> announced (GARP sent)", func(p phases) time.Duration { return sub(p.sent, p.gained) }},
		{"announced -> client answer (ARP update, next request)", func(p phases) time.Duration { return sub(p.answer, p.sent) }},
		{"kill -> client answer", func(p phases) time.Duration { return p.answer }},
	}
	fmt.Println("failover phases (from the survivors' logs):")
	for _, c := range cols {
		var s []time.Duration
		for _, p := range ps {
			if d := c.f(p); d != 0 {
				s = append(s, d)
			}
		}
		if len(s) == 0 {
			continue
		}
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		fmt.Printf("  %-52s p50 %6v  p99 %6v  min %6v  max %6v  (%d)\n", c.name, pct(s, 50), pct(s, 99),
			s[0].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
	}
}

func sub(a, b time.Duration) time.Duration {
	if a == 0 || b == 0 {
		return 0
	}
	return a - b
}
