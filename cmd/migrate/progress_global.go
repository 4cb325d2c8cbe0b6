package main

import (
	"fmt"
	"time"

	"github.com/zxmigrate/zxmigrate/migrate"
)

// globalEvery is how often a global phase's progress is printed.
const globalEvery = 2 * time.Second

// globalLine is the last progress line printed for a global phase.
type globalLine struct {
	at       time.Time
	complete bool
}

// globalProgress prints the progress of a global phase (the transfer:
// bytes and files; SmartScan, restore, export: percent) as a line at most
// every globalEvery, and when it completes. The caller holds p.mu.
func (p *progress) globalProgress(e migrate.Progress) {
	if p.globalLast == nil {
		p.globalLast = map[migrate.Phase]globalLine{}
	}
	complete := e.TotalBytes > 0 && e.Bytes >= e.TotalBytes && e.Items >= e.Total ||
		e.TotalBytes == 0 && e.Total > 0 && e.Items >= e.Total
	last, ok := p.globalLast[e.Phase]
	if ok && (last.complete || time.Since(last.at) < globalEvery && !complete) {
		return
	}
	p.globalLast[e.Phase] = globalLine{at: time.Now(), complete: complete}
	switch {
	case e.TotalBytes > 0:
		fmt.Fprintf(p.w, "%s %s: %3.0f%%, %.1f of %.1f MB, %d/%d entries\n", p.since(), e.Phase,
			100*float64(e.Bytes)/float64(e.TotalBytes), float64(e.Bytes)/1e6, float64(e.TotalBytes)/1e6, e.Items, e.Total)
	case e.Total == 100 && e.Bytes == 0:
		fmt.Fprintf(p.w, "%s %s: %d%%\n", p.since(), e.Phase, e.Items)
	case e.Total > 0:
		fmt.Fprintf(p.w, "%s %s: %d/%d\n", p.since(), e.Phase, e.Items, e.Total)
	case e.Bytes > 0:
		fmt.Fprintf(p.w, "%s %s: %.1f MB\n", p.since(), e.Phase, float64(e.Bytes)/1e6)
	}
}
