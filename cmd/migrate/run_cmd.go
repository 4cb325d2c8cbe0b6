package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/state"
)

// outputFlags are shared by the commands that run a plan. Logging and
// progress are the global flags (env.g).
type outputFlags struct {
	plan      string
	reportDir string
	only      []string
	httpRate  float64
}

func (f *outputFlags) add(cmd *cobra.Command, withReport bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.plan, "plan", "", "plan file (YAML; 'migrate plan init FILE' writes an annotated one)")
	fl.StringSliceVar(&f.only, "account", nil, "only these source accounts (repeat or comma-separate)")
	fl.Float64Var(&f.httpRate, "http-rate", 0, "HTTP requests per second per host, overriding the plan's limits.http_rate (default 30; negative: no pacing)")
	if withReport {
		fl.StringVar(&f.reportDir, "report-dir", "", "directory for report.json and report.html (default: the plan's report)")
	}
	_ = cmd.MarkFlagRequired("plan")
	_ = cmd.MarkFlagFilename("plan", "yaml", "yml")
}

// setup loads the plan and builds the runner with progress and logs.
func (f *outputFlags) setup(e *env, progressMode string) (*migrate.Runner, *progress, error) {
	plan, err := loadPlan(f.plan)
	if err != nil {
		return nil, nil, err
	}
	if f.httpRate != 0 {
		plan.Limits.HTTPRate = f.httpRate
		if err := plan.Validate(); err != nil {
			return nil, nil, usageError{fmt.Errorf("--http-rate: %w", err)}
		}
	}
	prog, err := newProgress(e.stderr, progressMode)
	if err != nil {
		return nil, nil, err
	}
	log, err := operatorLogger(prog.Writer(), e.g)
	if err != nil {
		prog.Close()
		return nil, nil, err
	}
	r := &migrate.Runner{Plan: plan, OnEvent: prog.OnEvent, Logger: log, Only: f.only}
	return r, prog, nil
}

// finish writes a report's files and summary and turns its outcome into
// the command's error.
func finish(e *env, rep *migrate.Report, dir string, runErr error) error {
	if rep != nil {
		jsonPath, htmlPath, werr := rep.WriteFiles(dir)
		_ = rep.WriteText(e.stdout)
		if werr != nil {
			runErr = errors.Join(runErr, werr)
		} else {
			fmt.Fprintf(e.stdout, "Report: %s\n        %s\n        %s\n", htmlPath, jsonPath, migrate.CSVPath(dir))
		}
	}
	if runErr != nil {
		return warnMTA(e, rep, runErr)
	}
	if rep != nil && !rep.OK() {
		return warnMTA(e, rep, errPartial)
	}
	return warnMTA(e, rep, nil)
}

func newRunCmd(e *env) *cobra.Command {
	var f outputFlags
	var lf listenFlags
	var retryFailed, delta, deleteGone bool
	var phases []string
	var stateTarget string
	cmd := &cobra.Command{
		Use:   "run --plan FILE",
		Short: "Run a migration plan (resumable: run it again after a crash or Ctrl-C)",
		Long: `Run the plan's phases in the procedure's order: optional MTA stop, SmartScan, external restore
(provisioning only), provisioning check, then the account pool (mail, calendars, contacts,
verification; largest accounts first), optional dedup and MTA start.

State is kept in the plan's SQLite file: the same command continues exactly where it stopped.
The first Ctrl-C finishes the phases in flight and saves state; a second stops at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, prog, err := f.setup(e, e.g.progress)
			if err != nil {
				return err
			}
			r.RetryFailed, r.Delta = retryFailed, delta
			if stateTarget != "" {
				r.Plan.State = stateTarget
			}
			if deleteGone {
				if !delta {
					prog.Close()
					return usageError{errors.New("--delete goes with --delta: it deletes what the source no longer has since the earlier runs")}
				}
				r.Plan.Mail.Delete, r.Plan.Calendars.Delete, r.Plan.Contacts.Delete = true, true, true
			}
			if len(phases) > 0 {
				r.Plan.Phases = nil
				for _, ph := range phases {
					r.Plan.Phases = append(r.Plan.Phases, migrate.Phase(ph))
				}
				if err := r.Plan.Validate(); err != nil {
					prog.Close()
					return usageError{fmt.Errorf("--phases: %w", err)}
				}
			}
			_, stopDash, err := serveRun(prog.Writer(), &lf, r)
			if err != nil {
				prog.Close()
				return err
			}
			defer stopDash()
			done := watchStop(r.Stop)
			rep, err := r.Run(e.ctx)
			done()
			prog.Close()
			dir := f.reportDir
			if dir == "" {
				dir = r.Plan.ReportDir()
			}
			return warnPlanMTA(e, r.Plan, rep, finish(e, rep, dir, err))
		},
	}
	f.add(cmd, true)
	cmd.Flags().BoolVar(&retryFailed, "retry-failed", false, "run again the phases that failed or finished partial")
	cmd.Flags().BoolVar(&delta, "delta", false, "cutover pass: copy again what changed since (mail, calendars, contacts) for accounts already done")
	cmd.Flags().BoolVar(&deleteGone, "delete", false, "with --delta: also delete on the destination the copies of messages and objects the source no longer has (as mail.delete, calendars.delete, contacts.delete)")
	lf.add(cmd, "listen", "serve Prometheus metrics (/metrics) and the live dashboard (/) on host:port (default: the plan's listen key; loopback unless a token is set)")
	cmd.Flags().StringVar(&stateTarget, "state", "", "state: a file, or postgres://USER@HOST:PORT/DB?sslmode=... shared by any number of runners (overrides the plan's state; the password comes from MIGRATE_STATE_PASSWORD, a password file or libpq's environment, never the URL)")
	cmd.Flags().StringSliceVar(&phases, "phases", nil, "run only these phases of the plan, e.g. --phases mail --delta for a daily pre-stage")
	return cmd
}

func newVerifyCmd(e *env) *cobra.Command {
	var f outputFlags
	cmd := &cobra.Command{
		Use:   "verify --plan FILE",
		Short: "Recompute the source-versus-destination proof for every account (writes nothing to the servers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, prog, err := f.setup(e, e.g.progress)
			if err != nil {
				return err
			}
			rep, err := r.Verify(e.ctx)
			prog.Close()
			dir := f.reportDir
			if dir == "" {
				dir = filepath.Join(r.Plan.ReportDir(), "verify")
			}
			return finish(e, rep, dir, err)
		},
	}
	f.add(cmd, true)
	return cmd
}

func newPreflightCmd(e *env) *cobra.Command {
	var f outputFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "preflight --plan FILE",
		Short: "Check servers, credentials and accounts; inventory what will not migrate (writes nothing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, prog, err := f.setup(e, "none")
			if err != nil {
				return err
			}
			pr, err := r.Preflight(e.ctx)
			prog.Close()
			if pr != nil && err != nil && !asJSON && len(pr.Accounts) == 0 && len(pr.Checks) <= 1 {
				pr = nil // nothing was found before the error, which main prints
			}
			if pr != nil {
				if err != nil && !asJSON {
					// The error is printed once, by main, in the
					// operator's words; the check that carries it
					// would repeat it as a raw chain.
					pr.Checks = slices.DeleteFunc(pr.Checks, func(c migrate.Check) bool { return !c.OK && c.Detail == err.Error() })
				}
				if asJSON {
					_ = pr.WriteJSON(e.stdout)
				} else {
					_ = pr.WriteText(e.stdout)
				}
			}
			if !asJSON {
				fmt.Fprintln(e.stdout, concurrentRunsNote)
			}
			if err != nil {
				return err
			}
			if !pr.OK() {
				return errPartial
			}
			return nil
		},
	}
	f.add(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the findings as JSON")
	return cmd
}

func newReportCmd(e *env) *cobra.Command {
	var planFile, statePath, from, format, out string
	cmd := &cobra.Command{
		Use:   "report (--plan FILE | --state FILE | --from report.json)",
		Short: "Render the last report again from the state file or a JSON report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rep *migrate.Report
			switch {
			case from != "":
				fh, err := os.Open(from)
				if err != nil {
					return usageError{fmt.Errorf("--from: %w", err)}
				}
				defer fh.Close()
				if rep, err = migrate.ReadReport(fh); err != nil {
					return usageError{fmt.Errorf("--from %s is not a zxmigrate JSON report: %w", from, err)}
				}
			case statePath != "" || planFile != "":
				var plan *migrate.Plan
				if planFile != "" {
					p, err := loadPlan(planFile)
					if err != nil {
						return err
					}
					plan = p
					if statePath == "" {
						statePath = p.StatePath()
					}
				}
				// A report reads: it never creates a state file, nor
				// changes one (state.OpenReadOnly).
				st, err := state.OpenReadOnly(e.ctx, statePath)
				if errors.Is(err, fs.ErrNotExist) {
					return usageError{fmt.Errorf("state file %s not found", statePath)}
				}
				if err != nil {
					return err
				}
				defer st.Close()
				if rep, err = migrate.ReportFromStore(e.ctx, st, plan); err != nil {
					return err
				}
			default:
				return usageError{errors.New("give --plan, --state or --from")}
			}
			if out != "" {
				j, h, err := rep.WriteFiles(out)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "Report: %s\n        %s\n        %s\n", h, j, migrate.CSVPath(out))
				return nil
			}
			var w io.Writer = e.stdout
			switch format {
			case "text":
				return rep.WriteText(w)
			case "json":
				return rep.WriteJSON(w)
			case "html":
				return rep.WriteHTML(w)
			}
			return usageError{fmt.Errorf("--format %q: want text, json or html", format)}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&planFile, "plan", "", "plan file (its state file is read)")
	fl.StringVar(&statePath, "state", "", "state file")
	fl.StringVar(&from, "from", "", "a report.json to render again")
	fl.StringVar(&format, "format", "text", "output on stdout: text, json or html")
	fl.StringVar(&out, "out", "", "write report.json and report.html into this directory instead")
	return cmd
}

// concurrentRunsNote is said by preflight and by the --help of the commands
// that copy: a state file is locked, a mailbox is not.
const concurrentRunsNote = `Note: each run locks its state file, so a second run on the same state is refused. Two runs on
one mailbox WITHOUT a shared state file (e.g. 'migrate mail' without --state from cron, while a
plan run copies the same account) are not prevented and duplicate mail: give every run on a
mailbox the same state file.`
