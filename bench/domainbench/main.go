// Command domainbench measures a domain's mail phase (migrate.Runner, the
// plan's accounts in parallel, default proof) against one mbsync process
// per account, all in parallel, between two Dovecots. Optionally each
// server sits behind a delay line (internal/faultproxy.DelayLine, half the
// RTT each way) and the source behind a fault proxy that lets each account
// run one FETCH at a time, as Zimbra's ImapCommandThrottle does
// (faultproxy.IMAPRules.FetchPerAccount). The tools alternate within each
// run; medians of the aggregate msg/s and their ratio are printed.
// bench/domainwan.sh builds and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/bench/internal/benchutil"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

func main() {
	var o options
	flag.IntVar(&o.accounts, "accounts", 8, "accounts in the domain")
	flag.IntVar(&o.messages, "messages", 1000, "messages per account")
	flag.IntVar(&o.parallel, "parallel", 4, "accounts migrate mail copies at once; mbsync runs the same number of processes at once")
	flag.IntVar(&o.runs, "runs", 3, "runs of each tool")
	flag.DurationVar(&o.rtt, "rtt", 0, "round-trip time to each server (0: no delay line)")
	flag.BoolVar(&o.throttle, "throttle", false, "one FETCH per account at a time on the source (Zimbra's ImapCommandThrottle)")
	flag.StringVar(&o.mbsync, "mbsync", "mbsync", "path of mbsync (empty to skip)")
	flag.IntVar(&o.folders, "folders", 0, "the plan's folders per account (0: the default)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the migrate runs (this process) to this file")
	flag.IntVar(&o.conns, "conns", 0, "the plan's IMAP connections per server (0: the plan's default, migrate.Concurrency.Connections)")
	flag.Parse()
	if err := bench(o); err != nil {
		fmt.Fprintln(os.Stderr, "domainbench:", err)
		os.Exit(1)
	}
}

type options struct {
	accounts, messages, parallel, runs int
	conns                              int
	cpuprofile                         string
	folders                            int
	rtt                                time.Duration
	throttle                           bool
	mbsync                             string
}

func bench(o options) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "domainbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	users := map[string]string{}
	var names []string
	for i := 1; i <= o.accounts; i++ {
		u := fmt.Sprintf("user%d@bench.test", i)
		users[u] = fmt.Sprintf("pass%d", i)
		names = append(names, u)
	}
	src, err := testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "dom-src", Users: users})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := testserver.NewDovecot(ctx, testserver.DovecotOptions{Name: "dom-dst", Users: users})
	if err != nil {
		return err
	}
	defer dst.Close()
	var total, bytes int64
	for i, u := range names {
		a := corpus.Generate(u, corpus.Options{Seed: int64(i), Messages: o.messages, Events: -1, Contacts: -1})
		if err := src.Seed(ctx, u, a.Mail); err != nil {
			return err
		}
		total += int64(len(a.Mail.Messages))
		for _, m := range a.Mail.Messages {
			bytes += int64(len(m.Raw))
		}
	}

	// The source path: client -> delay line -> throttle proxy -> Dovecot.
	srcAddr, dstAddr := src.Addr, dst.Addr
	var fp *faultproxy.Proxy
	if o.throttle {
		if fp, err = faultproxy.Listen(srcAddr, faultproxy.Options{IMAP: &faultproxy.IMAPRules{FetchPerAccount: true}}); err != nil {
			return err
		}
		defer fp.Close()
		srcAddr = fp.Addr()
	}
	if o.rtt > 0 {
		opt := faultproxy.DelayOptions{Delay: o.rtt / 2}
		sl, err := faultproxy.ListenDelay(srcAddr, opt)
		if err != nil {
			return err
		}
		defer sl.Close()
		dl, err := faultproxy.ListenDelay(dstAddr, opt)
		if err != nil {
			return err
		}
		defer dl.Close()
		srcAddr, dstAddr = sl.Addr(), dl.Addr()
	}
	fmt.Printf("domain: %d accounts, %d messages, %.1f MB; %d at once; RTT %v; one FETCH per account on the source: %v; IMAP connections per server: %d (0: default)\n",
		o.accounts, total, float64(bytes)/1e6, o.parallel, o.rtt, o.throttle, o.conns)

	list := filepath.Join(dir, "accounts.txt")
	if err := os.WriteFile(list, []byte(strings.Join(names, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	reset := func() error {
		for _, u := range names {
			if err := dst.ResetUser(ctx, u); err != nil {
				return err
			}
		}
		return nil
	}
	master := migrate.Credential{Password: secret.New(src.MasterPassword)}
	var prof *os.File
	if o.cpuprofile != "" {
		if prof, err = os.Create(o.cpuprofile); err != nil {
			return err
		}
	}
	var ours, theirs []time.Duration
	var theirN []int64 // messages mbsync left on the destination, per run
	for run := 0; run < o.runs; run++ {
		if err := reset(); err != nil {
			return err
		}
		p := &migrate.Plan{
			Source:      migrate.Endpoint{Kind: "imap", IMAP: migrate.IMAPEndpoint{Address: srcAddr, Security: "none", Admin: src.MasterUser, Credential: master}},
			Destination: migrate.Endpoint{Kind: "imap", IMAP: migrate.IMAPEndpoint{Address: dstAddr, Security: "none", Admin: dst.MasterUser, Credential: master}},
			Accounts:    migrate.Selection{ListFile: list},
			Phases:      []migrate.Phase{migrate.PhaseMail},
			Concurrency: migrate.Concurrency{ConcurrentAccounts: o.parallel, ConnectionsPerServer: o.conns, FoldersPerAccount: o.folders},
			State:       filepath.Join(dir, fmt.Sprintf("state-%d.db", run)),
		}
		c0 := cpuNow(src, dst)
		if prof != nil {
			if err := pprof.StartCPUProfile(prof); err != nil {
				return err
			}
		}
		t0 := time.Now()
		rep, err := (&migrate.Runner{Plan: p}).Run(ctx)
		d := time.Since(t0)
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
			prof = nil // one run's profile
		}
		c := cpuNow(src, dst).sub(c0, false)
		if err != nil {
			return fmt.Errorf("migrate run %d: %w", run+1, err)
		}
		n, err := dst.MessageCount(ctx, names...)
		if err != nil {
			return err
		}
		if rep.Totals.Messages != total || n != total {
			return fmt.Errorf("migrate run %d: report %d, destination %d of %d messages", run+1, rep.Totals.Messages, n, total)
		}
		ours = append(ours, d)
		fmt.Printf("run %d migrate (mail phase, copy + default proof): %s, %.0f msg/s, %s, load %s\n", run+1, d.Round(time.Millisecond), float64(total)/d.Seconds(), c, benchutil.LoadAvg())

		if o.mbsync == "" {
			continue
		}
		if err := reset(); err != nil {
			return err
		}
		c0 = cpuNow(src, dst)
		d, err = mbsync(ctx, o.mbsync, dir, srcAddr, dstAddr, users, names, o.parallel, run)
		c = cpuNow(src, dst).sub(c0, true)
		if err != nil {
			return fmt.Errorf("mbsync run %d: %w", run+1, err)
		}
		if n, err = dst.MessageCount(ctx, names...); err != nil {
			return err
		}
		theirs = append(theirs, d)
		theirN = append(theirN, n)
		fmt.Printf("run %d %d × mbsync (copy only): %s, %d messages, %.0f msg/s, %s, load %s\n", run+1, o.parallel, d.Round(time.Millisecond), n, float64(n)/d.Seconds(), c, benchutil.LoadAvg())
	}
	if fp != nil {
		fmt.Printf("throttle proxy: %d FETCHes held back\n", fp.Stats().FetchWaits)
	}
	mo := median(ours)
	fmt.Printf("migrate:     median %s (%s), %.0f msg/s aggregate\n", mo.Round(time.Millisecond), list3(ours), float64(total)/mo.Seconds())
	if len(theirs) > 0 {
		mt := median(theirs)
		var mn int64
		for i, d := range theirs {
			if d == mt {
				mn = theirN[i]
			}
		}
		rate := float64(mn) / mt.Seconds()
		fmt.Printf("%d × mbsync: median %s (%s), %.0f msg/s aggregate (messages on the destination)\n", o.parallel, mt.Round(time.Millisecond), list3(theirs), rate)
		fmt.Printf("ratio migrate/mbsync msg/s: %.2f\n", float64(total)/mo.Seconds()/rate)
	}
	return nil
}

// cpu is a reading of the CPU clocks a run is charged with: the
// benchmark's own process (migrate runs in it), its reaped children
// (mbsync), and each Dovecot's (its reaped imap processes: both tools
// close their connections before a run ends).
type cpu struct{ self, children, src, dst, idle time.Duration }

func cpuNow(src, dst *testserver.Dovecot) cpu {
	s, c := benchutil.SelfCPU()
	return cpu{s, c, benchutil.ProcCPU(src.PID()), benchutil.ProcCPU(dst.PID()), benchutil.IdleCPU()}
}

// sub is the run's share: the client is this process, or its children
// when child is set.
func (c cpu) sub(c0 cpu, child bool) cpuRun {
	r := cpuRun{client: c.self - c0.self, src: c.src - c0.src, dst: c.dst - c0.dst, idle: c.idle - c0.idle}
	if child {
		r.client = c.children - c0.children
	}
	return r
}

type cpuRun struct{ client, src, dst, idle time.Duration }

func (r cpuRun) String() string {
	return fmt.Sprintf("CPU client %.2f s, source %.2f s, destination %.2f s, machine idle %.2f s", r.client.Seconds(), r.src.Seconds(), r.dst.Seconds(), r.idle.Seconds())
}

// mbsync runs one mbsync per account, one-way with CopyArrivalDate, at
// most parallel at once, and returns the wall time of the whole set.
func mbsync(ctx context.Context, bin, dir, srcAddr, dstAddr string, users map[string]string, names []string, parallel, run int) (time.Duration, error) {
	var cmds []*exec.Cmd
	for _, u := range names {
		state := filepath.Join(dir, fmt.Sprintf("mbsync-%d-%s", run, u)) + "/"
		if err := os.MkdirAll(state, 0o700); err != nil {
			return 0, err
		}
		rc := filepath.Join(dir, fmt.Sprintf("mbsyncrc-%d-%s", run, u))
		if err := os.WriteFile(rc, []byte(testserver.MbsyncConfig(srcAddr, dstAddr, u, users[u], users[u], state)), 0o600); err != nil {
			return 0, err
		}
		cmds = append(cmds, exec.CommandContext(ctx, bin, "-c", rc, "-q", "AtoB"))
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	errs := make([]error, len(cmds))
	t0 := time.Now()
	for i, c := range cmds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if out, err := c.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return d, err
		}
	}
	return d, nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func list3(ds []time.Duration) string {
	var f []string
	for _, d := range ds {
		f = append(f, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(f, " / ")
}
