// Command wanbench measures `migrate mail` against mbsync and imapsync
// through a delay line (internal/faultproxy.DelayLine) in front of each of
// two Dovecots, at several round-trip times: wall time, msg/s, client CPU,
// the bytes each link carried each way, medians over runs and the ratios
// between the tools. The tools alternate within each run, so a drift in the
// machine's load touches all of them alike. bench/wan.sh builds and runs
// it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zxmigrate/zxmigrate/bench/internal/benchutil"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
)

func main() {
	var o options
	flag.StringVar(&o.migrate, "migrate", "", "path of the migrate binary")
	flag.StringVar(&o.mbsync, "mbsync", "mbsync", "path of mbsync (empty to skip)")
	flag.StringVar(&o.imapsync, "imapsync", "", "path of the imapsync script (empty to skip)")
	flag.IntVar(&o.messages, "messages", 0, "corpus size (0: the 10,121-message reference)")
	rtts := flag.String("rtt", "0,5,20,50", "round-trip times to each server in ms, comma separated")
	flag.BoolVar(&o.deep, "deep", true, "also run migrate mail --deep-verify (once per RTT)")
	flag.IntVar(&o.runs, "runs", 3, "runs of migrate mail and mbsync per RTT")
	flag.IntVar(&o.imapsyncRuns, "imapsync-runs", 1, "runs of imapsync per RTT")
	flag.DurationVar(&o.imapsyncCap, "imapsync-cap", 0, "stop imapsync after this long and rate it on the messages it copied (0: no cap)")
	flag.StringVar(&o.dir, "dir", "", "scratch directory (default: a temp dir)")
	extra := flag.String("migrate-args", "", "extra arguments for migrate mail, space separated (e.g. \"--log-level debug\")")
	flag.StringVar(&o.logs, "logs", "", "write each run's standard error to a file in this directory")
	flag.Parse()
	if o.migrate == "" {
		fmt.Fprintln(os.Stderr, "wanbench: -migrate is required")
		os.Exit(2)
	}
	for _, f := range strings.Split(*rtts, ",") {
		ms, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || ms < 0 {
			fmt.Fprintf(os.Stderr, "wanbench: bad -rtt %q\n", f)
			os.Exit(2)
		}
		o.rtts = append(o.rtts, time.Duration(ms*float64(time.Millisecond)))
	}
	if o.runs < 1 {
		o.runs = 1
	}
	o.extra = strings.Fields(*extra)
	if err := bench(o); err != nil {
		fmt.Fprintln(os.Stderr, "wanbench:", err)
		os.Exit(1)
	}
}

type options struct {
	migrate, mbsync, imapsync string
	messages                  int
	rtts                      []time.Duration
	deep                      bool
	runs, imapsyncRuns        int
	imapsyncCap               time.Duration
	dir                       string
	extra                     []string // for migrate mail
	logs                      string
}

// result is one timed run.
type result struct {
	tool             string
	rtt              time.Duration
	wall, cpu        time.Duration
	code             int
	capped           bool  // stopped at the cap before it finished
	copied           int64 // messages on the destination afterwards
	srcRead, srcSent int64 // bytes from / to the source server
	dstRead, dstSent int64 // bytes from / to the destination server
}

func (r result) rate() float64 { return float64(r.copied) / r.wall.Seconds() }

// variant is one tool's command line at one RTT.
type variant struct {
	tool string
	env  []string
	argv []string
	runs int
	cap  time.Duration
}

const (
	toolMigrate  = "migrate mail"
	toolDeep     = "migrate mail --deep-verify"
	toolMbsync   = "mbsync"
	toolImapsync = "imapsync"
)

func bench(o options) error {
	ctx := context.Background()
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "wanbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	src, err := testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "wan-src"})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "wan-dst"})
	if err != nil {
		return err
	}
	defer dst.Close()
	acc := corpus.Generate(testserver.DefaultUser, corpus.Options{Messages: o.messages, Events: -1, Contacts: -1})
	if err := src.Seed(ctx, testserver.DefaultUser, acc.Mail); err != nil {
		return err
	}
	var total int64
	for _, m := range acc.Mail.Messages {
		total += int64(len(m.Raw))
	}
	nmsg := len(acc.Mail.Messages)
	fmt.Printf("corpus: %d messages, %.1f MB; delay line in front of each server (half the RTT each way)\n", nmsg, float64(total)/1e6)
	acc = nil

	env := append(os.Environ(), "MIGRATE_FROM_PASSWORD="+testserver.DefaultPassword, "MIGRATE_TO_PASSWORD="+testserver.DefaultPassword)
	statePath := filepath.Join(dir, "state.db")
	passfile := filepath.Join(dir, "imap-pass")
	if err := os.WriteFile(passfile, []byte(testserver.DefaultPassword+"\n"), 0o600); err != nil {
		return err
	}
	reset := func() error {
		for _, f := range []string{statePath, statePath + "-wal", statePath + "-shm"} {
			os.Remove(f)
		}
		os.RemoveAll(filepath.Join(dir, "mbsync"))
		os.RemoveAll(filepath.Join(dir, "imapsync"))
		return dst.ResetUser(ctx, testserver.DefaultUser)
	}
	var all []result
	for _, rtt := range o.rtts {
		opt := faultproxy.DelayOptions{Delay: rtt / 2}
		sl, err := faultproxy.ListenDelay(src.Addr, opt)
		if err != nil {
			return err
		}
		dl, err := faultproxy.ListenDelay(dst.Addr, opt)
		if err != nil {
			sl.Close()
			return err
		}
		base := []string{o.migrate, "mail", "--from", "imap://" + testserver.DefaultUser + "@" + sl.Addr(),
			"--to", "imap://" + testserver.DefaultUser + "@" + dl.Addr(), "--allow-plaintext", "--state", statePath}
		base = append(base, o.extra...)
		vs := []variant{{tool: toolMigrate, env: env, argv: base, runs: o.runs}}
		if o.deep {
			vs = append(vs, variant{tool: toolDeep, env: env, argv: append(append([]string{}, base...), "--deep-verify"), runs: 1})
		}
		if o.mbsync != "" {
			rc := filepath.Join(dir, fmt.Sprintf("mbsyncrc-%d", rtt.Microseconds()))
			if err := os.WriteFile(rc, []byte(mbsyncRC(sl.Addr(), dl.Addr(), filepath.Join(dir, "mbsync")+"/")), 0o600); err != nil {
				return err
			}
			vs = append(vs, variant{tool: toolMbsync, argv: []string{o.mbsync, "-c", rc, "AtoB"}, runs: o.runs})
		}
		if o.imapsync != "" && o.imapsyncRuns > 0 {
			vs = append(vs, variant{tool: toolImapsync, argv: imapsyncArgv(o.imapsync, sl.Addr(), dl.Addr(), passfile, filepath.Join(dir, "imapsync")),
				runs: o.imapsyncRuns, cap: o.imapsyncCap})
		}
		maxRuns := 0
		for _, v := range vs {
			maxRuns = max(maxRuns, v.runs)
		}
		for run := 0; run < maxRuns; run++ {
			for _, v := range vs {
				if run >= v.runs {
					continue
				}
				if err := reset(); err != nil {
					return err
				}
				os.MkdirAll(filepath.Join(dir, "mbsync"), 0o700)
				os.MkdirAll(filepath.Join(dir, "imapsync"), 0o700)
				s0, d0 := sl.Stats(), dl.Stats()
				var logf string
				if o.logs != "" {
					logf = filepath.Join(o.logs, fmt.Sprintf("%s-%v-%d.log", strings.ReplaceAll(v.tool, " ", "_"), rtt, run+1))
				}
				r, err := timed(v.env, v.cap, logf, v.argv...)
				if err != nil {
					sl.Close()
					dl.Close()
					return err
				}
				s1, d1 := sl.Stats(), dl.Stats()
				r.tool, r.rtt = v.tool, rtt
				r.srcRead, r.srcSent = s1.BytesToClient-s0.BytesToClient, s1.BytesToServer-s0.BytesToServer
				r.dstRead, r.dstSent = d1.BytesToClient-d0.BytesToClient, d1.BytesToServer-d0.BytesToServer
				if r.copied, err = dst.MessageCount(ctx, testserver.DefaultUser); err != nil {
					return err
				}
				capped := ""
				if r.capped {
					capped = " (stopped at the cap)"
				}
				fmt.Printf("rtt %v run %d %s: %v%s, exit %d, %d messages on the destination (%.0f msg/s), client CPU %v, source link %.1f MB read / %.1f MB sent, destination link %.1f MB read / %.1f MB sent, load %s\n",
					rtt, run+1, v.tool, r.wall.Round(time.Millisecond), capped, r.code, r.copied, r.rate(), r.cpu.Round(10*time.Millisecond),
					mb(r.srcRead), mb(r.srcSent), mb(r.dstRead), mb(r.dstSent), benchutil.LoadAvg())
				all = append(all, r)
			}
		}
		sl.Close()
		dl.Close()
	}
	summary(all, o.rtts, nmsg, total)
	return nil
}

// summary prints one row per RTT and tool: the median run and the ratios
// of migrate mail's msg/s to the peers' at the same RTT.
func summary(all []result, rtts []time.Duration, nmsg int, total int64) {
	med := map[string]result{}
	runs := map[string][]result{}
	key := func(tool string, rtt time.Duration) string { return fmt.Sprint(tool, "@", rtt) }
	for _, r := range all {
		runs[key(r.tool, r.rtt)] = append(runs[key(r.tool, r.rtt)], r)
	}
	for k, rs := range runs {
		s := append([]result(nil), rs...)
		sort.Slice(s, func(i, j int) bool { return s[i].rate() > s[j].rate() })
		med[k] = s[len(s)/2]
	}
	var loop result
	if r, ok := med[key(toolMigrate, 0)]; ok {
		loop = r
	}
	fmt.Println()
	fmt.Printf("corpus: %d messages, %.1f MB. Median run by msg/s (messages on the destination / wall time); runs in brackets.\n", nmsg, float64(total)/1e6)
	fmt.Println()
	fmt.Println("| RTT | tool | runs | wall, median (runs) | msg/s | client CPU | source link read | destination link read (× message bytes) | migrate mail's msg/s over this tool's | wall over migrate mail's at 0 ms |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, rtt := range rtts {
		for _, tool := range []string{toolMigrate, toolDeep, toolMbsync, toolImapsync} {
			r, ok := med[key(tool, rtt)]
			if !ok {
				continue
			}
			rs := runs[key(tool, rtt)]
			var walls []string
			for _, x := range rs {
				w := fmt.Sprintf("%.2f", x.wall.Seconds())
				if x.capped {
					w += "*"
				}
				walls = append(walls, w)
			}
			ratio := "–"
			if m, ok := med[key(toolMigrate, rtt)]; ok && tool != toolMigrate {
				ratio = fmt.Sprintf("%.2f×", m.rate()/r.rate())
			}
			own := "–"
			if loop.wall > 0 && tool == toolMigrate {
				own = fmt.Sprintf("%.2f", r.wall.Seconds()/loop.wall.Seconds())
			}
			copied := ""
			if r.copied != int64(nmsg) {
				copied = fmt.Sprintf(", %d copied", r.copied)
			}
			fmt.Printf("| %g ms | %s | %d | %.2f s (%s)%s | %.0f | %.2f s | %.1f MB | %.2f MB (%.3f×) | %s | %s |\n",
				float64(rtt.Microseconds())/1000, tool, len(rs), r.wall.Seconds(), strings.Join(walls, " / "), copied, r.rate(), r.cpu.Seconds(),
				mb(r.srcRead), mb(r.dstRead), float64(r.dstRead)/float64(total), ratio, own)
		}
	}
	fmt.Println()
	fmt.Println("* stopped at the cap; its msg/s counts the messages it had copied by then.")
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// timed runs argv and measures its wall time and user+sys CPU; its
// standard error goes to the file logf when that is not "". With a
// positive limit the process is sent SIGTERM once limit has passed, and
// SIGKILL 5 s later (imapsync finishes its current folder and prints its
// statistics on SIGTERM, which takes minutes over a slow link).
func timed(env []string, limit time.Duration, logf string, argv ...string) (result, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = env
	}
	var outb, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	var r result
	var capped atomic.Bool
	if limit > 0 {
		t := time.AfterFunc(limit, func() {
			capped.Store(true)
			cmd.Process.Signal(syscall.SIGTERM)
		})
		defer t.Stop()
		k := time.AfterFunc(limit+5*time.Second, func() { cmd.Process.Kill() })
		defer k.Stop()
	}
	err := cmd.Wait()
	r.wall = time.Since(start)
	if logf != "" {
		_ = os.WriteFile(logf, errb.Bytes(), 0o600)
	}
	r.capped = capped.Load()
	if ps := cmd.ProcessState; ps != nil {
		r.code = ps.ExitCode()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if err != nil && r.code != 3 && !r.capped {
		return r, fmt.Errorf("%s: %v: %s", argv[0], err, tail(errb.String()+outb.String()))
	}
	return r, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// mbsyncRC configures the peer for the test user on both servers.
func mbsyncRC(srcAddr, dstAddr, state string) string {
	return testserver.MbsyncConfig(srcAddr, dstAddr, testserver.DefaultUser, testserver.DefaultPassword, testserver.DefaultPassword, state)
}

// imapsyncArgv runs imapsync (github.com/imapsync/imapsync, the `imapsync`
// script; options from its --help) one-way from the source line to the
// destination line with its defaults, in plaintext as the loopback servers
// speak it, passwords from a file, no log file and no release check.
func imapsyncArgv(bin, srcAddr, dstAddr, passfile, tmp string) []string {
	sh, sp, _ := strings.Cut(srcAddr, ":")
	dh, dp, _ := strings.Cut(dstAddr, ":")
	return []string{bin,
		"--host1", sh, "--port1", sp, "--user1", testserver.DefaultUser, "--passfile1", passfile, "--nossl1", "--notls1",
		"--host2", dh, "--port2", dp, "--user2", testserver.DefaultUser, "--passfile2", passfile, "--nossl2", "--notls2",
		"--nolog", "--noreleasecheck", "--tmpdir", tmp}
}
