package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/dashboard"
	"github.com/zxmigrate/zxmigrate/migrate"
)

func newStatusCmd(e *env) *cobra.Command {
	var planFile, statePath string
	var lf listenFlags
	cmd := &cobra.Command{
		Use:   "status (--plan FILE | --state FILE) [--serve ADDR]",
		Short: "Show accounts per state from the state file, or serve the dashboard and metrics from it",
		Long: `Read the state file that every runner of a plan shares and print the accounts per state.
With --serve, serve the live dashboard (/) and Prometheus metrics (/metrics) from the state file
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
			if _, err := os.Stat(statePath); err != nil {
				return usageError{fmt.Errorf("state file: %w", err)}
			}
			view := dashboard.NewStoreViewPath(statePath, plan)
			if lf.addr == "" {
				counts, err := view.Counts(e.ctx)
				if err != nil {
					return err
				}
				keys := make([]string, 0, len(counts))
				total := 0
				for k, n := range counts {
					keys = append(keys, k)
					total += n
				}
				sort.Strings(keys)
				fmt.Fprintf(e.stdout, "%d accounts\n", total)
				for _, k := range keys {
					fmt.Fprintf(e.stdout, "  %-12s %d\n", k, counts[k])
				}
				if m := migrate.MTALeftStoppedAt(e.ctx, statePath, plan); m != nil {
					fmt.Fprint(e.stdout, "\n"+m.Warning())
				}
				return nil
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
	fl.StringVar(&statePath, "state", "", "state file")
	lf.add(cmd, "serve", "serve the dashboard and metrics on host:port until Ctrl-C (loopback unless a token is set)")
	return cmd
}
