package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newOrchestratorCmds returns demo, preflight, run, verify and report. Owned
// by the migrate work (issue 6).
func newOrchestratorCmds(e *env) []*cobra.Command {
	var cmds []*cobra.Command
	for _, n := range []string{"demo", "preflight", "run", "verify", "report"} {
		cmds = append(cmds, &cobra.Command{
			Use:   n,
			Short: n + " (not implemented yet)",
			RunE:  func(*cobra.Command, []string) error { return usageError{errors.New(n + ": not implemented yet")} },
		})
	}
	return cmds
}
