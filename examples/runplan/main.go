// Command runplan runs a zxmigrate plan from Go with its own event
// handler: one line per finished phase, and the report written at the end.
//
//	go run ./examples/runplan -plan plan.yaml
//
// Without -plan it runs the embedded demo environment instead (in-process
// servers), so it works on a fresh clone.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync/atomic"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/migrate/migratetest"
)

func main() {
	planFile := flag.String("plan", "", "plan file (default: the in-process demo environment)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var r *migrate.Runner
	if *planFile != "" {
		plan, err := migrate.LoadPlan(*planFile)
		if err != nil {
			log.Fatal(err)
		}
		r = &migrate.Runner{Plan: plan}
	} else {
		dir, err := os.MkdirTemp("", "zxmigrate-runplan-")
		if err != nil {
			log.Fatal(err)
		}
		env, err := migratetest.Start(migratetest.Options{Accounts: 3, Dir: dir}) // Dir is kept: the report stays
		if err != nil {
			log.Fatal(err)
		}
		defer env.Close()
		r = env.Runner()
	}

	// The handler may be called concurrently: keep it quick and safe.
	var messages atomic.Int64
	r.OnEvent = func(ev migrate.Event) {
		switch e := ev.(type) {
		case migrate.PhaseFinished:
			if e.Result.Phase == migrate.PhaseMail {
				messages.Add(e.Result.Copied)
			}
			who := e.Account
			if who == "" {
				who = "(run)"
			}
			fmt.Printf("%-28s %-18s %-8s copied=%d present=%d skipped=%d failed=%d\n",
				who, e.Result.Phase, e.Result.Status, e.Result.Copied, e.Result.Existing, e.Result.Skipped, e.Result.Failed)
		case migrate.ItemProblem:
			fmt.Printf("  problem: %s %s %s: %s\n", e.Account, e.Phase, e.Item, e.Reason)
		}
	}
	rep, err := r.Run(ctx)
	if rep != nil {
		jsonPath, htmlPath, werr := rep.WriteFiles(r.Plan.ReportDir())
		if werr != nil {
			log.Print(werr)
		} else {
			fmt.Printf("%d messages copied; report: %s (%s)\n", messages.Load(), htmlPath, jsonPath)
		}
		_ = rep.WriteText(os.Stdout)
	}
	if err != nil {
		log.Fatal(err)
	}
	if !rep.OK() {
		os.Exit(3)
	}
}
