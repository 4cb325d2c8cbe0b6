package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/migrate/migratetest"
)

// A whole plan against in-process servers (package migratetest, which
// the demo uses too): the Runner runs every phase, the Report says how it
// ended, and WriteFiles writes report.json, report.html and report.csv.
// With a real plan, migrate.LoadPlan("plan.yaml") gives the Plan and
// &migrate.Runner{Plan: plan} runs it.
func Example() {
	dir, err := os.MkdirTemp("", "zxmigrate-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	env, err := migratetest.Start(migratetest.Options{Accounts: 2, Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer env.Close()

	r := env.Runner() // a Runner for env.Plan, reaching the in-process servers
	r.OnEvent = func(ev migrate.Event) {
		// Called from several goroutines: keep it short.
		if f, ok := ev.(migrate.AccountFinished); ok && f.Status != migrate.StatusDone {
			fmt.Println(f.Account, f.Status)
		}
	}
	rep, err := r.Run(context.Background())
	if err != nil {
		log.Fatal(err) // the run could not go on: a plan, credential or state problem
	}
	fmt.Println(rep.Outcome, len(rep.Accounts), "accounts")
	if _, _, err := rep.WriteFiles(env.Plan.ReportDir()); err != nil {
		log.Fatal(err)
	}
	// Output:
	// done 2 accounts
}

// ParsePlan reads a plan from YAML and checks it: an error is a
// *PlanError naming the key and line. Credentials are named by
// environment variable or file, never written in the plan.
func ExampleParsePlan() {
	os.Setenv("EXAMPLE_ADMIN_PASSWORD", "from the environment")
	defer os.Unsetenv("EXAMPLE_ADMIN_PASSWORD")
	const yaml = `
name: example.com to Carbonio
source:
  admin: {url: "https://zimbra.example.com:7071", user: import-admin@example.com, password_env: EXAMPLE_ADMIN_PASSWORD}
  imap: {address: "zimbra.example.com:993", admin: import-admin@example.com, password_env: EXAMPLE_ADMIN_PASSWORD}
destination:
  imap: {address: "carbonio.example.com:993", admin: import-admin@carbonio.local, password_env: EXAMPLE_ADMIN_PASSWORD}
domains: [example.com]
phases: [mail]
`
	plan, err := migrate.ParsePlan(strings.NewReader(yaml))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(plan.Name, plan.Phases, plan.Source.IMAP.Password)

	_, err = migrate.ParsePlan(strings.NewReader("name: x\nsource: {imap: {address: 42\n"))
	var pe *migrate.PlanError
	fmt.Println(errors.As(err, &pe))
	// Output:
	// example.com to Carbonio [mail] REDACTED
	// true
}
