package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/migrate/migratetest"
)

// Bounds of the demo's generated domain. Message bodies are kept on disk
// under --out (about 27 kB each with the corpus's mix), the rest in
// memory (a few hundred bytes per message): the bounds keep both sane.
const (
	demoMaxAccounts      = 5000
	demoMaxMessages      = 20000     // per account
	demoMaxTotalMessages = 1_000_000 // accounts × messages
	// demoMemoryLimit is the Go runtime's soft memory limit during a demo
	// (unless GOMEMLIMIT is set): the collector works harder near it
	// rather than letting the heap double.
	demoMemoryLimit = 1536 << 20
)

// checkDemoSize validates --accounts and --messages.
func checkDemoSize(accounts, messages int) error {
	if accounts < 1 || accounts > demoMaxAccounts {
		return usageError{fmt.Errorf("--accounts %d: want 1 to %d", accounts, demoMaxAccounts)}
	}
	if messages < 1 || messages > demoMaxMessages {
		return usageError{fmt.Errorf("--messages %d: want 1 to %d per account", messages, demoMaxMessages)}
	}
	if total := int64(accounts) * int64(max(messages, migratetest.MinMessages)); total > demoMaxTotalMessages {
		return usageError{fmt.Errorf("--accounts %d × --messages %d is %d messages: want at most %d in all", accounts, max(messages, migratetest.MinMessages), total, demoMaxTotalMessages)}
	}
	return nil
}

func newDemoCmd(e *env) *cobra.Command {
	var out, prog, logFormat, logLevel string
	var accounts, messages int
	var faults bool
	var lf listenFlags
	var holdOpen bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Migrate a generated domain between in-process servers and write the reports",
		Long: `Start an in-process Zextras Suite-like source and Carbonio-like destination (IMAP, CalDAV/CardDAV
and the admin API, all on 127.0.0.1, nothing installed, no root), seed a sample domain of generated
mail, calendars and contacts, run the whole plan with progress, and write the JSON and HTML
reports. The source's export is written under --out and transferred to the destination's restore
path there (rsync between local directories when installed, else the built-in copier: the phase
says which). Nothing outside --out is touched.

Message bodies are kept on disk in --out while the demo runs (about 5 MB per account with
the default --messages: 2,000 accounts took 8.6 GB of disk and peaked at 1.5 GB of memory,
in 30 minutes on 2 busy cores); the file is removed at the end. --with-faults seeds trouble
so that the run ends partial (exit code 3) and the report shows what that looks like: a
keyword the destination refuses, a message over its size limit, a broken vCard and a
connection reset. Ctrl-C or SIGTERM stops the seeding within a second or two.`,
		Example: `  migrate demo --out /tmp/demo
  migrate demo --accounts 3 --with-faults --out /tmp/demo-faults`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDemoSize(accounts, messages); err != nil {
				return err
			}
			if holdOpen && lf.addr == "" {
				return usageError{errors.New("--hold goes with --listen: it keeps the dashboard up after the run")}
			}
			if os.Getenv("GOMEMLIMIT") == "" {
				defer debug.SetMemoryLimit(debug.SetMemoryLimit(demoMemoryLimit))
			}
			dir := out
			if dir == "" {
				d, err := os.MkdirTemp("", "zxmigrate-demo-")
				if err != nil {
					return err
				}
				dir = d
			} else if err := os.MkdirAll(dir, 0o700); err != nil {
				return usageError{fmt.Errorf("--out: %w", err)}
			}
			if _, err := os.Stat(filepath.Join(dir, "state.db")); err == nil {
				return usageError{fmt.Errorf("--out %s holds a state file from an earlier demo; choose an empty directory", dir)}
			}
			t0 := time.Now()
			fmt.Fprintf(e.stdout, "Seeding %d accounts on in-process servers ...\n", accounts)
			o := migratetest.Options{Accounts: accounts, Messages: messages, Dir: dir, Faults: faults}
			if !cmd.Flags().Changed("messages") {
				o.Messages = 0 // the corpus minimum for every account
			}
			env, err := migratetest.StartContext(e.ctx, o)
			if err != nil {
				if e.ctx.Err() != nil {
					return fmt.Errorf("demo: interrupted while seeding, nothing was migrated: %w", err)
				}
				return err
			}
			defer env.Close()
			fmt.Fprintf(e.stdout, "Source: %d messages (%.1f MB), %d calendar objects and contacts, seeded in %s\n",
				env.Messages, float64(env.Bytes)/1e6, env.Objects, time.Since(t0).Round(time.Millisecond))
			if faults {
				fmt.Fprintf(e.stdout, "Faults: %s has a message with the keyword %q the destination refuses, a message over its %d MiB limit and a broken vCard;\n"+
					"        the destination resets one IMAP connection. Expect a partial run (exit code 3).\n",
					env.Accounts[0], migratetest.FaultKeyword, migratetest.FaultAppendLimit>>20)
			}
			p, err := newProgress(e.stderr, prog)
			if err != nil {
				return err
			}
			log, err := newLogger(p.Writer(), logFormat, logLevel)
			if err != nil {
				p.Close()
				return err
			}
			r := env.Runner()
			r.OnEvent, r.Logger = p.OnEvent, log
			runCtx, url, stopDash, err := serveRun(e.ctx, e.stdout, &lf, r)
			if err != nil {
				p.Close()
				return err
			}
			defer stopDash()
			done := watchStop(r.Stop)
			rep, err := r.Run(runCtx)
			done()
			p.Close()
			ferr := finish(e, rep, env.Plan.ReportDir(), err)
			fmt.Fprintf(e.stdout, "State:  %s\nOpen the HTML report in a browser; it is one self-contained file.\n", env.Plan.StatePath())
			if holdOpen && url != "" {
				hold(e.ctx, e.stdout, url)
			}
			return ferr
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "", "directory for the state file and the reports (default: a new temporary directory)")
	fl.IntVar(&accounts, "accounts", migratetest.DefaultAccounts, fmt.Sprintf("accounts in the sample domain, 1 to %d", demoMaxAccounts))
	fl.IntVar(&messages, "messages", migratetest.MinMessages, fmt.Sprintf("messages per account, 1 to %d (smaller values are raised to %d, the corpus minimum that covers every folder and edge case); at most %d messages in all",
		demoMaxMessages, migratetest.MinMessages, demoMaxTotalMessages))
	fl.BoolVar(&faults, "with-faults", false, "seed a refused keyword, an oversize message, a broken vCard and a connection reset: the run ends partial")
	fl.StringVar(&prog, "progress", "auto", "progress display: auto (bars on a terminal), bars, plain or none")
	fl.StringVar(&logFormat, "log-format", "text", "log format: text or json (logs go to stderr)")
	fl.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	lf.add(cmd, "listen", "serve Prometheus metrics and the live dashboard on host:port, e.g. 127.0.0.1:8080 (port 0: a free one; empty: no dashboard)")
	// The demo shows its dashboard by default, on a free loopback port.
	lf.addr = "127.0.0.1:0"
	cmd.Flags().Lookup("listen").DefValue = lf.addr
	fl.BoolVar(&holdOpen, "hold", false, "with --listen: keep the dashboard up after the run until Ctrl-C")
	return cmd
}
