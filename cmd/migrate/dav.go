package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newCalendarsCmd is `migrate calendars`. Owned by the caldav work (issue 4).
func newCalendarsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "calendars",
		Short: "Copy calendars and task lists over CalDAV (not implemented yet)",
		RunE:  func(*cobra.Command, []string) error { return usageError{errors.New("calendars: not implemented yet")} },
	}
}

// newContactsCmd is `migrate contacts`. Owned by the carddav work (issue 4).
func newContactsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "contacts",
		Short: "Copy address books over CardDAV (not implemented yet)",
		RunE:  func(*cobra.Command, []string) error { return usageError{errors.New("contacts: not implemented yet")} },
	}
}
