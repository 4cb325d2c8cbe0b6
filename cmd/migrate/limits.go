package main

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/state"
	"github.com/zxmigrate/zxmigrate/termsafe"
)

func newLimitsCmd(e *env) *cobra.Command {
	var planFile, target string
	cmd := &cobra.Command{
		Use:   "limits (--plan FILE | --state FILE|URL) [show | set KEY N]",
		Short: "Show or change the global budgets (connections, requests per second per server) while runners work",
		Long: `Show the budgets of a state and the slots the runners hold now, or change one budget. Every runner
of the state picks a change up within seconds, without a restart: a lowered budget grants no new
connection until its use is below it; connections held beyond it are given back as they end.

Keys:
  source.imap, destination.imap   concurrent IMAP connections to that server, all runners together
  http:HOST                       concurrent HTTP requests to HOST (DAV, REST, SOAP)
  http_rate:HOST                  HTTP requests per second to HOST, shared by the live runners
N = 0 removes the budget. The plan's limits section sets these when a state first sees them.`,
		Args: cobra.MaximumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if target == "" && planFile != "" {
				p, err := loadPlan(planFile)
				if err != nil {
					return err
				}
				target = p.StatePath()
			}
			if target == "" {
				return usageError{errors.New("give --plan or --state")}
			}
			op := "show"
			if len(args) > 0 {
				op = args[0]
			}
			switch {
			case op == "show" && len(args) <= 1:
				st, err := state.OpenURLReadOnly(e.ctx, target)
				if err != nil {
					return err
				}
				defer st.Close()
				ls, err := st.Limits(e.ctx)
				if err != nil {
					return err
				}
				printLimits(e, ls)
				return nil
			case op == "set" && len(args) == 3:
				n, err := strconv.Atoi(args[2])
				if err != nil || n < 0 {
					return usageError{fmt.Errorf("limits set: %q is not a number >= 0", args[2])}
				}
				if args[1] == migrate.BudgetRunners {
					return usageError{fmt.Errorf("limits set: %s counts the live runners; it has no budget", args[1])}
				}
				// A state file is shared with its running runner through
				// SQLite's own locking; its run lock is not taken here.
				st, err := state.OpenURL(e.ctx, target)
				if err != nil {
					return err
				}
				defer st.Close()
				if err := st.SetLimit(e.ctx, args[1], n); err != nil {
					return err
				}
				if n == 0 {
					fmt.Fprintf(e.stdout, "%s: no budget\n", args[1])
				} else {
					fmt.Fprintf(e.stdout, "%s: %d\n", args[1], n)
				}
				return nil
			}
			return usageError{errors.New("want: limits [show] or limits set KEY N")}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&planFile, "plan", "", "plan file (its state is used)")
	fl.StringVar(&target, "state", "", "state file or postgres://USER@HOST:PORT/DB URL (password from MIGRATE_STATE_PASSWORD, a password file or libpq's environment)")
	return cmd
}

func printLimits(e *env, ls []state.Limit) {
	sort.Slice(ls, func(i, j int) bool { return ls[i].Key < ls[j].Key })
	fmt.Fprintf(e.stdout, "%-40s %8s %8s\n", "BUDGET", "IN USE", "MAX")
	for _, l := range ls {
		max := "-"
		if l.Max > 0 {
			max = strconv.Itoa(l.Max)
		}
		termsafe.Fprintf(e.stdout, "%-40s %8d %8s\n", l.Key, l.InUse, max)
	}
}
