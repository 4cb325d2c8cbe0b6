// Command mailbench measures `migrate mail` against mbsync on two loopback
// Dovecots: cold copy and no-op re-run, N runs each,
// medians, ratios and peak RSS from /usr/bin/time -v; then one cold copy of
// a small corpus with a 50 MB message for the memory bound. bench/mail.sh
// builds and runs it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zxmigrate/zxmigrate/bench/internal/benchutil"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
)

func main() {
	migrate := flag.String("migrate", "", "path of the migrate binary")
	summaryFile := flag.String("summaries", "", "append every run's stdout (migrate's summary tables) to this file")
	mbsync := flag.String("mbsync", "mbsync", "path of mbsync (empty to skip)")
	messages := flag.Int("messages", 0, "corpus size (0: the 10,121-message reference)")
	runs := flag.Int("runs", 3, "runs per measurement")
	huge := flag.Bool("huge", true, "also measure RSS with a 50 MB message")
	extra := flag.String("migrate-args", "", "extra arguments for migrate mail, space separated (e.g. \"--max-writers 1\")")
	work := flag.String("dir", "", "scratch directory (default: a temp dir)")
	flag.Parse()
	if *summaryFile != "" {
		f, err := os.Create(*summaryFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailbench:", err)
			os.Exit(1)
		}
		defer f.Close()
		summaries = f
	}
	if *migrate == "" {
		fmt.Fprintln(os.Stderr, "mailbench: -migrate is required")
		os.Exit(2)
	}
	extraArgs = strings.Fields(*extra)
	if err := bench(*migrate, *mbsync, *messages, *runs, *huge, *work); err != nil {
		fmt.Fprintln(os.Stderr, "mailbench:", err)
		os.Exit(1)
	}
}

var extraArgs []string

type result struct {
	wall time.Duration
	rss  int64 // KiB
	code int
	cpu  time.Duration // the client's user+sys
	srv  time.Duration // both Dovecots' user+sys (their reaped children)
	srcS time.Duration // of which the source's
}

// servers are the Dovecots whose CPU timed adds to each result.
var servers []*testserver.Dovecot

// serverCPU sums user+sys of the servers (benchutil.ProcCPU), first the
// source's alone (servers[0]), then all.
func serverCPU() (src, all time.Duration) {
	for k, d := range servers {
		all += benchutil.ProcCPU(d.PID())
		if k == 0 {
			src = all
		}
	}
	return src, all
}

func bench(migrate, mbsync string, messages, runs int, huge bool, dir string) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "mailbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	src, dst, err := startPair(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	defer dst.Close()
	servers = []*testserver.Dovecot{src, dst}
	t0 := time.Now()
	acc := corpus.Generate(testserver.DefaultUser, corpus.Options{Messages: messages, Events: -1, Contacts: -1})
	if err := src.Seed(ctx, testserver.DefaultUser, acc.Mail); err != nil {
		return err
	}
	var total int64
	for _, m := range acc.Mail.Messages {
		total += int64(len(m.Raw))
	}
	fmt.Printf("corpus: %d messages, %.1f MB, seeded in %v\n", len(acc.Mail.Messages), float64(total)/1e6, time.Since(t0).Round(time.Millisecond))
	acc = nil

	env := append(os.Environ(), "MIGRATE_FROM_PASSWORD="+testserver.DefaultPassword, "MIGRATE_TO_PASSWORD="+testserver.DefaultPassword)
	statePath := filepath.Join(dir, "state.db")
	migArgs := []string{migrate, "mail", "--from", "imap://" + testserver.DefaultUser + "@" + src.Addr,
		"--to", "imap://" + testserver.DefaultUser + "@" + dst.Addr, "--allow-plaintext", "--state", statePath}
	migArgs = append(migArgs, extraArgs...)

	resetAll := func() error {
		for _, f := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
			os.Remove(f)
		}
		os.RemoveAll(filepath.Join(dir, "mbsync"))
		if err := dst.ResetUser(ctx, testserver.DefaultUser); err != nil {
			return err
		}
		exec.Command("sync").Run()
		time.Sleep(time.Second)
		return nil
	}
	var migCold, migNoop, mbCold, mbNoop []result
	for i := 0; i < runs; i++ {
		if err := resetAll(); err != nil {
			return err
		}
		r, err := timed(env, migArgs...)
		if err != nil {
			return err
		}
		migCold = append(migCold, r)
		fmt.Printf("migrate cold run %d: %v, %d MB RSS, exit %d, %s\n", i+1, r.wall.Round(time.Millisecond), r.rss/1024, r.code, cpuLine(r))
		r, err = timed(env, migArgs...)
		if err != nil {
			return err
		}
		migNoop = append(migNoop, r)
		fmt.Printf("migrate no-op run %d: %v, %d MB RSS, exit %d, %s\n", i+1, r.wall.Round(time.Millisecond), r.rss/1024, r.code, cpuLine(r))
	}
	if mbsync != "" {
		rc := filepath.Join(dir, "mbsyncrc")
		if err := os.WriteFile(rc, []byte(mbsyncRC(src.Addr, dst.Addr, filepath.Join(dir, "mbsync")+"/")), 0o600); err != nil {
			return err
		}
		for i := 0; i < runs; i++ {
			if err := resetAll(); err != nil {
				return err
			}
			os.MkdirAll(filepath.Join(dir, "mbsync"), 0o700)
			r, err := timed(nil, mbsync, "-c", rc, "AtoB")
			if err != nil {
				return err
			}
			mbCold = append(mbCold, r)
			fmt.Printf("mbsync cold run %d: %v, %d MB RSS, exit %d, %s\n", i+1, r.wall.Round(time.Millisecond), r.rss/1024, r.code, cpuLine(r))
			r, err = timed(nil, mbsync, "-c", rc, "AtoB")
			if err != nil {
				return err
			}
			mbNoop = append(mbNoop, r)
			fmt.Printf("mbsync no-op run %d: %v, %d MB RSS, exit %d, %s\n", i+1, r.wall.Round(time.Millisecond), r.rss/1024, r.code, cpuLine(r))
		}
	}
	var hugeRes *result
	if huge {
		s2, d2, err := startPair(ctx)
		if err != nil {
			return err
		}
		defer s2.Close()
		defer d2.Close()
		small := corpus.Generate(testserver.DefaultUser, corpus.Options{Seed: 5, Messages: 300, Huge: true, Events: -1, Contacts: -1})
		if err := s2.Seed(ctx, testserver.DefaultUser, small.Mail); err != nil {
			return err
		}
		args := []string{migrate, "mail", "--from", "imap://" + testserver.DefaultUser + "@" + s2.Addr,
			"--to", "imap://" + testserver.DefaultUser + "@" + d2.Addr, "--allow-plaintext"}
		r, err := timed(env, args...)
		if err != nil {
			return err
		}
		hugeRes = &r
		fmt.Printf("migrate cold with a 50 MB message: %v, %d MB RSS, exit %d\n", r.wall.Round(time.Millisecond), r.rss/1024, r.code)
	}

	fmt.Println()
	fmt.Println("| Run | median wall | runs | peak RSS (max) | ratio to mbsync | median CPU: client / source / destination |")
	fmt.Println("|---|---|---|---|---|---|")
	row := func(name string, rs, ref []result) {
		if len(rs) == 0 {
			return
		}
		ratio := "–"
		if len(ref) > 0 {
			ratio = fmt.Sprintf("%.2f", median(rs).Seconds()/median(ref).Seconds())
		}
		fmt.Printf("| %s | %.2f s | %s | %d MB | %s | %.2f / %.2f / %.2f s |\n", name, median(rs).Seconds(), walls(rs), maxRSS(rs)/1024, ratio,
			medianOf(rs, func(r result) time.Duration { return r.cpu }).Seconds(),
			medianOf(rs, func(r result) time.Duration { return r.srcS }).Seconds(),
			medianOf(rs, func(r result) time.Duration { return r.srv - r.srcS }).Seconds())
	}
	row("migrate mail cold", migCold, mbCold)
	row("mbsync cold", mbCold, nil)
	row("migrate mail no-op re-run", migNoop, mbNoop)
	row("mbsync no-op re-run", mbNoop, nil)
	if hugeRes != nil {
		fmt.Printf("| migrate mail cold, 300 msgs + one 50 MB message | %.2f s | 1 | %d MB | – |\n", hugeRes.wall.Seconds(), hugeRes.rss/1024)
	}
	return nil
}

func startPair(ctx context.Context) (src, dst *testserver.Dovecot, err error) {
	src, err = testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "bench-src"})
	if err != nil {
		return nil, nil, err
	}
	dst, err = testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "bench-dst"})
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, dst, nil
}

var (
	reWall = regexp.MustCompile(`Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)`)
	reUser = regexp.MustCompile(`User time \(seconds\): (\S+)`)
	reSys  = regexp.MustCompile(`System time \(seconds\): (\S+)`)
	reRSS  = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)
)

// summaries, when set, receives the stdout of every timed run.
var summaries *os.File

// timed runs argv under /usr/bin/time -v.
func timed(env []string, argv ...string) (result, error) {
	cmd := exec.Command("/usr/bin/time", append([]string{"-v"}, argv...)...)
	if env != nil {
		cmd.Env = env
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	var outb bytes.Buffer
	cmd.Stdout = &outb
	defer func() {
		if summaries != nil {
			fmt.Fprintf(summaries, "==== %s\n%s\n", strings.Join(argv, " "), outb.String())
		}
	}()
	start := time.Now()
	src0, srv0 := serverCPU()
	err := cmd.Run()
	r := result{wall: time.Since(start)}
	time.Sleep(200 * time.Millisecond) // let the masters reap their imap processes
	src1, srv1 := serverCPU()
	r.srv, r.srcS = srv1-srv0, src1-src0
	for _, re := range []*regexp.Regexp{reUser, reSys} {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			f, _ := strconv.ParseFloat(m[1], 64)
			r.cpu += time.Duration(f * float64(time.Second))
		}
	}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	if m := reRSS.FindStringSubmatch(errb.String()); m != nil {
		r.rss, _ = strconv.ParseInt(m[1], 10, 64)
	} else {
		return r, fmt.Errorf("%s: no time -v output (%v): %s", argv[0], err, tail(errb.String()))
	}
	if m := reWall.FindStringSubmatch(errb.String()); m != nil {
		if d, ok := parseClock(m[1]); ok {
			r.wall = d
		}
	}
	if r.code != 0 && r.code != 3 {
		return r, fmt.Errorf("%s exited %d: %s", argv[0], r.code, tail(errb.String()))
	}
	return r, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

func parseClock(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	var secs float64
	for _, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return 0, false
		}
		secs = secs*60 + v
	}
	return time.Duration(secs * float64(time.Second)), true
}

// cpuLine is the CPU part of a run's line.
func cpuLine(r result) string {
	return fmt.Sprintf("client CPU %v, servers CPU %v (source %v, destination %v)", r.cpu.Round(10*time.Millisecond),
		r.srv.Round(10*time.Millisecond), r.srcS.Round(10*time.Millisecond), (r.srv - r.srcS).Round(10*time.Millisecond))
}

func median(rs []result) time.Duration {
	return medianOf(rs, func(r result) time.Duration { return r.wall })
}

// medianOf is the median of one measure of the runs.
func medianOf(rs []result, of func(result) time.Duration) time.Duration {
	w := make([]time.Duration, len(rs))
	for i, r := range rs {
		w[i] = of(r)
	}
	sort.Slice(w, func(i, j int) bool { return w[i] < w[j] })
	if len(w)%2 == 1 {
		return w[len(w)/2]
	}
	return (w[len(w)/2-1] + w[len(w)/2]) / 2
}

func walls(rs []result) string {
	var l []string
	for _, r := range rs {
		l = append(l, fmt.Sprintf("%.2f", r.wall.Seconds()))
	}
	return strings.Join(l, " / ")
}

func maxRSS(rs []result) int64 {
	var m int64
	for _, r := range rs {
		m = max(m, r.rss)
	}
	return m
}

// mbsyncRC configures the peer for the test user on both servers.
func mbsyncRC(srcAddr, dstAddr, state string) string {
	return testserver.MbsyncConfig(srcAddr, dstAddr, testserver.DefaultUser, testserver.DefaultPassword, testserver.DefaultPassword, state)
}
