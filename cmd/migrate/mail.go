package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newMailCmd is `migrate mail`. Owned by the imapcopy work (issue 3).
func newMailCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "mail",
		Short: "Copy one mailbox over IMAP (not implemented yet)",
		RunE:  func(*cobra.Command, []string) error { return usageError{errors.New("mail: not implemented yet")} },
	}
}
