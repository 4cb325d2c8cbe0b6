package migratetest

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/state"
)

// interruptAfterMTAStop runs the environment's plan and stops it softly
// (as the first Ctrl-C does) as soon as mta_stop has finished.
func interruptAfterMTAStop(t *testing.T, env *Env) *migrate.Report {
	t.Helper()
	r := env.Runner()
	r.OnEvent = func(ev migrate.Event) {
		if f, ok := ev.(migrate.PhaseFinished); ok && f.Result.Phase == migrate.PhaseMTAStop {
			r.Stop()
		}
	}
	rep, err := r.Run(context.Background())
	if err == nil || rep == nil {
		t.Fatalf("Run = %v, %v; want the stopped run's report and ErrStopped", rep, err)
	}
	return rep
}

// TestMTAStoppedWarning: a run stopped after mta_stop leaves the
// destination MTA stopped; its report says so with the command that starts
// it, in the text (last lines), the HTML and the JSON, and so does a report
// read back from the state file alone.
func TestMTAStoppedWarning(t *testing.T) {
	env, err := Start(Options{Accounts: 2, Dir: t.TempDir(), Events: 2, Contacts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	env.Plan.Destination.CLI.Mode = "ssh"
	env.Plan.Destination.CLI.SSH = migrate.SSHEndpoint{Address: "mta.carbonio.local", User: "root", RunAs: "zextras"}
	const wantCmd = "migrate carbonio mta start --ssh root@mta.carbonio.local --run-as zextras"

	rep := interruptAfterMTAStop(t, env)
	if env.DestinationAdmin().MTARunning() {
		t.Fatal("the fake MTA runs: the test did not stop the run between mta_stop and mta_start")
	}
	if rep.MTA == nil || !rep.MTA.Certain || rep.MTA.StartCommand != wantCmd {
		t.Fatalf("report MTA = %+v, want a certain stop with %q", rep.MTA, wantCmd)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	tail := strings.Join(lines[max(0, len(lines)-4):], "\n")
	if !strings.Contains(tail, "destination MTA is STOPPED") || !strings.Contains(tail, wantCmd) {
		t.Errorf("the last lines of the summary do not warn with the command:\n%s", text.String())
	}
	var html, js bytes.Buffer
	_ = rep.WriteHTML(&html)
	_ = rep.WriteJSON(&js)
	if !strings.Contains(html.String(), `id="mta-stopped"`) || !strings.Contains(html.String(), wantCmd) {
		t.Error("the HTML report does not carry the MTA warning")
	}
	if !strings.Contains(js.String(), `"mta_stopped"`) || !strings.Contains(js.String(), wantCmd) {
		t.Error("the JSON report does not carry the MTA warning")
	}

	// From the state alone (migrate report --state): no plan, the command
	// recorded with mta_stop.
	st, err := state.Open(context.Background(), env.Plan.StatePath())
	if err != nil {
		t.Fatal(err)
	}
	back, err := migrate.ReportFromStore(context.Background(), st, nil)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if back.MTA == nil || back.MTA.StartCommand != wantCmd {
		t.Errorf("report from the state: MTA = %+v, want %q", back.MTA, wantCmd)
	}

	// Finishing the run starts the MTA and clears the warning.
	rep2, err := env.Runner().Run(context.Background())
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if !env.DestinationAdmin().MTARunning() || rep2.MTA != nil {
		t.Errorf("after the finishing run: MTA running %v, warning %+v", env.DestinationAdmin().MTARunning(), rep2.MTA)
	}
}

// TestMTARestartOnInterrupt: with mta.restart_on_interrupt the MTA is
// started again when the run is interrupted, the report carries no
// warning, and the next run stops it again before copying and starts it at
// its end.
func TestMTARestartOnInterrupt(t *testing.T) {
	env, err := Start(Options{Accounts: 2, Dir: t.TempDir(), Events: 2, Contacts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	env.Plan.MTA.RestartOnInterrupt = true
	adm := env.DestinationAdmin()

	rep := interruptAfterMTAStop(t, env)
	if !adm.MTARunning() {
		t.Fatal("the MTA is still stopped after the interrupt")
	}
	if rep.MTA != nil {
		t.Errorf("report warns %+v though the MTA was started again", rep.MTA)
	}
	var mta []string
	for _, c := range adm.CLICommands() {
		if len(c) > 0 && c[0] == "zmmtactl" {
			mta = append(mta, strings.Join(c, " "))
		}
	}
	if want := []string{"zmmtactl stop", "zmmtactl start"}; !slices.Equal(mta, want) {
		t.Fatalf("MTA commands %q, want %q", mta, want)
	}

	var order []migrate.Phase
	r := env.Runner()
	r.OnEvent = func(ev migrate.Event) {
		if s, ok := ev.(migrate.PhaseStarted); ok && s.Account == "" {
			order = append(order, s.Phase)
		}
	}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if len(order) == 0 || order[0] != migrate.PhaseMTAStop || order[len(order)-1] != migrate.PhaseMTAStart {
		t.Errorf("second run's global phases %v: want mta_stop first and mta_start last", order)
	}
	if !adm.MTARunning() {
		t.Error("the MTA is stopped after the second run")
	}
}

// TestReportVerifiedCounts: every account and every folder of a finished
// run shows its verification as "N of N verified", N being what the
// source holds.
func TestReportVerifiedCounts(t *testing.T) {
	env, err := Start(Options{Accounts: 2, Dir: t.TempDir(), Events: 3, Contacts: 3, VirtualEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	rep, err := env.Runner().Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, a := range rep.Accounts {
		v := a.Phase(migrate.PhaseVerify)
		msgs := int64(env.SourceMessages(a.Source))
		objs := int64(env.DestinationObjects(a.Source))
		if v == nil || v.ToVerify != msgs+objs || v.Verified != v.ToVerify {
			t.Errorf("%s: verify %+v, want %d of %d verified (%d messages, %d objects)", a.Source, v, msgs+objs, msgs+objs, msgs, objs)
			continue
		}
		for _, d := range v.Details {
			if d.ToVerify != d.SourceCount || d.Verified != d.ToVerify {
				t.Errorf("%s %s: %d of %d verified, source holds %d", a.Source, d.Name, d.Verified, d.ToVerify, d.SourceCount)
			}
		}
		sum += v.Verified
	}
	if rep.Totals.Verified != sum || rep.Totals.ToVerify != sum {
		t.Errorf("totals %d of %d verified, accounts sum to %d", rep.Totals.Verified, rep.Totals.ToVerify, sum)
	}
	var text bytes.Buffer
	_ = rep.WriteText(&text)
	if !strings.Contains(text.String(), "Verified: ") || !strings.Contains(text.String(), " of ") {
		t.Errorf("summary has no verification line:\n%s", text.String())
	}
}
