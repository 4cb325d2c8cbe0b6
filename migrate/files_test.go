package migrate_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/carbonio/files"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TestFilesPhase moves alice's Briefcase (a document with 3 revisions and
// one in a sub-folder) across a domain rename into Carbonio Files, lists
// it in the report's Files section and no longer as not migrated, and
// uploads nothing on a second run with the same state.
type filesEnv struct {
	fs   *carboniotest.Files
	bc   *carboniotest.Briefcase
	revs [][]byte
	plan func(phases ...migrate.Phase) *migrate.Plan
}

// newFilesEnv starts a source admin API (example.com) with alice's
// Briefcase and a sub-folder, the Briefcase REST fake holding a document
// with 3 revisions and one in the sub-folder, a destination admin API
// (example.net) and the Files fake.
func newFilesEnv(t *testing.T) *filesEnv {
	t.Helper()
	folders := carboniotest.DefaultFolders()
	for i := range folders {
		if folders[i].Name == "Briefcase" {
			folders[i].Count = 1
			folders[i].Folders = []carboniotest.FixtureFolder{{Name: "Projects", View: "document"}}
		}
	}
	src := carboniotest.New(carboniotest.Options{Admin: "admin@src", Password: "pw", Fixture: &carboniotest.Fixture{
		Domains: []string{"example.com"}, Accounts: []carboniotest.FixtureAccount{{Name: "alice@example.com", Folders: folders}}}})
	t.Cleanup(src.Close)
	dst := carboniotest.New(carboniotest.Options{Admin: "admin@dst", Password: "pw", Fixture: &carboniotest.Fixture{
		Domains: []string{"example.net"}, Accounts: []carboniotest.FixtureAccount{{Name: "alice@example.net"}}}})
	t.Cleanup(dst.Close)

	bc := carboniotest.NewBriefcase("")
	bc.TokenCheck = src.ValidUserToken
	revs := [][]byte{[]byte("draft\n"), []byte("draft\nreviewed\n"), []byte("draft\nreviewed\nfinal\n")}
	bc.AddDocument("alice@example.com", "Briefcase", "report.txt", "text/plain", revs...)
	bc.AddDocument("alice@example.com", "Briefcase/Projects", "plan.pdf", "application/pdf", []byte("%PDF-1.4 plan"))
	bs := httptest.NewTLSServer(bc)
	t.Cleanup(bs.Close)
	fs := carboniotest.NewFiles()
	fs.TokenCheck = dst.ValidUserToken
	fs.AddUser("alice@example.net", "")
	fsrv := httptest.NewTLSServer(fs)
	t.Cleanup(fsrv.Close)

	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, src.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plan := func(phases ...migrate.Phase) *migrate.Plan {
		p := &migrate.Plan{
			Name: "files",
			Source: migrate.Endpoint{Admin: migrate.AdminEndpoint{URL: src.URL, User: "admin@src",
				Credential: migrate.Credential{Password: secret.New("pw")}, CAFile: ca},
				Files: migrate.FilesEndpoint{URL: bs.URL}},
			Destination: migrate.Endpoint{Admin: migrate.AdminEndpoint{URL: dst.URL, User: "admin@dst",
				Credential: migrate.Credential{Password: secret.New("pw")}, CAFile: ca},
				Files: migrate.FilesEndpoint{URL: fsrv.URL}},
			Domains: []string{"example.com"},
			Map:     migrate.Mapping{Domains: map[string]string{"example.com": "example.net"}},
			Phases:  phases,
			State:   filepath.Join(dir, "state.db"),
			Report:  dir,
		}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return &filesEnv{fs: fs, bc: bc, revs: revs, plan: plan}
}

func TestFilesPhase(t *testing.T) {
	ctx := context.Background()
	env := newFilesEnv(t)
	fs, revs, plan := env.fs, env.revs, env.plan
	// The inventory lists the Briefcase as not migrated only without the
	// files phase.
	briefcaseNotMigrated := func(phases ...migrate.Phase) bool {
		pr, err := (&migrate.Runner{Plan: plan(phases...)}).Preflight(ctx)
		if err != nil {
			t.Fatalf("preflight: %v", err)
		}
		if slices.Contains(phases, migrate.PhaseFiles) {
			// The dry run reads the source only.
			var got []string
			for _, it := range pr.Files {
				got = append(got, fmt.Sprintf("%s/%s %d %s", it.Folder, it.Name, it.Versions, it.Outcome))
			}
			slices.Sort(got)
			if want := []string{"Briefcase/Projects/plan.pdf 1 would_copy", "Briefcase/report.txt 3 would_copy"}; !slices.Equal(got, want) {
				t.Errorf("preflight files = %q, want %q", got, want)
			}
			var txt strings.Builder
			if err := pr.WriteText(&txt); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(txt.String(), "Files (Briefcase): 2 would copy; 4 revisions to copy") {
				t.Errorf("preflight text lacks the files line:\n%s", txt.String())
			}
		}
		for _, nm := range pr.NotMigrated {
			if nm.Kind == "files" {
				return true
			}
		}
		return false
	}
	if !briefcaseNotMigrated(migrate.PhaseVerify) || briefcaseNotMigrated(migrate.PhaseFiles) {
		t.Error("Briefcase listed as not migrated with the files phase, or not without it")
	}
	if fs.Uploads != 0 || fs.Folders != 0 {
		t.Errorf("preflight wrote to Files: %d uploads, %d folders", fs.Uploads, fs.Folders)
	}

	rep, err := (&migrate.Runner{Plan: plan(migrate.PhaseFiles)}).Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	got := map[string]files.Outcome{}
	for _, it := range rep.Files {
		got[it.Folder+"/"+it.Name] = it.Outcome
	}
	if len(got) != 2 || got["Briefcase/report.txt"] != files.Created || got["Briefcase/Projects/plan.pdf"] != files.Created {
		t.Fatalf("files items %+v", rep.Files)
	}
	tree := fs.Tree("alice@example.net")
	if len(tree) != 2 || tree[1].Path != "Briefcase/report.txt" || len(tree[1].Versions) != 3 {
		t.Fatalf("destination tree %+v", tree)
	}
	for i, v := range tree[1].Versions {
		if !bytes.Equal(v, revs[i]) {
			t.Fatalf("version %d = %q, want %q", i+1, v, revs[i])
		}
	}
	for _, nm := range rep.NotMigrated {
		if nm.Kind == "files" {
			t.Errorf("Briefcase still listed as not migrated: %+v", nm)
		}
	}
	var txt strings.Builder
	if err := rep.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "Files (Briefcase): 2 created; 4 versions uploaded") {
		t.Errorf("text report lacks the Files line:\n%s", txt.String())
	}
	if _, html, err := rep.WriteFiles(t.TempDir()); err != nil {
		t.Fatal(err)
	} else if b, _ := os.ReadFile(html); !strings.Contains(string(b), "<h2>Files (Briefcase)</h2>") || !strings.Contains(string(b), "report.txt") {
		t.Error("HTML report lacks the Files section")
	}

	// A second run (the phase is done: --delta runs it again) uploads nothing.
	uploads, versions := fs.Uploads, fs.VersionUploads
	rep, err = (&migrate.Runner{Plan: plan(migrate.PhaseFiles), Delta: true}).Run(ctx)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if fs.Uploads != uploads || fs.VersionUploads != versions {
		t.Fatalf("second run uploaded: %d→%d files, %d→%d versions", uploads, fs.Uploads, versions, fs.VersionUploads)
	}
	for _, it := range rep.Files {
		if it.Outcome != files.Unchanged {
			t.Errorf("second run %s/%s: %s %s", it.Folder, it.Name, it.Outcome, it.Reason)
		}
	}
	if len(rep.Files) == 0 {
		t.Error("second run did not run the files phase")
	}
}

// TestFilesPhaseResume interrupts the phase twice through the state file:
// once by an upload cut off mid-body, once by an upload the server stored
// but whose answer was lost (the state never heard of the node). The
// --delta runs that follow leave each document once, with its revisions
// in order, and upload each version once.
func TestFilesPhaseResume(t *testing.T) {
	ctx := context.Background()
	env := newFilesEnv(t)
	env.fs.CutUpload(2, 5) // report.txt's second revision
	rep, err := (&migrate.Runner{Plan: env.plan(migrate.PhaseFiles)}).Run(ctx)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	failed := 0
	for _, it := range rep.Files {
		if it.Outcome == files.Failed {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("cut run items %+v, want one failed", rep.Files)
	}
	env.fs.DropReply(1) // report.txt's second revision again: stored, answer lost
	if _, err := (&migrate.Runner{Plan: env.plan(migrate.PhaseFiles), Delta: true}).Run(ctx); err != nil {
		t.Fatalf("second run: %v", err)
	}
	rep, err = (&migrate.Runner{Plan: env.plan(migrate.PhaseFiles), Delta: true}).Run(ctx)
	if err != nil {
		t.Fatalf("third run: %v", err)
	}
	for _, it := range rep.Files {
		if it.Outcome == files.Failed || it.Outcome == files.Mismatch {
			t.Errorf("third run %s/%s: %s %s", it.Folder, it.Name, it.Outcome, it.Reason)
		}
	}
	tree := env.fs.Tree("alice@example.net")
	if len(tree) != 2 || tree[1].Path != "Briefcase/report.txt" || len(tree[1].Versions) != 3 {
		t.Fatalf("destination tree %+v", tree)
	}
	for i, v := range tree[1].Versions {
		if !bytes.Equal(v, env.revs[i]) {
			t.Fatalf("version %d = %q, want %q", i+1, v, env.revs[i])
		}
	}
	if env.fs.Uploads != 2 || env.fs.VersionUploads != 2 {
		t.Errorf("uploads %d, version uploads %d; want 2 and 2", env.fs.Uploads, env.fs.VersionUploads)
	}
}
