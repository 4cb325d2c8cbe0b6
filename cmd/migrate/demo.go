package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/migrate/migratetest"
)

func newDemoCmd(e *env) *cobra.Command {
	var out, prog, logFormat, logLevel string
	var accounts, messages int
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
says which). Nothing outside --out is touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if holdOpen && lf.addr == "" {
				return usageError{errors.New("--hold goes with --listen: it keeps the dashboard up after the run")}
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
			env, err := migratetest.Start(migratetest.Options{Accounts: accounts, Messages: messages, Dir: dir})
			if err != nil {
				return err
			}
			defer env.Close()
			fmt.Fprintf(e.stdout, "Source: %d messages (%.1f MB), %d calendar objects and contacts, seeded in %s\n",
				env.Messages, float64(env.Bytes)/1e6, env.Objects, time.Since(t0).Round(time.Millisecond))
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
			url, stopDash, err := serveRun(e.stdout, &lf, r)
			if err != nil {
				p.Close()
				return err
			}
			defer stopDash()
			done := watchStop(r.Stop)
			rep, err := r.Run(e.ctx)
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
	fl.IntVar(&accounts, "accounts", migratetest.DefaultAccounts, "accounts in the sample domain")
	fl.IntVar(&messages, "messages", 0, "messages per account; 0 means the corpus minimum, about 190, covering every folder and edge case")
	fl.StringVar(&prog, "progress", "auto", "progress display: auto (bars on a terminal), bars, plain or none")
	fl.StringVar(&logFormat, "log-format", "text", "log format: text or json (logs go to stderr)")
	fl.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	lf.add(cmd, "listen", "serve Prometheus metrics and the live dashboard on host:port, e.g. 127.0.0.1:8080")
	fl.BoolVar(&holdOpen, "hold", false, "with --listen: keep the dashboard up after the run until Ctrl-C")
	return cmd
}
