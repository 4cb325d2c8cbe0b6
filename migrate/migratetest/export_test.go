package migratetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/internal/transfer"
	"github.com/zxmigrate/zxmigrate/migrate"
)

// TestExportTransferProvision runs the export on the fake source, the
// local transfer, and then the restore, which reads what arrived: an
// account removed from the copy is missing after provisioning.
func TestExportTransferProvision(t *testing.T) {
	env, err := Start(Options{Accounts: 3, Dir: t.TempDir(), Events: -1, Contacts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	env.Plan.Phases = []migrate.Phase{migrate.PhaseExport, migrate.PhaseTransfer}
	rep, err := env.Runner().Run(context.Background())
	if err != nil || len(rep.Phases) != 2 || rep.Phases[0].Status != migrate.StatusDone || rep.Phases[1].Status != migrate.StatusDone {
		t.Fatalf("export and transfer: %v, %+v", err, rep.Phases)
	}
	src, dst := env.Plan.Export.Path, env.Plan.Provisioning.BackupPath
	a, err := transfer.TreeSum(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := transfer.TreeSum(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) < 3 || cmp.Diff(a, b) != "" {
		t.Fatalf("export %d files, copy differs:\n%s", len(a), cmp.Diff(a, b))
	}
	var bytes int64
	for _, ph := range rep.Phases {
		if ph.Phase == migrate.PhaseTransfer {
			bytes = ph.Bytes
		}
	}
	if bytes < 3*ExportBlobBytes {
		t.Errorf("transfer moved %d bytes, want at least the 3 accounts' item data", bytes)
	}

	// Remove user02 from the copy: the restore reads the copy.
	removed := false
	ents, _ := os.ReadDir(filepath.Join(dst, "accounts"))
	for _, e := range ents {
		p := filepath.Join(dst, "accounts", e.Name(), "account_info")
		if c, _ := os.ReadFile(p); strings.Contains(string(c), "user02@example.com") {
			removed = os.Remove(p) == nil
		}
	}
	if !removed {
		t.Fatal("user02 not found in the copy")
	}
	env.Plan.Phases = []migrate.Phase{migrate.PhaseProvisioning, migrate.PhaseProvisioningCheck}
	rep, err = env.Runner().Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ph := range rep.Phases {
		if ph.Phase != migrate.PhaseProvisioningCheck {
			continue
		}
		if ph.Failed != 1 || len(ph.Problems) == 0 || ph.Problems[0].Item != "user02@example.com" {
			t.Errorf("provisioning check = %+v; want user02 missing", ph)
		}
	}
}
