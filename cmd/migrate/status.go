package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/dashboard"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/state"
)

func newStatusCmd(e *env) *cobra.Command {
	var planFile, statePath string
	var watch time.Duration
	var asJSON bool
	var lf listenFlags
	cmd := &cobra.Command{
		Use:   "status (--plan FILE | --state FILE|URL) [--watch] [--json] [--serve ADDR]",
		Short: "Show accounts per state, runners, leases, budgets, throughput and ETA; or serve the dashboard",
		Long: `Read the state that every runner of a plan shares (a state file, or a PostgreSQL URL) and print:
the accounts per state; for each running account its runner, lease, phase, messages and bytes;
the global phases and who ran them; the budgets' slots in use; throughput and an ETA; and the
accounts that are stuck (a lease ran out) or retrying. While a run goes on it says "running".
--watch prints it again every interval (throughput then measured between two readings).
With --serve, serve the live dashboard (/) and Prometheus metrics (/metrics) from the state file or URL
alone until Ctrl-C: counts, names and reasons from what the runners recorded. Read-only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var plan *migrate.Plan
			if planFile != "" {
				p, err := migrate.LoadPlan(planFile)
				if err != nil {
					return err
				}
				plan = p
				if statePath == "" {
					statePath = p.StatePath()
				}
			}
			if statePath == "" {
				return usageError{errors.New("give --plan or --state")}
			}
			if lf.addr == "" {
				return showStatus(e, statePath, plan, watch, asJSON)
			}
			var view *dashboard.StoreView
			if state.IsURL(statePath) {
				// A shared state stays open: the view reads it through the
				// store interface, with every runner's accounts and budgets.
				st, err := state.OpenURLReadOnly(e.ctx, statePath)
				if err != nil {
					return err
				}
				defer st.Close()
				view = dashboard.NewStoreView(st, plan)
			} else {
				if _, err := os.Stat(statePath); err != nil {
					return usageError{fmt.Errorf("state file: %w", err)}
				}
				view = dashboard.NewStoreViewPath(statePath, plan)
			}
			s, err := lf.listen(lf.addr, view, dashboard.NewStoreMetrics(view.Counts))
			if err != nil {
				return err
			}
			defer s.Close()
			hold(e.ctx, e.stdout, s.URL())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&planFile, "plan", "", "plan file (its state file is read; names and budgets come from it)")
	fl.StringVar(&statePath, "state", "", "state file or postgres://USER@HOST:PORT/DB URL (password from MIGRATE_STATE_PASSWORD, a password file or libpq's environment)")
	fl.DurationVar(&watch, "watch", 0, "print the status again every interval until Ctrl-C (e.g. --watch 5s)")
	fl.BoolVar(&asJSON, "json", false, "print the status as JSON")
	fl.Lookup("watch").NoOptDefVal = "5s"
	lf.add(cmd, "serve", "serve the dashboard and metrics on host:port until Ctrl-C (loopback unless a token is set)")
	return cmd
}

// showStatus prints the status of the state at target, once or every
// watch until the command's context ends.
func showStatus(e *env, target string, plan *migrate.Plan, watch time.Duration, asJSON bool) error {
	if !state.IsURL(target) {
		if _, err := os.Stat(target); err != nil {
			return usageError{fmt.Errorf("state file: %w", err)}
		}
	}
	st, err := state.OpenURLReadOnly(e.ctx, target)
	if err != nil {
		return err
	}
	defer st.Close()
	var prev *stateStatus
	for {
		s, err := readStatus(e.ctx, st, prev)
		if err != nil {
			return err
		}
		if asJSON {
			if err := s.writeJSON(e.stdout); err != nil {
				return err
			}
		} else {
			if prev != nil {
				fmt.Fprintln(e.stdout)
			}
			s.writeText(e.stdout)
			if m := migrate.MTALeftStoppedAt(e.ctx, target, plan); m != nil && !state.IsURL(target) {
				fmt.Fprint(e.stdout, "\n"+m.Warning())
			}
		}
		if watch <= 0 {
			return nil
		}
		prev = s
		t := time.NewTimer(watch)
		select {
		case <-e.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
