package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zxmigrate/zxmigrate/bench/internal/benchutil"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/internal/pace"
)

// wanRow is one timed copy through the delay lines.
type wanRow struct {
	tool    string
	rtt     time.Duration
	wall    time.Duration
	objects int // objects at the destination afterwards
	dups    int // destination objects whose UID another object of the same collection has
	puts    int // PUT requests the destination served
	reqs    int // requests of any method the destination served
}

// wan copies ne events and nc contacts from a seeded in-process go-webdav
// server (keep-alive, no wait per write) to an empty one, each behind a
// delay line (internal/faultproxy.DelayLine, half the RTT each way), with
// the caldav and carddav copiers side by side at each concurrency, and
// with vdirsyncer when it is installed, at each RTT. The copiers use the
// process's default HTTP client, which paces each host at pace.DefaultRate
// requests per second (Zimbra's DoSFilter default), and then a client
// without the pacer, which shows how much of the round trips the copy
// hides by itself. vdirsyncer has no pacer. The source is named
// "localhost" and the destination "127.0.0.1", so that, as two servers of
// a real migration, each has its own budget. Runs alternate the tools;
// the median of runs is printed.
func wan(ne, nc int, rtts []time.Duration, concs []int, runs int) error {
	ctx := context.Background()
	src := memdav.New()
	src.AddUser("user1", "pass1")
	if err := seedMem(src, ne, nc); err != nil {
		return err
	}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sln.Close()
	go http.Serve(sln, src)
	vds, _ := exec.LookPath("vdirsyncer")
	n := ne + nc
	ceiling := pace.DefaultRate * pace.DefaultHeadroom
	fmt.Printf("DAV over a delay line: %d events + %d vCards, go-webdav servers in this process (keep-alive, no wait per write); pacer %.1f requests/s per host\n", ne, nc, ceiling)
	var rows []wanRow
	for _, rtt := range rtts {
		sl, err := faultproxy.ListenDelay(sln.Addr().String(), faultproxy.DelayOptions{Delay: rtt / 2})
		if err != nil {
			return err
		}
		_, sport, _ := net.SplitHostPort(sl.Addr())
		from := "http://localhost:" + sport + "/"
		type tool struct {
			name    string
			conc    int
			unpaced bool
		}
		var tools []tool
		for _, c := range concs {
			tools = append(tools, tool{fmt.Sprintf("zxmigrate, concurrency %d", c), c, false})
		}
		for _, c := range concs {
			tools = append(tools, tool{fmt.Sprintf("zxmigrate, concurrency %d, unpaced", c), c, true})
		}
		if vds != "" {
			tools = append(tools, tool{"vdirsyncer (unpaced)", 0, false})
		}
		for run := 0; run < runs; run++ {
			for _, t := range tools {
				dst := memdav.New()
				dst.AddUser("user1", "pass1")
				dln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				hs := &http.Server{Handler: dst}
				go hs.Serve(dln)
				dl, err := faultproxy.ListenDelay(dln.Addr().String(), faultproxy.DelayOptions{Delay: rtt / 2})
				if err != nil {
					return err
				}
				to := "http://" + dl.Addr() + "/"
				t0 := time.Now()
				if t.conc == 0 {
					err = runVdirsyncer(ctx, vds, from, to)
				} else {
					os.Setenv("DAVBENCH_CONCURRENCY", strconv.Itoa(t.conc))
					os.Setenv("DAVBENCH_UNPACED", map[bool]string{true: "1", false: ""}[t.unpaced])
					_, err = copyBoth(ctx, from, to)
				}
				wall := time.Since(t0)
				dl.Close()
				hs.Close()
				if err != nil {
					sl.Close()
					return fmt.Errorf("%s at %v: %w", t.name, rtt, err)
				}
				r := wanRow{tool: t.name, rtt: rtt, wall: wall, puts: dst.Requests(http.MethodPut)}
				for _, m := range []string{"PROPFIND", "REPORT", "MKCOL", "MKCALENDAR", http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodHead} {
					r.reqs += dst.Requests(m)
				}
				for _, c := range dst.Collections("user1") {
					seen := map[string]bool{}
					for _, o := range dst.Snapshot("user1", c) {
						r.objects++
						if seen[o.UID] {
							r.dups++
						}
						seen[o.UID] = true
					}
				}
				fmt.Printf("rtt %v run %d %s: %v, %d objects (%d duplicated, want %d), %d PUT, %d requests at the destination, %.1f objects/s, load %s\n",
					rtt, run+1, t.name, wall.Round(time.Millisecond), r.objects, r.dups, n, r.puts, r.reqs, float64(r.objects)/wall.Seconds(), benchutil.LoadAvg())
				rows = append(rows, r)
			}
		}
		sl.Close()
	}
	fmt.Println()
	fmt.Printf("| RTT | client | wall, median (runs) | objects/s | destination requests/s | objects at destination (want %d), duplicated |\n", n)
	fmt.Println("|---|---|---|---|---|---|")
	type key struct {
		tool string
		rtt  time.Duration
	}
	var order []key
	by := map[key][]wanRow{}
	for _, r := range rows {
		k := key{r.tool, r.rtt}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], r)
	}
	for _, k := range order {
		rs := append([]wanRow(nil), by[k]...)
		var walls []string
		for _, r := range rs {
			walls = append(walls, fmt.Sprintf("%.1f", r.wall.Seconds()))
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].wall < rs[j].wall })
		m := rs[len(rs)/2]
		fmt.Printf("| %d ms | %s | %.1f s (%s) | %.1f | %.1f | %d, %d |\n", k.rtt.Milliseconds(), k.tool, m.wall.Seconds(), strings.Join(walls, " / "),
			float64(m.objects)/m.wall.Seconds(), float64(m.reqs)/m.wall.Seconds(), m.objects, m.dups)
	}
	return nil
}

// runVdirsyncer syncs user1's calendars and address books one way from
// one server to the other (the configuration of bench/dav.sh).
func runVdirsyncer(ctx context.Context, bin, from, to string) error {
	dir, err := os.MkdirTemp("", "davbench-vds")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[general]\nstatus_path = %q\n", filepath.Join(dir, "status")+"/")
	for _, kind := range []string{"caldav", "carddav"} {
		fmt.Fprintf(&cfg, `
[pair %[1]s]
a = "src_%[1]s"
b = "dst_%[1]s"
collections = ["from a"]
conflict_resolution = "a wins"

[storage src_%[1]s]
type = "%[1]s"
url = %[2]q
username = "user1"
password = "pass1"
read_only = true

[storage dst_%[1]s]
type = "%[1]s"
url = %[3]q
username = "user1"
password = "pass1"
`, kind, from, to)
	}
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	for _, args := range [][]string{{"-c", path, "discover"}, {"-c", path, "sync"}} {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = strings.NewReader(strings.Repeat("y\n", 16))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("vdirsyncer %s: %v: %s", args[len(args)-1], err, tail(string(out)))
		}
	}
	return nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// parseList reads "a,b,c" with conv.
func parseList[T any](s string, conv func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := conv(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("bad list item %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}
