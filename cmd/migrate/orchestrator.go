package main

import (
	"github.com/spf13/cobra"
)

// newOrchestratorCmds returns demo, preflight, run, verify and report.
// Shell completion is cobra's own
// `completion` command.
func newOrchestratorCmds(e *env) []*cobra.Command {
	return []*cobra.Command{
		newDemoCmd(e),
		newPreflightCmd(e),
		newRunCmd(e),
		newVerifyCmd(e),
		newReportCmd(e),
	}
}
