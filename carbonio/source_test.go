package carbonio_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
)

// TestSourceExport runs the export through the zxsuite command line of a
// fake source: the directory is created, the command line is the
// documented one, the operation is waited for, and a second look finds no
// export running.
func TestSourceExport(t *testing.T) {
	srv := carboniotest.New(carboniotest.Options{OperationSteps: 3})
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "export")
	s := &carbonio.Source{Runner: srv.ExportRunner(1000), PollInterval: time.Millisecond, PollMax: 4 * time.Millisecond}
	ctx := context.Background()
	if err := s.MakeDir(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("export directory: %v, %v", fi, err)
	}
	op, err := s.Export(ctx, dir, carbonio.ExportOptions{Domains: []string{"example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if running, ok, err := s.RunningExport(ctx); err != nil || !ok || running.ID != op.ID {
		t.Fatalf("RunningExport = %+v, %v, %v; want %s", running, ok, err, op.ID)
	}
	var seen int
	final, err := s.Wait(ctx, op, func(carbonio.Operation) { seen++ })
	if err != nil || final.ID != op.ID || seen == 0 {
		t.Fatalf("Wait = %+v, %v (%d updates)", final, err, seen)
	}
	want := []string{"zxsuite", "--json", "backup", "doExport", dir, "domains", "example.com"}
	if !slices.ContainsFunc(srv.CLICommands(), func(c []string) bool { return slices.Equal(c, want) }) {
		t.Errorf("commands %q lack %q", srv.CLICommands(), want)
	}
	if _, ok, err := s.RunningExport(ctx); err != nil || ok {
		t.Errorf("RunningExport after the end = %v, %v", ok, err)
	}
	fx, err := carboniotest.ReadExport(dir)
	if err != nil || len(fx.Accounts) == 0 {
		t.Fatalf("ReadExport = %+v, %v", fx, err)
	}
	for _, a := range fx.Accounts {
		if !strings.HasSuffix(a.Name, "@example.com") {
			t.Errorf("account %s exported from another domain", a.Name)
		}
	}

	// A failed export fails the wait.
	srv.FailOperations("doExport", "disk full")
	op, err = s.Export(ctx, dir, carbonio.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(ctx, op, nil); !errors.Is(err, carbonio.ErrOperationFailed) {
		t.Errorf("Wait on a failed export = %v", err)
	}
}
