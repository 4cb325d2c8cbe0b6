package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/termsafe"
)

// progress renders runner events: bars per account with ETA on a terminal,
// plain lines otherwise. Its OnEvent is safe for concurrent use.
type progress struct {
	mu      sync.Mutex
	w       io.Writer // plain lines, or text above the bars
	bars    *mpb.Progress
	total   *mpb.Bar
	acct    map[string]*acctBar
	start   time.Time
	n, done int
	items   int64
	bytes   int64
	lastSum time.Time

	globalLast map[migrate.Phase]globalLine // see globalProgress
}

type acctBar struct {
	bar      *mpb.Bar
	size     int64        // bytes expected, 0 when unknown
	phase    atomic.Value // string; read by the bar's render goroutine
	useItems bool
	last     time.Time // last progress update, for the ETA's moving average
}

// isTerminal reports whether w is a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// newProgress returns a renderer writing to w. mode is auto (bars on a
// terminal), bars, plain or none.
func newProgress(w io.Writer, mode string) (*progress, error) {
	p := &progress{w: w, acct: map[string]*acctBar{}, start: time.Now()}
	switch mode {
	case "", "auto":
		if isTerminal(w) {
			mode = "bars"
		} else {
			mode = "plain"
		}
	case "bars", "plain":
	case "none":
		p.w = io.Discard
	default:
		return nil, usageError{fmt.Errorf("--progress %q: want auto, bars, plain or none", mode)}
	}
	if mode == "bars" {
		p.bars = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
		p.w = p.bars
	}
	return p, nil
}

// Writer returns where logs should go so that they do not break the bars.
func (p *progress) Writer() io.Writer { return p.w }

func (p *progress) since() string {
	return fmt.Sprintf("[%6.1fs]", time.Since(p.start).Seconds())
}

// OnEvent consumes one runner event.
func (p *progress) OnEvent(ev migrate.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.(type) {
	case migrate.RunStarted:
		p.n = len(e.Accounts)
		phases := make([]string, len(e.Phases))
		for i, ph := range e.Phases {
			phases[i] = string(ph)
		}
		termsafe.Fprintf(p.w, "%s run %d: %d accounts; phases: %s\n", p.since(), e.RunID, p.n, strings.Join(phases, ", "))
		for _, a := range e.Accounts {
			p.acct[a.Source] = &acctBar{size: a.Size}
		}
		if p.bars != nil {
			p.total = p.bars.AddBar(int64(p.n),
				mpb.PrependDecorators(decor.Name("accounts", decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
				mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Name(" "), decor.Elapsed(decor.ET_STYLE_GO)),
				mpb.BarPriority(1<<30))
		}
	case migrate.PhaseStarted:
		if e.Account == "" {
			termsafe.Fprintf(p.w, "%s %s ...\n", p.since(), e.Phase)
			return
		}
		a := p.acct[e.Account]
		if a == nil {
			a = &acctBar{}
			p.acct[e.Account] = a
		}
		a.phase.Store(string(e.Phase))
		if p.bars != nil && a.bar == nil {
			total := a.size
			if total <= 0 {
				a.useItems, total = true, 1
			}
			name := e.Account
			counter := decor.CountersKiloByte("% .1f / % .1f", decor.WCSyncSpace)
			if a.useItems {
				counter = decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)
			}
			a.bar = p.bars.AddBar(total,
				mpb.PrependDecorators(decor.Name(termsafe.String(name), decor.WCSyncSpaceR),
					decor.Any(func(decor.Statistics) string { s, _ := a.phase.Load().(string); return s }, decor.WCSyncSpaceR),
					counter),
				mpb.AppendDecorators(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace)),
				mpb.BarRemoveOnComplete())
		}
	case migrate.Progress:
		if e.Account == "" {
			p.globalProgress(e)
			return
		}
		a := p.acct[e.Account]
		if a == nil || e.Phase == migrate.PhaseVerify {
			return
		}
		if a.bar != nil {
			cur := e.Bytes
			if a.useItems {
				cur = e.Items
				if e.Total > 0 {
					a.bar.SetTotal(e.Total+1, false)
				}
			} else if e.Phase != migrate.PhaseMail {
				return
			}
			if !a.useItems && cur >= a.size {
				a.size = cur + 1
				a.bar.SetTotal(a.size, false)
			}
			now := time.Now()
			if a.last.IsZero() {
				a.last = now
			}
			a.bar.EwmaSetCurrent(cur, now.Sub(a.last))
			a.last = now
		}
	case migrate.ItemProblem:
		what := "failed"
		if e.Skipped {
			what = "skipped"
		}
		termsafe.Fprintf(p.w, "%s %s %s: %s %s: %s\n", p.since(), e.Account, e.Phase, what, e.Item, e.Reason)
	case migrate.PhaseFinished:
		r := e.Result
		who := e.Account
		if who == "" {
			termsafe.Fprintf(p.w, "%s %s: %s%s\n", p.since(), r.Phase, r.Status, reasonSuffix(r.Reason))
			return
		}
		if r.Phase != migrate.PhaseVerify {
			p.items += r.Copied
			p.bytes += r.Bytes
		}
		if p.bars == nil {
			var deleted string
			if r.Deleted > 0 {
				deleted = fmt.Sprintf(", %d deleted", r.Deleted)
			}
			termsafe.Fprintf(p.w, "%s %s %s: %s, %d copied, %d present, %d skipped, %d failed%s%s\n", p.since(), who, r.Phase,
				r.Status, r.Copied, r.Existing, r.Skipped, r.Failed, deleted, reasonSuffix(r.Reason))
		} else if r.Status == migrate.StatusFailed {
			termsafe.Fprintf(p.w, "%s %s %s: failed%s\n", p.since(), who, r.Phase, reasonSuffix(r.Reason))
		}
		if time.Since(p.lastSum) > 10*time.Second && p.bars == nil {
			p.lastSum = time.Now()
			termsafe.Fprintf(p.w, "%s progress: %d/%d accounts, %d items copied (%.1f MB)\n", p.since(), p.done, p.n, p.items, float64(p.bytes)/1e6)
		}
	case migrate.AccountFinished:
		p.done++
		a := p.acct[e.Account]
		if a != nil && a.bar != nil {
			a.bar.SetTotal(-1, true)
		}
		if p.total != nil {
			p.total.Increment()
		}
		termsafe.Fprintf(p.w, "%s %s: %s (%d/%d)\n", p.since(), e.Account, e.Status, p.done, p.n)
	case migrate.RunFinished:
	}
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

// Close stops the bars and waits for their last render.
func (p *progress) Close() {
	p.mu.Lock()
	bars, total := p.bars, p.total
	var open []*mpb.Bar
	for _, a := range p.acct {
		if a.bar != nil && !a.bar.Completed() {
			open = append(open, a.bar)
		}
	}
	p.mu.Unlock()
	if bars == nil {
		return
	}
	for _, b := range open {
		b.Abort(true)
	}
	if total != nil && !total.Completed() {
		total.Abort(false)
	}
	bars.Wait()
}

// newLogger returns the slog logger the flags ask for.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want text or json", format)}
}
