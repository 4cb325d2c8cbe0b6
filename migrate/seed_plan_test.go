package migrate

import (
	"errors"
	"strings"
	"testing"
)

func TestExamplePlanSeedPhases(t *testing.T) {
	p, err := LoadPlan("testdata/plan.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Export.Path == "" || p.Transfer.mode() != TransferRsync || p.transferSSH().RunAs != "zimbra" {
		t.Fatalf("example export/transfer = %+v %+v", p.Export, p.Transfer)
	}
	p.Phases = append(p.Phases, PhaseTransfer, PhaseExport)
	if err := p.Validate(); err != nil {
		t.Fatalf("example with export and transfer: %v", err)
	}
	got := p.EffectivePhases()
	if got[0] != PhaseExport || got[1] != PhaseTransfer || got[2] != PhaseMTAStop {
		t.Errorf("phases %v: export and transfer must run first", got)
	}
}

func TestSeedPlanBadInput(t *testing.T) {
	base := func() *Plan {
		return &Plan{
			Domains:      []string{"example.com"},
			Accounts:     Selection{ListFile: "accounts.txt"},
			Phases:       []Phase{PhaseExport, PhaseTransfer},
			Source:       Endpoint{CLI: CLIEndpoint{Mode: "ssh", SSH: SSHEndpoint{Address: "zimbra.example.com"}}},
			Export:       ExportPlan{Path: "/tmp/export"},
			Provisioning: Provisioning{BackupPath: "/opt/zextras/migration/export"},
		}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("base plan: %v", err)
	}
	for _, tc := range []struct {
		name, key, msg string
		edit           func(*Plan)
	}{
		{"export without path", "export.path", "absolute path", func(p *Plan) { p.Export.Path = "" }},
		{"relative export path", "export.path", "absolute path", func(p *Plan) { p.Export.Path = "export" }},
		{"export without source cli", "source.cli.mode", "zxsuite", func(p *Plan) { p.Source.CLI = CLIEndpoint{} }},
		{"transfer without backup path", "provisioning.backup_path", "absolute path", func(p *Plan) { p.Provisioning.BackupPath = "" }},
		{"into Carbonio's backup path", "provisioning.backup_path", "Carbonio's own backup path",
			func(p *Plan) { p.Provisioning.BackupPath = "/opt/zextras/backup/zextras/export" }},
		{"unknown mode", "transfer.mode", "unknown mode", func(p *Plan) { p.Transfer.Mode = "scp" }},
		{"unknown verify", "transfer.verify", "unknown verify", func(p *Plan) { p.Transfer.Verify = "md5" }},
		{"negative bwlimit", "transfer.bwlimit", "negative", func(p *Plan) { p.Transfer.BWLimit = -1 }},
		{"bad chown", "transfer.chown", "USER:GROUP", func(p *Plan) { p.Transfer.Chown = "--rsh=evil" }},
		{"rsync without ssh", "transfer.ssh.address", "source host", func(p *Plan) {
			p.Phases = []Phase{PhaseTransfer}
			p.Source.CLI = CLIEndpoint{}
		}},
		{"transfer without export path", "export.path", "export's absolute path", func(p *Plan) {
			p.Phases = []Phase{PhaseTransfer}
			p.Export.Path = ""
		}},
		{"local onto itself", "transfer.path", "nothing to copy", func(p *Plan) {
			p.Transfer = TransferPlan{Mode: "local", Path: "/opt/zextras/migration/export/"}
		}},
		{"check without destination cli", "destination.cli.mode", "getAvailableAccounts", func(p *Plan) {
			p.Phases = []Phase{PhaseTransfer}
			p.Transfer.Mode = "check"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			tc.edit(p)
			err := p.Validate()
			var found bool
			for _, e := range flatten(err) {
				var pe *PlanError
				if errors.As(e, &pe) && pe.Key == tc.key && strings.Contains(pe.Msg, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("Validate = %v; want %s: …%s…", err, tc.key, tc.msg)
			}
		})
	}
	// Check mode with a destination command line needs no source at all.
	p := base()
	p.Phases, p.Source.CLI, p.Export.Path = []Phase{PhaseTransfer}, CLIEndpoint{}, ""
	p.Transfer.Mode = "check"
	p.Destination.CLI.Mode = "local"
	if err := p.Validate(); err != nil {
		t.Errorf("check mode: %v", err)
	}
}
