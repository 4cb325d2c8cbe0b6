package state

import (
	"context"
	"path/filepath"
	"testing"
)

func TestRunAccountsPhases(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.StartRun(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(ctx, "a@x", "a@y", 100); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(ctx, "a@x", "a@z", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAccountStatus(ctx, "nobody@x", "mail", "done", ""); err == nil {
		t.Error("SetAccountStatus of an unknown account succeeded")
	}
	if err := s.SetAccountStatus(ctx, "a@x", "mail", "failed", "boom"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPhase(ctx, "a@x", "mail", "failed", `{"x":1}`); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPhase(ctx, GlobalAccount, "smartscan", "done", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, id, "partial"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveReport(ctx, []byte(`{"version":1}`)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Everything survives a reopen.
	s, err = Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, ok, err := s.Account(ctx, "a@x")
	if err != nil || !ok {
		t.Fatalf("Account = %v, %v", ok, err)
	}
	if a.Destination != "a@z" || a.Size != 100 || a.Status != "failed" || a.Error != "boom" {
		t.Errorf("account = %+v", a)
	}
	ph, ok, err := s.Phase(ctx, "a@x", "mail")
	if err != nil || !ok || ph.Status != "failed" || ph.Detail != `{"x":1}` {
		t.Errorf("Phase = %+v, %v, %v", ph, ok, err)
	}
	if _, ok, _ := s.Phase(ctx, "a@x", "contacts"); ok {
		t.Error("Phase of a phase never recorded reports ok")
	}
	n, err := s.ResetPhases(ctx, "failed")
	if err != nil || n != 1 {
		t.Errorf("ResetPhases = %d, %v; want 1", n, err)
	}
	all, err := s.Phases(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Phases = %v, %v", all, err)
	}
	for _, p := range all {
		if p.Account == "a@x" && p.Status != "pending" {
			t.Errorf("after reset, mail phase = %s", p.Status)
		}
	}
	runs, err := s.Runs(ctx)
	if err != nil || len(runs) != 1 || runs[0].Outcome != "partial" || runs[0].Finished.IsZero() {
		t.Errorf("Runs = %+v, %v", runs, err)
	}
	rep, ok, err := s.LastReport(ctx)
	if err != nil || !ok || string(rep) != `{"version":1}` {
		t.Errorf("LastReport = %q, %v, %v", rep, ok, err)
	}
}
