package migrate

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// an inline SVG chart and a small inline script that sorts and filters the
// accounts table; nothing is loaded from the network. Problems come first;
// per-folder details are shown for accounts with problems or notes only
// (the JSON report keeps them all), so that the page for 5,000 accounts
// stays a few megabytes.
func (r *Report) WriteHTML(w io.Writer) error {
	if err := reportTmpl.Execute(w, htmlData{R: r, Chart: throughputChart(r.Throughput)}); err != nil {
		return fmt.Errorf("migrate: write report html: %w", err)
	}
	return nil
}

type htmlData struct {
	R     *Report
	Chart template.HTML
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes": HumanBytes,
	"num":   thousands,
	"dur": func(r *Report) string {
		if r.Finished.IsZero() {
			return "unfinished"
		}
		return r.Finished.Sub(r.Started).Round(1e8).String()
	},
	"states": func() []Status {
		return []Status{StatusDone, StatusPartial, StatusFailed, StatusPending, StatusRunning, StatusInterrupted}
	},
	"counts":          accountCounts,
	"cause":           accountCause,
	"problemAccounts": problemAccounts,
	"problemPhases": func(r *Report) []PhaseResult {
		var out []PhaseResult
		for _, p := range r.Phases {
			if p.Status != StatusDone && p.Status != StatusNotRun {
				out = append(out, p)
			}
		}
		return out
	},
	"noteAccounts": func(r *Report) []detailsView {
		var out []detailsView
		for _, a := range r.Accounts {
			if a.Status == StatusDone && hasNotes(a) {
				out = append(out, detailsView{AccountReport: a})
			}
		}
		return out
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zxmigrate report – run {{.R.RunID}} – {{.R.Outcome}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.done{color:#176f2c}.partial{color:#a05a00}.failed,.interrupted{color:#b00020;font-weight:bold}
.not_run,.pending,.running{color:#777}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;background:#eee}
details{margin:.3em 0}summary{cursor:pointer}
.kpi{display:flex;gap:1em;flex-wrap:wrap}.kpi div{background:#f6f8fa;border:1px solid #ddd;border-radius:6px;padding:.5em 1em}
.kpi b{display:block;font-size:1.3em}
.alarm{border:3px solid #b00020;background:#fdecee;color:#600;padding:.6em 1em;border-radius:6px;margin:1em 0}
.alarm pre{margin:.3em 0;font-size:1.05em;white-space:pre-wrap}
svg text{font:11px sans-serif;fill:#555}svg{max-width:100%;height:auto}
.scroll{overflow-x:auto}.note{color:#777}
.controls{display:flex;gap:.6em;flex-wrap:wrap;align-items:center}
#accounts{table-layout:fixed;min-width:760px}#accounts td{overflow-wrap:anywhere}
#accounts td:nth-child(n+4){text-align:right;font-variant-numeric:tabular-nums}#accounts td:nth-child(10){text-align:left}
#accounts th:nth-child(-n+2){width:22%}#accounts th:nth-child(10){width:13%}
#accounts tr[data-status=done] td:nth-child(3){color:#176f2c}#accounts tr[data-status=partial] td:nth-child(3){color:#a05a00}
#accounts tr[data-status=failed] td:nth-child(3),#accounts tr[data-status=interrupted] td:nth-child(3){color:#b00020;font-weight:bold}
#accounts th button{font:inherit;font-weight:bold;border:0;background:none;padding:0;cursor:pointer}
#accounts th button.asc::after{content:" ▲"}#accounts th button.desc::after{content:" ▼"}
</style></head><body>
<h1>zxmigrate report{{if .R.Plan}}: {{.R.Plan}}{{end}}</h1>
<p>Run {{.R.RunID}} · started {{.R.Started.Format "2006-01-02 15:04:05 MST"}} · {{dur .R}} ·
outcome <span class="badge {{.R.Outcome}}">{{.R.Outcome}}</span> · report format version {{.R.Version}}</p>
{{if eq .R.Outcome "running"}}<p class="running">The run is still in progress (its state file is locked by a live process): these figures are a snapshot.</p>{{end}}
{{define "acct"}}{{$a := .}}<details id="acct-{{$a.Source}}"{{if $a.Open}} open{{end}}><summary><b>{{$a.Source}}</b> → {{$a.Destination}} <span class="{{$a.Status}}">{{$a.Status}}</span>{{if $a.Error}}: {{$a.Error}}{{end}}</summary>
{{range $a.Phases}}{{if or .Details .Problems .Reason}}<h3>{{.Phase}} <span class="{{.Status}}">{{.Status}}</span></h3>
{{if .Reason}}<p>{{.Reason}}</p>{{end}}
{{if .Details}}<div class="scroll"><table><tr><th>folder / collection</th><th>destination</th><th>source</th><th>dest.</th><th>copied</th><th>present</th><th>skipped</th><th>failed</th><th>verified</th><th>note</th></tr>
{{range .Details}}<tr><td>{{.Name}}</td><td>{{.Destination}}</td><td class="n">{{if ge .SourceCount 0}}{{.SourceCount}}{{end}}</td><td class="n">{{if ge .DestCount 0}}{{.DestCount}}{{end}}</td><td class="n">{{.Copied}}</td><td class="n">{{.Existing}}</td><td class="n">{{.Skipped}}</td><td class="n">{{.Failed}}</td><td class="n">{{if or .ToVerify .Verified}}{{num .Verified}} of {{num .ToVerify}}{{end}}</td><td>{{.Note}}</td></tr>
{{end}}</table></div>{{end}}
{{if .Problems}}<div class="scroll"><table><tr><th>item</th><th>outcome</th><th>reason</th></tr>
{{range .Problems}}<tr><td>{{.Item}}</td><td class="{{if .Translated}}done{{else if or .Skipped .Changed}}partial{{else}}failed{{end}}">{{if .Skipped}}skipped{{else if .Changed}}changed{{else if .Translated}}translated{{else}}failed{{end}}</td><td>{{.Reason}}</td></tr>
{{end}}</table></div>{{end}}{{end}}{{end}}
</details>
{{end}}{{define "mta"}}{{with .}}<div class="alarm" id="mta-stopped"><b>The destination MTA {{if .Certain}}is STOPPED{{else}}MAY BE STOPPED (mta_stop did not finish){{end}}: mta_stop ran and mta_start has not.</b>
Mail for the migrated domains is not delivered until it runs. Start it now with:<pre>{{.StartCommand}}</pre>{{if .ResumeCommand}}or finish the run, which starts it at the end:<pre>{{.ResumeCommand}}</pre>{{end}}</div>{{end}}{{end}}
{{template "mta" .R.MTA}}
<div class="kpi">
<div><b>{{.R.Totals.Accounts}}</b>accounts</div>
<div><b class="done">{{.R.Totals.Done}}</b>done</div>
<div><b class="partial">{{.R.Totals.Partial}}</b>partial</div>
<div><b class="failed">{{.R.Totals.Failed}}</b>failed</div>
<div><b>{{.R.Totals.Messages}}</b>messages copied ({{bytes .R.Totals.Bytes}})</div>
<div><b>{{.R.Totals.Events}}</b>calendar objects</div>
<div><b>{{.R.Totals.Contacts}}</b>contacts</div>
<div><b>{{.R.Totals.Existing}}</b>already present</div>{{if .R.Totals.Deleted}}<div><b>{{.R.Totals.Deleted}}</b>deleted (gone from the source)</div>{{end}}
<div><b>{{.R.Totals.Skipped}}</b>skipped</div>
<div><b>{{.R.Totals.Changed}}</b>changed (information lost)</div>
<div><b>{{.R.Totals.Translated}}</b>translated (keywords renamed, nothing lost)</div>
<div><b>{{.R.Totals.FailedN}}</b>failed items</div>
{{if or .R.Totals.ToVerify .R.Totals.Verified}}<div><b>{{num .R.Totals.Verified}} of {{num .R.Totals.ToVerify}}</b>verified</div>{{end}}
</div>

<h2 id="problems">Problems</h2>
{{$probs := problemAccounts .R}}{{$gp := problemPhases .R}}{{if or $probs $gp}}<div class="scroll"><table><thead><tr><th>account or phase</th><th>status</th><th>cause</th></tr></thead><tbody>
{{range $gp}}<tr><td>phase {{.Phase}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{.Reason}}</td></tr>
{{end}}{{range $probs}}<tr><td><a href="#acct-{{.Source}}">{{.Source}}</a></td><td class="{{.Status}}">{{.Status}}</td><td>{{cause .AccountReport}}</td></tr>
{{end}}</tbody></table></div>
{{range $probs}}{{template "acct" .}}{{end}}{{else}}<p class="done">None: every account is done and verified, and every global phase finished.</p>{{end}}

<h2>Global phases</h2>
<div class="scroll"><table><tr><th>phase</th><th>status</th><th>detail</th></tr>
{{range .R.Phases}}<tr><td>{{.Phase}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{.Reason}}</td></tr>
{{else}}<tr><td colspan="3">none</td></tr>{{end}}</table></div>

<h2>Throughput</h2>
{{.Chart}}

<h2>Accounts</h2>
<p class="controls"><input id="q" type="search" placeholder="search accounts" aria-label="search accounts">
<select id="state" aria-label="filter by state"><option value="">all states</option>{{range states}}<option>{{.}}</option>{{end}}</select>
<span id="shown">{{len .R.Accounts}}</span> of {{len .R.Accounts}} shown · click a header to sort · the same table is in report.csv</p>
<div class="scroll"><table id="accounts"><thead><tr><th><button>source</button></th><th><button>destination</button></th><th><button>status</button></th><th><button data-type="n">size</button></th><th><button data-type="n">duration</button></th><th><button data-type="n">copied</button></th><th><button data-type="n">present</button></th><th><button data-type="n">skipped</button></th><th><button data-type="n">failed</button></th><th><button data-type="n">verified</button></th></tr></thead><tbody>
{{range .R.Accounts}}{{$c := counts .}}<tr data-status="{{.Status}}"><td>{{.Source}}<td>{{.Destination}}<td>{{.Status}}<td data-v="{{.Size}}">{{bytes .Size}}<td data-v="{{$c.Seconds}}">{{$c.Duration}}<td>{{$c.Copied}}<td>{{$c.Existing}}<td>{{$c.Skipped}}<td>{{$c.Failed}}<td data-v="{{$c.VerifiedRatio}}">{{$c.Verified}}
{{end}}</tbody></table></div>

{{$notes := noteAccounts .R}}{{if $notes}}<h2>Accounts done, with notes</h2>
{{range $notes}}{{template "acct" .}}{{end}}{{end}}
<p class="note">Per-folder details of accounts without problems are in report.json.</p>

{{if .R.Shares}}<h2>Shares</h2>
<table><tr><th>account</th><th>kind</th><th>folder</th><th>grantee / owner</th><th>rights</th><th>outcome</th><th>reason</th></tr>
{{range .R.Shares}}<tr><td>{{.Account}}</td><td>{{.Kind}}</td><td>{{.Folder}}</td><td>{{.Grantee}}</td><td>{{.Perm}}</td><td>{{.Outcome}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>

{{end}}{{if .R.Files}}<h2>Files (Briefcase)</h2>
<table><tr><th>account</th><th>folder</th><th>document</th><th>versions</th><th>uploaded</th><th>outcome</th><th>reason</th></tr>
{{range .R.Files}}<tr><td>{{.Account}}</td><td>{{.Folder}}</td><td>{{.Name}}</td><td class="n">{{.Versions}}</td><td class="n">{{.Uploaded}}</td><td>{{.Outcome}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>

{{end}}<h2>Not migrated by this procedure</h2>
<p>What this run did not move, each with its reason: shares, mountpoints and saved searches without the shares phase,
Briefcase items without the files phase, and what those phases cannot re-create (guest and key grants). They are
listed here so nobody is surprised.</p>
<table><tr><th>account</th><th>kind</th><th>name</th><th>reason</th></tr>
{{range .R.NotMigrated}}<tr><td>{{.Account}}</td><td>{{.Kind}}</td><td>{{.Name}}</td><td>{{.Reason}}</td></tr>
{{else}}<tr><td colspan="4">nothing found</td></tr>{{end}}</table>
{{template "mta" .R.MTA}}
<p class="note" style="margin-top:3em">Generated by zxmigrate. This page is self-contained: its script is inline, and it loads nothing from the network.</p>
<script>
(function () {
  // Filters and sorts the accounts table in place, without a server.
  var table = document.getElementById("accounts");
  if (!table) return;
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var q = document.getElementById("q"), state = document.getElementById("state"), shown = document.getElementById("shown");
  rows.forEach(function (r) { r.zxText = (r.cells[0].textContent + " " + r.cells[1].textContent).toLowerCase(); });
  function filter() {
    var s = q.value.trim().toLowerCase(), st = state.value, n = 0;
    for (var i = 0; i < rows.length; i++) {
      var ok = (!st || rows[i].dataset.status === st) && (!s || rows[i].zxText.indexOf(s) >= 0);
      rows[i].hidden = !ok;
      if (ok) n++;
    }
    shown.textContent = n;
  }
  q.addEventListener("input", filter);
  state.addEventListener("change", filter);
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, col) {
    var b = th.firstElementChild;
    b.addEventListener("click", function () {
      var asc = !b.classList.contains("asc"), num = b.dataset.type === "n";
      heads.forEach(function (h) { h.firstElementChild.classList.remove("asc", "desc"); });
      b.classList.add(asc ? "asc" : "desc");
      var keyed = rows.map(function (r, i) {
        var c = r.cells[col], v = c.hasAttribute("data-v") ? c.getAttribute("data-v") : c.textContent;
        return { r: r, k: num ? Number(v) : v.toLowerCase(), i: i };
      });
      keyed.sort(function (x, y) {
        var d = x.k < y.k ? -1 : x.k > y.k ? 1 : 0;
        return (asc ? d : -d) || x.i - y.i;
      });
      var f = document.createDocumentFragment();
      rows = keyed.map(function (x) { f.appendChild(x.r); return x.r; });
      body.appendChild(f);
    });
  });
})();
</script>
</body></html>
`))

// throughputChart draws items per second over time as an inline SVG.
func throughputChart(samples []Sample) template.HTML {
	const w, h, left, bottom, top, right = 760.0, 220.0, 60.0, 30.0, 10.0, 30.0
	if len(samples) < 2 {
		return template.HTML(`<p>Not enough samples for a chart.</p>`)
	}
	type pt struct{ x, y float64 }
	var pts []pt
	// Rates are taken over windows of at least 1/40 of the run, so that a
	// last sample a few milliseconds after the one before cannot draw a
	// spike; a short tail is folded into the window before it.
	minDt := (samples[len(samples)-1].Seconds - samples[0].Seconds) / 40
	anchor, prevAnchor := 0, 0
	for i := 1; i < len(samples); i++ {
		dt := samples[i].Seconds - samples[anchor].Seconds
		last := i == len(samples)-1
		if dt <= 0 || (dt < minDt && !last) {
			continue
		}
		if dt < minDt && len(pts) > 0 {
			pts, anchor = pts[:len(pts)-1], prevAnchor
			dt = samples[i].Seconds - samples[anchor].Seconds
		}
		rate := float64(samples[i].Items-samples[anchor].Items) / dt
		if rate < 0 {
			rate = 0
		}
		pts = append(pts, pt{samples[i].Seconds, rate})
		prevAnchor, anchor = anchor, i
	}
	if len(pts) == 0 {
		return template.HTML(`<p>Not enough samples for a chart.</p>`)
	}
	maxX, maxY := samples[len(samples)-1].Seconds, 0.0
	for _, p := range pts {
		maxY = math.Max(maxY, p.y)
	}
	if maxX <= 0 {
		maxX = 1
	}
	if maxY <= 0 {
		maxY = 1
	}
	maxY = niceCeil(maxY)
	sx := func(x float64) float64 { return left + x/maxX*(w-left-right) }
	sy := func(y float64) float64 { return h - bottom - y/maxY*(h-bottom-top) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="items per second over time">`, w, h, w, h)
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="#fbfbfb" stroke="#ccc"/>`, left, top, w-left-right, h-bottom-top)
	for i := 0; i <= 4; i++ {
		y := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`, left, sy(y), w-right, sy(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%.0f</text>`, left-4, sy(y)+4, y)
	}
	for i := 0; i <= 4; i++ {
		x := maxX * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.1fs</text>`, sx(x), h-bottom+16, x)
	}
	b.WriteString(`<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="`)
	fmt.Fprintf(&b, "%.1f,%.1f ", sx(samples[0].Seconds), sy(0))
	for _, p := range pts {
		fmt.Fprintf(&b, "%.1f,%.1f ", sx(p.x), sy(p.y))
	}
	b.WriteString(`"/>`)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">items/s (messages + DAV objects)</text>`, left+6, top+14)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers only
}

func niceCeil(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

// detailsView is an account whose per-phase details the page shows; Open
// unfolds them.
type detailsView struct {
	AccountReport
	Open bool
}

// openDetailsMax is how many accounts with problems the page may have for
// their details to be unfolded: beyond it they stay folded (one click), so
// that a page of thousands of accounts lays out quickly.
const openDetailsMax = 20

// problemAccounts lists the accounts that are not done (done means
// copied, nothing skipped or failed, and verified when verify ran).
func problemAccounts(r *Report) []detailsView {
	var out []detailsView
	for _, a := range r.Accounts {
		if a.Status != StatusDone {
			out = append(out, detailsView{AccountReport: a})
		}
	}
	if len(out) <= openDetailsMax {
		for i := range out {
			out[i].Open = out[i].Status != StatusPartial
		}
	}
	return out
}

// hasNotes reports whether a done account has something to read besides
// counts: item problems (translated keywords) or a phase's reason.
func hasNotes(a AccountReport) bool {
	for _, p := range a.Phases {
		if len(p.Problems) > 0 || p.Reason != "" {
			return true
		}
	}
	return false
}

// accountCause is why an account is not done, in one line.
func accountCause(a AccountReport) string {
	var parts []string
	if a.Error != "" {
		parts = append(parts, a.Error)
	}
	for _, p := range a.Phases {
		if p.Status == StatusDone || p.Status == StatusNotRun {
			continue
		}
		s := fmt.Sprintf("%s %s", p.Phase, p.Status)
		switch {
		case p.Reason != "":
			s += ": " + p.Reason
		case p.Phase == PhaseVerify && (p.ToVerify > 0 || p.Verified > 0):
			s += ": " + p.VerifiedText()
		default:
			var n []string
			for _, c := range []struct {
				n    int64
				what string
			}{{p.Failed, "failed"}, {p.Skipped, "skipped"}, {p.Changed, "changed"}} {
				if c.n > 0 {
					n = append(n, fmt.Sprintf("%d %s", c.n, c.what))
				}
			}
			if len(n) > 0 {
				s += ": " + strings.Join(n, ", ")
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// rowCounts is an account's row in the accounts table.
type rowCounts struct {
	Seconds                           string // for sorting
	Duration                          string
	Copied, Existing, Skipped, Failed int64
	Verified                          string
	VerifiedRatio                     string // for sorting; -1 without a proof
}

// accountCounts sums an account's phases as WriteCSV does: the duration is
// the sum of the phases' durations; verification is the verify phase's
// "N of M verified".
func accountCounts(a AccountReport) rowCounts {
	var c rowCounts
	var secs float64
	c.Verified, c.VerifiedRatio = "–", "-1"
	for _, p := range a.Phases {
		if !p.Started.IsZero() && !p.Finished.IsZero() {
			secs += p.Finished.Sub(p.Started).Seconds()
		}
		if p.Phase == PhaseVerify {
			if p.ToVerify > 0 || p.Verified > 0 {
				c.Verified = p.VerifiedText()
				ratio := 1.0
				if p.ToVerify > 0 {
					ratio = float64(p.Verified) / float64(p.ToVerify)
				}
				c.VerifiedRatio = strconv.FormatFloat(ratio, 'f', 4, 64)
			} else if p.Status != StatusNotRun {
				c.Verified = string(p.Status)
			}
			continue
		}
		c.Copied += p.Copied
		c.Existing += p.Existing
		c.Skipped += p.Skipped
		c.Failed += p.Failed
	}
	c.Seconds = strconv.FormatFloat(secs, 'f', 1, 64)
	c.Duration = "–"
	if secs > 0 {
		c.Duration = (time.Duration(secs*10) * time.Second / 10).String()
	}
	return c
}
