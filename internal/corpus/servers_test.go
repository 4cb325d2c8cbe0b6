package corpus_test

import (
	"context"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
)

// TestSeedSnapshotDovecot round-trips the small corpus through a real
// Dovecot with each separator. Dovecot keeps everything byte for byte,
// including the malformed edge cases, the \Noselect parent and special use.
// With '.' as separator the folder "Work/Projects/Beta v1.2" cannot exist:
// SeedIMAP must name it and still seed the rest.
func TestSeedSnapshotDovecot(t *testing.T) {
	a := corpus.Generate("user1", corpus.Options{Seed: 11, Messages: 300, Events: -1, Contacts: -1})
	for _, sep := range []rune{'/', '.'} {
		t.Run(string(sep), func(t *testing.T) {
			t.Parallel()
			d := testserver.StartDovecot(t, testserver.DovecotOptions{Separator: sep})
			src, err := d.Dial("user1")
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			want := a.Mail
			err = corpus.SeedIMAP(context.Background(), src, want)
			if sep == '/' && err != nil {
				t.Fatalf("SeedIMAP: %v", err)
			}
			if sep == '.' {
				if err == nil || !strings.Contains(err.Error(), "Beta v1.2") {
					t.Fatalf("SeedIMAP with '.' = %v, want an error naming Beta v1.2", err)
				}
				want = without(want, "Work/Projects/Beta v1.2")
			}
			c, err := d.Dial("user1")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := corpus.SnapshotIMAP(context.Background(), c)
			if err != nil {
				t.Fatalf("SnapshotIMAP: %v", err)
			}
			if diff := corpus.DiffMail(want, got, &corpus.DiffOptions{SpecialUse: true, KeywordCase: true}); diff != nil {
				t.Errorf("DiffMail after a round trip through Dovecot:\n%s", strings.Join(diff, "\n"))
			}
			// The harness's own snapshot (from disk and doveadm) agrees.
			disk, err := d.Snapshot(context.Background(), "user1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := corpus.DiffMail(got, disk, nil); diff != nil {
				t.Errorf("SnapshotIMAP and testserver.Snapshot disagree:\n%s", strings.Join(diff, "\n"))
			}
		})
	}
}

func without(mb corpus.Mailbox, folder string) corpus.Mailbox {
	out := corpus.Mailbox{}
	for _, f := range mb.Folders {
		if f.Name != folder {
			out.Folders = append(out.Folders, f)
		}
	}
	for _, m := range mb.Messages {
		if m.Folder != folder {
			out.Messages = append(out.Messages, m)
		}
	}
	return out
}

// TestDiffCollectionsServers stores the calendars and address books on
// Radicale and Xandikos and reads them back: DiffCollections must accept
// what the servers rewrite harmlessly (serialisation, folding, parameter
// order, PRODID) and report real changes. Radicale 3.1.8 breaks a vCard 4.0
// PHOTO given as a data: URI (it keeps "data:image/jpeg\;base64" and drops
// the data); that is the one difference expected.
func TestDiffCollectionsServers(t *testing.T) {
	// Xandikos auto-creates "calendar" and "addressbook", keeps no
	// collection description and advertises every component type.
	xandikosDiff := &corpus.DiffOptions{ExtraCollectionsOK: true, SkipCollectionProps: true}
	a := corpus.Generate("user1", corpus.Options{Seed: 11, Messages: -1, Events: 20, Contacts: 15})
	ctx := context.Background()
	user, pass := testserver.DefaultUser, testserver.DefaultPassword
	t.Run("radicale", func(t *testing.T) {
		t.Parallel()
		r := testserver.StartRadicale(t, nil)
		if err := testserver.SeedDAV(ctx, r.CalendarHome(user), user, pass, a.Calendars, a.AddressBooks); err != nil {
			t.Fatalf("SeedDAV: %v", err)
		}
		cals, books, err := testserver.SnapshotDAV(ctx, r.CalendarHome(user), user, pass)
		if err != nil {
			t.Fatalf("SnapshotDAV: %v", err)
		}
		if d := corpus.DiffCollections(a.Calendars, cals, nil); d != nil {
			t.Errorf("calendars differ after Radicale:\n%s", strings.Join(d, "\n"))
		}
		d := corpus.DiffCollections(a.AddressBooks, books, nil)
		if len(d) == 0 {
			t.Error("Radicale kept the data: URI photo; drop the expected difference")
		}
		for _, l := range d {
			if !strings.Contains(l, "PHOTO:data:image/jpeg") {
				t.Errorf("address books differ after Radicale: %s", l)
			}
		}
	})
	t.Run("xandikos", func(t *testing.T) {
		t.Parallel()
		x := testserver.StartXandikos(t, user, pass)
		if err := x.Seed(ctx, a.Calendars, a.AddressBooks); err != nil {
			t.Fatalf("Seed: %v", err)
		}
		cals, books, err := x.Snapshot(ctx)
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		if d := corpus.DiffCollections(a.Calendars, cals, xandikosDiff); d != nil {
			t.Errorf("calendars differ after Xandikos:\n%s", strings.Join(d, "\n"))
		}
		if d := corpus.DiffCollections(a.AddressBooks, books, xandikosDiff); d != nil {
			t.Errorf("address books differ after Xandikos:\n%s", strings.Join(d, "\n"))
		}
	})
}
