package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/state"
)

// TestReportFromStoreLiveRun: a run whose state's lock is held by a live
// process reads "running", with its running phases running; the same
// state without the lock (the process died) reads "interrupted". An
// earlier run's saved report never stands in for the unfinished run.
func TestReportFromStoreLiveRun(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Run 1 finished done and saved its report.
	id, err := st.StartRun(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	done := &Report{Version: ReportVersion, RunID: id, Outcome: StatusDone}
	b, _ := json.Marshal(done)
	if err := st.SaveReport(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRun(ctx, id, string(StatusDone)); err != nil {
		t.Fatal(err)
	}
	// Run 2 is in progress: one account copying.
	if _, err := st.StartRun(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	if err := st.PutAccount(ctx, "a@example.com", "a@example.com", 1); err != nil {
		t.Fatal(err)
	}
	if err := st.SetPhase(ctx, "a@example.com", string(PhaseMail), string(StatusRunning), ""); err != nil {
		t.Fatal(err)
	}

	unlock, err := lockState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !StateInUse(path) {
		t.Fatal("StateInUse = false while the lock is held")
	}
	rep, err := ReportFromStore(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != StatusRunning || rep.RunID != 2 {
		t.Errorf("live run: run %d outcome %s, want run 2 running", rep.RunID, rep.Outcome)
	}
	if p := rep.Account("a@example.com").Phase(PhaseMail); p.Status != StatusRunning {
		t.Errorf("live run: mail phase %s, want running", p.Status)
	}
	var text bytes.Buffer
	_ = rep.WriteText(&text)
	if !strings.HasPrefix(text.String(), "Run 2: RUNNING") || strings.Contains(text.String(), "INTERRUPTED") {
		t.Errorf("live run text:\n%s", text.String())
	}

	unlock()
	if StateInUse(path) {
		t.Fatal("StateInUse = true after unlock")
	}
	rep, err = ReportFromStore(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != StatusInterrupted || rep.RunID != 2 {
		t.Errorf("dead run: run %d outcome %s, want run 2 interrupted", rep.RunID, rep.Outcome)
	}
	if StateInUse(filepath.Join(t.TempDir(), "none.db")) {
		t.Error("StateInUse = true for a state without a lock file")
	}
}
