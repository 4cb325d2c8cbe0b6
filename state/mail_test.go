package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/imapcopy"
)

func TestMailCheckpoint(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	cp := s.Mail("a -> b")
	other := s.Mail("c -> d")

	if _, ok, err := cp.Folder(ctx, "INBOX"); err != nil || ok {
		t.Fatalf("Folder on empty store = ok %v, err %v; want no state", ok, err)
	}
	want := imapcopy.FolderState{Source: "INBOX", Destination: "INBOX", SourceUIDValidity: 7, DestUIDValidity: 9,
		SourceStatus: imapcopy.FolderStatus{UIDValidity: 7, UIDNext: 11, Messages: 10, HighestModSeq: 1 << 40},
		DestStatus:   imapcopy.FolderStatus{UIDValidity: 9, UIDNext: 12, Messages: 10}, KeywordIssues: 3}
	if err := cp.SaveFolder(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := cp.MarkInFlight(ctx, "INBOX", []imap.UID{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := cp.Done(ctx, "INBOX", []imapcopy.Mapping{{Src: 1, Dst: 101}, {Src: 2, Dst: 102}}); err != nil {
		t.Fatal(err)
	}
	if err := other.MarkInFlight(ctx, "INBOX", []imap.UID{5}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Everything survives a reopen (the write-ahead contract).
	s, err = Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cp = s.Mail("a -> b")
	got, ok, err := cp.Folder(ctx, "INBOX")
	if err != nil || !ok {
		t.Fatalf("Folder after reopen: ok %v, err %v", ok, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("folder state (-want +got):\n%s", diff)
	}
	done, inFlight, err := cp.Mappings(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]imapcopy.Mapping{{Src: 1, Dst: 101}, {Src: 2, Dst: 102}}, done); diff != "" {
		t.Errorf("done (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]imap.UID{3}, inFlight); diff != "" {
		t.Errorf("in flight (-want +got):\n%s", diff)
	}
	if err := cp.ClearInFlight(ctx, "INBOX", []imap.UID{1, 3}); err != nil {
		t.Fatal(err)
	}
	done, inFlight, _ = cp.Mappings(ctx, "INBOX")
	if len(done) != 2 || len(inFlight) != 0 {
		t.Errorf("after ClearInFlight: done %v, in flight %v; want 2 done (ClearInFlight never drops done rows), none in flight", done, inFlight)
	}
	if err := cp.(imapcopy.Forgetter).Forget(ctx, "INBOX", []imap.UID{1}); err != nil {
		t.Fatal(err)
	}
	if done, _, _ = cp.Mappings(ctx, "INBOX"); len(done) != 1 || done[0].Src != 2 {
		t.Errorf("after Forget(1): done %v, want only 2", done)
	}
	if err := cp.ResetFolder(ctx, "INBOX"); err != nil {
		t.Fatal(err)
	}
	done, inFlight, _ = cp.Mappings(ctx, "INBOX")
	if len(done)+len(inFlight) != 0 {
		t.Errorf("after ResetFolder: %v %v; want empty", done, inFlight)
	}
	if _, ok, _ := cp.Folder(ctx, "INBOX"); !ok {
		t.Error("ResetFolder dropped the folder state; want it kept")
	}
	// Accounts are separate.
	_, inFlight, _ = s.Mail("c -> d").Mappings(ctx, "INBOX")
	if diff := cmp.Diff([]imap.UID{5}, inFlight); diff != "" {
		t.Errorf("other account in flight (-want +got):\n%s", diff)
	}
}

// BenchmarkMailCheckpointCopy is the checkpoint's share of a cold copy: a
// MarkInFlight per 200 UIDs and a Done per 64 messages.
func BenchmarkMailCheckpointCopy(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cp := s.Mail("a -> b")
	const n = 10000
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		folder := fmt.Sprint("F", i)
		for start := 1; start <= n; start += 200 {
			uids := make([]imap.UID, 0, 200)
			for u := start; u < start+200 && u <= n; u++ {
				uids = append(uids, imap.UID(u))
			}
			if err := cp.MarkInFlight(ctx, folder, uids); err != nil {
				b.Fatal(err)
			}
			for k := 0; k < len(uids); k += 64 {
				var ms []imapcopy.Mapping
				for _, u := range uids[k:min(k+64, len(uids))] {
					ms = append(ms, imapcopy.Mapping{Src: u, Dst: u + 7})
				}
				if err := cp.Done(ctx, folder, ms); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}
