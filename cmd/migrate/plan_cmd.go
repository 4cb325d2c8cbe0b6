package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/migrate"
)

// newPlanCmd is `migrate plan`: write an annotated plan and check one, so
// that the binary alone is enough to start.
func newPlanCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Write an annotated plan (plan init) or check one (plan check)",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	var force bool
	initCmd := &cobra.Command{
		Use:   "init [FILE]",
		Short: "Write an annotated example plan to FILE (or to stdout with no FILE or -)",
		Long: `Write an annotated example plan: every section and key with its meaning and default.
Edit the servers, domains and password sources, then check it with 'migrate plan check FILE'.
An existing FILE is not overwritten unless --force is given.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b := migrate.ExamplePlan()
			if len(args) == 0 || args[0] == "-" {
				_, err := e.stdout.Write(b)
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(args[0], flags, 0o644)
			if errors.Is(err, fs.ErrExist) {
				return usageError{fmt.Errorf("%s exists; it was left untouched (--force overwrites it)", args[0])}
			}
			if err != nil {
				return usageError{fmt.Errorf("plan init: %w", err)}
			}
			if _, err := f.Write(b); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Wrote %s. Edit it, then: migrate plan check %s\n", args[0], args[0])
			return nil
		},
	}
	initCmd.Flags().BoolVar(&force, "force", false, "overwrite an existing FILE")
	var secrets bool
	checkCmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a plan: syntax, keys, values and, with --secrets, that every password source is set",
		Long: `Check a plan without contacting any server: YAML syntax, unknown keys, values, and the
phases it runs. With --secrets, also check that every password it needs can be read from its
environment variable or file (the passwords are never printed). 'migrate preflight' then checks
the servers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			p, err := loadPlan(args[0])
			if err != nil {
				return err
			}
			if secrets {
				if err := p.LoadSecrets(); err != nil {
					return usageError{err}
				}
			}
			var phases []string
			for _, ph := range p.EffectivePhases() {
				phases = append(phases, string(ph))
			}
			fmt.Fprintf(e.stdout, "plan %s: ok\n  name:   %s\n  phases: %s\n  state:  %s\n  report: %s\n",
				args[0], p.Name, strings.Join(phases, ", "), p.StatePath(), p.ReportDir())
			return nil
		},
	}
	checkCmd.Flags().BoolVar(&secrets, "secrets", false, "also check that every password source (environment variable or file) is set")
	cmd.AddCommand(initCmd, checkCmd)
	return cmd
}

// loadPlan loads a plan; a missing or unreadable file and a bad plan are
// usage errors.
func loadPlan(name string) (*migrate.Plan, error) {
	p, err := migrate.LoadPlan(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageError{fmt.Errorf("plan file %s not found ('migrate plan init %s' writes an annotated one)", name, name)}
	case errors.Is(err, fs.ErrPermission):
		return nil, usageError{fmt.Errorf("plan file %s cannot be read: permission denied", name)}
	case err != nil:
		return nil, usageError{err}
	}
	return p, nil
}
