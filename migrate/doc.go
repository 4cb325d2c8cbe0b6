// Package migrate runs a whole-domain migration from Zextras Suite (Zimbra)
// to Carbonio as one plan: resumable, parallel, watched, and ending in a
// report anyone can read.
//
// A Plan (YAML, see testdata/plan.example.yaml) names the source and
// destination endpoints (admin SOAP, IMAP, DAV), credentials by reference
// (environment variable or file, never inline), the domains, the account
// selection, the address map, the phases and the concurrency. A Runner runs
// it in the documented procedure's order:
//
//	mta_stop → smartscan → provisioning (external restore, provisioning only)
//	→ provisioning_check → account pool [mail → calendars → contacts → verify]
//	→ dedup → mta_start
//
// The account pool runs concurrent_accounts accounts at once, largest first;
// one account's failure is recorded and never stops the others. Every phase
// and every copied item is recorded in one SQLite state file
// (package github.com/zxmigrate/zxmigrate/state), so the same Run after a crash, SIGKILL or Ctrl-C
// continues exactly where it stopped, and a second Run does nothing.
// RetryFailed runs failed phases again; Delta runs the copies again for a
// cutover pass.
//
// Quick start:
//
//	plan, err := migrate.LoadPlan("plan.yaml")
//	if err != nil {
//		return err // a *PlanError names the key and line
//	}
//	r := &migrate.Runner{Plan: plan, OnEvent: func(ev migrate.Event) {
//		if f, ok := ev.(migrate.PhaseFinished); ok {
//			fmt.Println(f.Account, f.Result.Phase, f.Result.Status)
//		}
//	}}
//	rep, err := r.Run(ctx)
//	if rep != nil {
//		rep.WriteFiles(plan.ReportDir()) // report.json (version 1), a self-contained report.html, report.csv
//	}
//
// Example (in example_test.go) runs a whole plan this way against
// in-process servers; ExampleParsePlan shows a plan's YAML.
//
// Preflight checks servers, credentials and accounts and inventories what
// will not migrate, writing nothing; Verify recomputes the
// source-versus-destination proof at any time.
//
// Events (RunStarted, PhaseStarted, Progress, ItemProblem, PhaseFinished,
// AccountFinished, RunFinished) are the contract: the CLI's progress bars,
// logs and the report consume the same data. Package migratetest starts a
// complete in-process environment for tests and the demo.
package migrate
