package main

import (
	"fmt"

	"github.com/zxmigrate/zxmigrate/migrate"
)

// warnMTA makes the MTA warning the last thing a run prints when the run
// left the destination MTA stopped (mta_stop done, mta_start not): the
// error that ended the run first, then the warning with the command that
// starts the MTA. It returns the error to exit with, marked as printed.
func warnMTA(e *env, rep *migrate.Report, err error) error {
	if rep == nil || rep.MTA == nil {
		return err
	}
	if err != nil && !isReported(err) {
		printError(e.stderr, err, e.g.debug())
		err = reportedError{err}
	}
	fmt.Fprint(e.stderr, "\n"+rep.MTA.Warning())
	return err
}

// warnPlanMTA is warnMTA for a run that ended without a report (it failed
// before it began, e.g. a server unreachable on the resume): the plan's
// state says whether an earlier run left the MTA stopped.
func warnPlanMTA(e *env, p *migrate.Plan, rep *migrate.Report, err error) error {
	if rep != nil || err == nil || p == nil {
		return err
	}
	return warnMTA(e, &migrate.Report{MTA: migrate.MTALeftStopped(e.ctx, p)}, err)
}
