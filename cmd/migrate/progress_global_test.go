package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/migrate"
)

func TestGlobalProgressLines(t *testing.T) {
	var b bytes.Buffer
	p, err := newProgress(&b, "plain")
	if err != nil {
		t.Fatal(err)
	}
	p.OnEvent(migrate.Progress{Phase: migrate.PhaseTransfer, Bytes: 1e6, TotalBytes: 4e6, Items: 3, Total: 18})
	p.OnEvent(migrate.Progress{Phase: migrate.PhaseTransfer, Bytes: 2e6, TotalBytes: 4e6, Items: 5, Total: 18})  // within 2s: not printed
	p.OnEvent(migrate.Progress{Phase: migrate.PhaseTransfer, Bytes: 4e6, TotalBytes: 4e6, Items: 18, Total: 18}) // complete: printed
	p.OnEvent(migrate.Progress{Phase: migrate.PhaseSmartScan, Items: 40, Total: 100})
	out := b.String()
	for _, want := range []string{"transfer:  25%, 1.0 of 4.0 MB, 3/18 entries", "transfer: 100%, 4.0 of 4.0 MB, 18/18 entries", "smartscan: 40%"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "2.0 of 4.0") {
		t.Errorf("progress printed more often than every %s:\n%s", globalEvery, out)
	}
}

// TestDemoExportTransfer checks that the demo runs the export and the
// transfer and says how the export was copied.
func TestDemoExportTransfer(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"demo", "--out", t.TempDir(), "--accounts", "2", "--progress", "plain"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	s := errb.String()
	if !strings.Contains(s, "export: done (operation ") {
		t.Errorf("no finished export in the progress:\n%s", s)
	}
	if !strings.Contains(s, "transfer: done (") || !strings.Contains(s, "the destination sees all 2 selected accounts") ||
		!(strings.Contains(s, "by rsync from") || strings.Contains(s, "built-in copier (rsync is not installed here)")) {
		t.Errorf("the transfer line does not say how the export was copied:\n%s", s)
	}
	if !strings.Contains(s, "transfer: 100%") {
		t.Errorf("no transfer progress line:\n%s", s)
	}
}
