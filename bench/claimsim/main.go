// Command claimsim simulates many runners draining one PostgreSQL store:
// ACCOUNTS accounts, WORKERS workers spread over PROCS processes, fake copy
// work, and one process killed with SIGKILL midway. It prints claims per
// second, the time to drain, lease takeovers and the coordination overhead
// per account, and checks that every account was finished and that no
// account was finished by two runners. See bench/claimsim.sh and
// bench/README.md.
//
//	claimsim [-url postgres://...] [-accounts 50000] [-procs 4] [-workers 64] [-copy 10ms] [-ttl 10s]
//
// Without -url it starts its own PostgreSQL (internal/testserver). The
// password comes from $MIGRATE_STATE_PASSWORD or the other sources of
// state.OpenPostgres. With -worker it is one runner process (internal).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zxmigrate/zxmigrate/bench/internal/benchutil"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/state"
)

type options struct {
	url      string
	accounts int
	procs    int
	workers  int
	copyTime time.Duration
	ttl      time.Duration
	killAt   float64
	durable  bool
	worker   bool
}

// result is what one runner process reports on stdout.
type result struct {
	Runner    string  `json:"runner"`
	Finished  int     `json:"finished"`
	Takeovers int     `json:"takeovers"`
	Lost      int     `json:"lost"`
	CoordUS   []int64 `json:"coord_us"` // per finished account: claim + release, µs
	WritesUS  []int64 `json:"writes_us"`
	HBCalls   int     `json:"heartbeats"`
	HBTotalUS int64   `json:"heartbeat_us"`
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "PostgreSQL URL without a password (default: start a PostgreSQL)")
	flag.IntVar(&o.accounts, "accounts", 50000, "accounts to drain")
	flag.IntVar(&o.procs, "procs", 4, "runner processes")
	flag.IntVar(&o.workers, "workers", 64, "workers in all, spread over the processes")
	flag.DurationVar(&o.copyTime, "copy", 10*time.Millisecond, "mean fake copy time per account")
	flag.DurationVar(&o.ttl, "ttl", 10*time.Second, "lease time")
	flag.Float64Var(&o.killAt, "kill-at", 0.5, "fraction of finished accounts at which one process is killed (0: none)")
	flag.BoolVar(&o.durable, "durable", true, "own PostgreSQL: fsync and synchronous commit on")
	flag.BoolVar(&o.worker, "worker", false, "run as one runner process (internal)")
	flag.Parse()
	var err error
	if o.worker {
		err = runWorker(o)
	} else {
		err = orchestrate(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "claimsim:", err)
		os.Exit(1)
	}
}

func orchestrate(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	serverPID := 0
	if o.url == "" {
		pg, err := testserver.NewPostgres(ctx, testserver.PostgresOptions{Durable: o.durable})
		if err != nil {
			return err
		}
		defer pg.Close()
		serverPID = pg.PID()
		if o.url, err = pg.NewDatabase(ctx); err != nil {
			return err
		}
		os.Setenv(state.PasswordEnv, pg.Password)
		fmt.Printf("PostgreSQL started on 127.0.0.1:%d (durable=%v)\n", pg.Port, o.durable)
	}
	s, err := state.OpenPostgres(ctx, o.url, state.PostgresOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	db := s.DB()
	// A fresh plan: the simulation's accounts only.
	if _, err := db.ExecContext(ctx, `TRUNCATE accounts, phases, slots, jobs`); err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts(source, destination, size, updated)
		SELECT 'user'||i||'@src.example', 'user'||i||'@dst.example', (i * 7919) % 100003, ''
		FROM generate_series(1, $1) AS i`, o.accounts); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `ANALYZE accounts`); err != nil {
		return err
	}
	fmt.Printf("seeded %d accounts in %v\n", o.accounts, time.Since(t0).Round(time.Millisecond))

	serverCPU0 := benchutil.ProcCPU(serverPID)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	type child struct {
		cmd    *exec.Cmd
		out    strings.Builder
		killed bool
	}
	children := make([]*child, o.procs)
	start := time.Now()
	for i := range o.procs {
		n := o.workers / o.procs
		if i < o.workers%o.procs {
			n++
		}
		c := &child{cmd: exec.CommandContext(ctx, self, "-worker", "-url", o.url, "-workers", strconv.Itoa(n),
			"-copy", o.copyTime.String(), "-ttl", o.ttl.String())}
		c.cmd.Stdout = &c.out
		c.cmd.Stderr = os.Stderr
		if err := c.cmd.Start(); err != nil {
			return err
		}
		children[i] = c
	}
	finished := func() int {
		var n int
		_ = db.QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE claim='closed'`).Scan(&n)
		return n
	}
	var killedAt time.Duration
	if o.killAt > 0 {
		for finished() < int(float64(o.accounts)*o.killAt) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(50 * time.Millisecond)
		}
		victim := children[len(children)-1]
		victim.killed = true
		victim.cmd.Process.Signal(syscall.SIGKILL)
		killedAt = time.Since(start)
		fmt.Printf("killed runner process %d (pid %d) at %v, %d accounts finished\n", len(children), victim.cmd.Process.Pid, killedAt.Round(time.Millisecond), finished())
	}
	var results []result
	var runnersCPU time.Duration
	for _, c := range children {
		err := c.cmd.Wait()
		if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			runnersCPU += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		if c.killed {
			continue
		}
		if err != nil {
			return fmt.Errorf("runner process: %w", err)
		}
		var r result
		if err := json.Unmarshal([]byte(c.out.String()), &r); err != nil {
			return fmt.Errorf("runner output: %w", err)
		}
		results = append(results, r)
	}
	drain := time.Since(start)
	var serverCPU time.Duration
	if serverPID != 0 {
		// The runners' backends have exited and been reaped by the
		// postmaster, whose children's CPU now holds theirs.
		time.Sleep(500 * time.Millisecond)
		serverCPU = benchutil.ProcCPU(serverPID) - serverCPU0
	}
	if err := report(ctx, o, s, results, drain, killedAt); err != nil {
		return err
	}
	if serverPID != 0 {
		per := (runnersCPU + serverCPU) / time.Duration(o.accounts)
		fmt.Printf("CPU: runners %v + PostgreSQL %v = %.3f ms per account (fake copy uses none: all of it is coordination and checkpoint writes)\n",
			runnersCPU.Round(time.Millisecond), serverCPU.Round(time.Millisecond), float64(per.Microseconds())/1000)
	}
	return nil
}

// procCPU returns the CPU time of process pid and its reaped children
// (/proc/PID/stat fields utime, stime, cutime, cstime, in clock ticks of
// 1/100 s; proc(5)).
func report(ctx context.Context, o options, s *state.Postgres, results []result, drain, killedAt time.Duration) error {
	var claims, multi, closed, open int
	err := s.DB().QueryRowContext(ctx, `SELECT coalesce(sum(claims),0), count(*) FILTER (WHERE claims > 1),
		count(*) FILTER (WHERE claim='closed'), count(*) FILTER (WHERE claim<>'closed') FROM accounts`).Scan(&claims, &multi, &closed, &open)
	if err != nil {
		return err
	}
	var coord, writes []int64
	finished, takeovers, lost, hbCalls := 0, 0, 0, 0
	var hbUS int64
	for _, r := range results {
		finished += r.Finished
		takeovers += r.Takeovers
		lost += r.Lost
		coord = append(coord, r.CoordUS...)
		writes = append(writes, r.WritesUS...)
		hbCalls += r.HBCalls
		hbUS += r.HBTotalUS
	}
	fmt.Printf("accounts %d, processes %d, workers %d, fake copy %v mean, lease %v\n", o.accounts, o.procs, o.workers, o.copyTime, o.ttl)
	fmt.Printf("drained in %v (kill at %v); %d claims, %.0f claims/s\n", drain.Round(time.Millisecond), killedAt.Round(time.Millisecond),
		claims, float64(claims)/drain.Seconds())
	fmt.Printf("finished %d (open %d); by survivors %d; accounts claimed more than once %d; takeovers seen by survivors %d; lost leases %d\n",
		closed, open, finished, multi, takeovers, lost)
	hb := 0.0
	if finished > 0 {
		hb = float64(hbUS) / float64(finished) / 1000
	}
	fmt.Printf("coordination per account (claim + release), ms: mean %.3f p50 %.3f p99 %.3f; heartbeats %d, %.4f ms per account\n",
		mean(coord), pct(coord, 50), pct(coord, 99), hbCalls, hb)
	fmt.Printf("fenced checkpoint writes per account (4 writes, each with its lease check), ms: mean %.3f p50 %.3f p99 %.3f\n",
		mean(writes), pct(writes, 50), pct(writes, 99))
	if open != 0 {
		return fmt.Errorf("%d accounts left unfinished", open)
	}
	return nil
}

func mean(us []int64) float64 {
	if len(us) == 0 {
		return 0
	}
	var t int64
	for _, v := range us {
		t += v
	}
	return float64(t) / float64(len(us)) / 1000
}

func pct(us []int64, p int) float64 {
	if len(us) == 0 {
		return 0
	}
	s := append([]int64(nil), us...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[(len(s)-1)*p/100]) / 1000
}

// runWorker is one runner process: o.workers workers claim, fake-copy and
// finish accounts until none is left; a heartbeat keeps the leases.
func runWorker(o options) error {
	ctx := context.Background()
	s, err := state.OpenPostgres(ctx, o.url, state.PostgresOptions{MaxConns: o.workers + 2})
	if err != nil {
		return err
	}
	defer s.Close()
	runner := state.NewRunnerID()
	var res result
	res.Runner = runner
	var mu sync.Mutex
	hbCtx, hbStop := context.WithCancel(ctx)
	var hbCalls, hbUS atomic.Int64
	go func() {
		t := time.NewTicker(o.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
			}
			t0 := time.Now()
			if _, err := s.Heartbeat(hbCtx, runner, o.ttl); err != nil && hbCtx.Err() == nil {
				fmt.Fprintln(os.Stderr, "heartbeat:", err)
			}
			hbCalls.Add(1)
			hbUS.Add(time.Since(t0).Microseconds())
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, o.workers)
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := work(ctx, s, o, runner, &res, &mu); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	hbStop()
	close(errs)
	for err := range errs {
		return err
	}
	res.HBCalls, res.HBTotalUS = int(hbCalls.Load()), hbUS.Load()
	return json.NewEncoder(os.Stdout).Encode(res)
}

func work(ctx context.Context, s *state.Postgres, o options, runner string, res *result, mu *sync.Mutex) error {
	for {
		t0 := time.Now()
		l, ok, err := s.ClaimAccount(ctx, runner, o.ttl)
		claimT := time.Since(t0)
		if err != nil {
			return err
		}
		if !ok {
			// Nothing claimable: done, or the rest is leased (perhaps
			// by a dead runner whose leases have yet to run out).
			var open int
			if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE claim=''`).Scan(&open); err != nil {
				return err
			}
			if open == 0 {
				return nil
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		cp := s.Fenced(l)
		var wT time.Duration
		write := func(fn func() error) error {
			t := time.Now()
			err := fn()
			wT += time.Since(t)
			return err
		}
		err = write(func() error { return cp.SetPhase(ctx, l.Key, "mail", "running", "") })
		if err == nil {
			// The fake copy: exponential around the mean.
			time.Sleep(time.Duration(rand.ExpFloat64() * float64(o.copyTime)))
			err = write(func() error { return cp.SetProgress(ctx, l.Key, 1000, l.Size) })
		}
		if err == nil {
			err = write(func() error { return cp.SetPhase(ctx, l.Key, "mail", "done", "") })
		}
		if err == nil {
			err = write(func() error { return cp.SetAccountStatus(ctx, l.Key, "mail", "done", "") })
		}
		var relT time.Duration
		if err == nil {
			t := time.Now()
			err = s.Release(ctx, l, true)
			relT = time.Since(t)
		}
		mu.Lock()
		switch {
		case errors.Is(err, state.ErrLeaseLost):
			res.Lost++
		case err != nil:
			mu.Unlock()
			return err
		default:
			res.Finished++
			if l.PrevRunner != "" {
				res.Takeovers++
			}
			res.CoordUS = append(res.CoordUS, (claimT + relT).Microseconds())
			res.WritesUS = append(res.WritesUS, wT.Microseconds())
		}
		mu.Unlock()
	}
}
