package main

import (
	"context"
	"errors"
	"strings"

	"github.com/zxmigrate/zxmigrate/internal/retry"
)

// Exit codes. README.md documents them; keep the two in step.
const (
	exitOK          = 0   // everything copied and verified
	exitInternal    = 1   // unexpected error: a bug or an environment problem
	exitUsage       = 2   // bad flags, bad plan, missing credential
	exitPartial     = 3   // finished, but some items were skipped, failed or did not verify
	exitAuth        = 4   // a server refused our credentials
	exitUnreachable = 5   // a server could not be reached
	exitInterrupted = 130 // interrupted (Ctrl-C, SIGTERM); state was saved
)

// usageError marks bad input from the user: flags, plan, credentials' sources.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// errPartial is returned by a command that printed its report and found
// items skipped, failed or unverified.
var errPartial = reportedError{errors.New("finished with skipped, failed or unverified items")}

// reportedError is an error whose details the command already printed.
type reportedError struct{ err error }

func (r reportedError) Error() string { return r.err.Error() }
func (r reportedError) Unwrap() error { return r.err }

func isReported(err error) bool {
	var r reportedError
	return errors.As(err, &r)
}

// unreachableError marks a server that could not be reached at all.
type unreachableError struct{ err error }

func (u unreachableError) Error() string { return u.err.Error() }
func (u unreachableError) Unwrap() error { return u.err }

// exitCode maps the outcome of a command to the process exit code. It is the
// only place that does so.
func exitCode(ctx context.Context, err error) int {
	var (
		ue usageError
		un unreachableError
	)
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, retry.ErrAuth):
		return exitAuth
	case errors.As(err, &un):
		return exitUnreachable
	case errors.Is(err, errPartial):
		return exitPartial
	case isCobraUsage(err):
		return exitUsage
	default:
		return exitInternal
	}
}

// isCobraUsage recognises cobra's own argument errors, which it returns as
// plain errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "required flag"} {
		if strings.HasPrefix(s, p) || strings.Contains(s, "required flag(s)") {
			return true
		}
	}
	return false
}
