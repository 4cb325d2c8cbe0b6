package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newCarbonioCmd is `migrate carbonio`. Owned by the carbonio work (issue 5).
func newCarbonioCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "carbonio",
		Short: "Drive the Carbonio admin API (not implemented yet)",
		RunE:  func(*cobra.Command, []string) error { return usageError{errors.New("carbonio: not implemented yet")} },
	}
}
