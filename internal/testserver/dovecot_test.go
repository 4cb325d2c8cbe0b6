package testserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
)

func TestDovecotTLS(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, DovecotOptions{Name: "tls", TLS: true})
	if d.TLSAddr == "" || d.CA == nil || d.CAFile == "" {
		t.Fatalf("TLS instance without TLSAddr/CA/CAFile: %+v", d)
	}
	good := &tls.Config{RootCAs: d.CA.Pool(), ServerName: "127.0.0.1"}
	dials := []struct {
		name string
		dial func(*imapclient.Options) (*imapclient.Client, error)
	}{
		{"implicit TLS", func(o *imapclient.Options) (*imapclient.Client, error) { return imapclient.DialTLS(d.TLSAddr, o) }},
		{"STARTTLS", func(o *imapclient.Options) (*imapclient.Client, error) { return imapclient.DialStartTLS(d.Addr, o) }},
	}
	for _, tc := range dials {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.dial(&imapclient.Options{TLSConfig: good})
			if err != nil {
				t.Fatalf("dial with the test CA: %v", err)
			}
			defer c.Close()
			if err := c.Login(DefaultUser, DefaultPassword).Wait(); err != nil {
				t.Fatalf("login: %v", err)
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatalf("select INBOX: %v", err)
			}
			if err := c.Logout().Wait(); err != nil {
				t.Errorf("logout: %v", err)
			}

			// Without the CA (system roots only) the handshake must fail
			// with a certificate error.
			c2, err := tc.dial(&imapclient.Options{TLSConfig: &tls.Config{ServerName: "127.0.0.1"}})
			if err == nil {
				c2.Close()
				t.Fatal("dial without the test CA: got nil error")
			}
			var unknown x509.UnknownAuthorityError
			var verify *tls.CertificateVerificationError
			if !errors.As(err, &unknown) && !errors.As(err, &verify) {
				t.Errorf("dial without the test CA: got %v, want a certificate verification error", err)
			}
		})
	}
}

func TestDovecotMasterLogin(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, DovecotOptions{Users: map[string]string{"user1": "pass1", "user2": "pass2"}})
	for _, target := range []string{"user1", "user2"} {
		t.Run("authzid/"+target, func(t *testing.T) {
			c, err := imapclient.DialInsecure(d.Addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Authenticate(sasl.NewPlainClient(target, d.MasterUser, d.MasterPassword)); err != nil {
				t.Fatalf("AUTHENTICATE PLAIN authzid=%s authcid=%s: %v", target, d.MasterUser, err)
			}
			checkLoggedInAs(t, d, c, target)
		})
		t.Run("login-star/"+target, func(t *testing.T) {
			c, err := d.DialMaster(target)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			checkLoggedInAs(t, d, c, target)
		})
	}
	t.Run("unknown target", func(t *testing.T) {
		c, err := imapclient.DialInsecure(d.Addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Login("nosuch*"+d.MasterUser, d.MasterPassword).Wait()
		var ie *imap.Error
		if !errors.As(err, &ie) {
			t.Fatalf("LOGIN nosuch*admin: got %v, want an *imap.Error", err)
		}
	})
	t.Run("wrong master password", func(t *testing.T) {
		c, err := imapclient.DialInsecure(d.Addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Authenticate(sasl.NewPlainClient("user1", d.MasterUser, "wrong")); err == nil {
			t.Fatal("AUTHENTICATE with a wrong master password: got nil error")
		}
	})
}

// checkLoggedInAs proves the session belongs to user: it creates a folder
// named after the user and sees it, over the user's own login, in that
// user's account only.
func checkLoggedInAs(t *testing.T, d *Dovecot, c *imapclient.Client, user string) {
	t.Helper()
	name := "mark-" + user + "-" + strings.ReplaceAll(t.Name(), "/", "-")
	if err := c.Create(name, nil).Wait(); err != nil {
		t.Fatalf("create %q: %v", name, err)
	}
	own, err := d.Dial(user)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	list, err := own.List("", name, nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Errorf("user %s does not see %q created over the master session: LIST gave %d", user, name, len(list))
	}
}

// handMade is a small mailbox with the hard cases: nested and non-ASCII
// names, a \Noselect parent, an unsubscribed folder, special-use folders,
// system flags, keywords, \Deleted, dates in several zones, duplicates.
func handMade() corpus.Mailbox {
	msg := func(subject string, extra string) []byte {
		return []byte("From: A <a@example.com>\r\nTo: b@example.com\r\nSubject: " + subject +
			"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.com>\r\n" + extra +
			"\r\nHello\r\nsecond line\r\n")
	}
	berlin := time.FixedZone("CET", 3600)
	kolkata := time.FixedZone("IST", 5*3600+1800)
	la := time.FixedZone("PST", -8*3600)
	mb := corpus.Mailbox{
		Folders: []corpus.Folder{
			{Name: "INBOX", Subscribed: true},
			{Name: "Drafts", Subscribed: true, SpecialUse: `\Drafts`},
			{Name: "Sent", Subscribed: true, SpecialUse: `\Sent`},
			{Name: "Trash", Subscribed: true, SpecialUse: `\Trash`},
			{Name: "Junk", Subscribed: true, SpecialUse: `\Junk`},
			{Name: "Archive", Subscribed: true, SpecialUse: `\Archive`},
			{Name: "Work", Subscribed: true},
			{Name: "Work/Projects", Subscribed: true},
			{Name: "Work/Projects/Beta v1.2", Subscribed: true},
			{Name: "Lists", NoSelect: true},
			{Name: "Lists/golang-nuts", Subscribed: true},
			{Name: "Reçus & Factures", Subscribed: true},
			{Name: "日本語 メール", Subscribed: true},
			{Name: "Ελληνικά/Υποφάκελος", Subscribed: true},
			{Name: "Ελληνικά", Subscribed: true},
			{Name: "Old Stuff", Subscribed: false},
			{Name: "Empty", Subscribed: true},
		},
	}
	add := func(folder string, raw []byte, date time.Time, flags ...string) {
		mb.Messages = append(mb.Messages, corpus.Message{Folder: folder, Raw: raw, Flags: flags, InternalDate: date})
	}
	d1 := time.Date(2019, 3, 31, 1, 59, 59, 0, berlin)
	add("INBOX", msg("plain", ""), d1, `\Seen`)
	add("INBOX", msg("answered flagged", ""), d1.Add(time.Hour), `\Answered`, `\Flagged`, `\Seen`)
	add("INBOX", msg("deleted", ""), time.Date(2024, 2, 29, 23, 0, 0, 0, kolkata), `\Deleted`, `\Seen`)
	add("INBOX", msg("keywords", ""), time.Date(2015, 1, 1, 0, 0, 0, 0, la), `$Forwarded`, `$label1`, `Important`, `ToDo`, `\Seen`)
	add("INBOX", msg("no flags", ""), time.Date(2025, 10, 1, 12, 0, 0, 0, time.UTC))
	dup := msg("duplicate", "X-Dup: yes\r\n")
	add("INBOX", dup, d1, `\Seen`)
	add("INBOX", dup, d1, `\Seen`)
	add("Archive", dup, d1, `\Seen`)
	add("Drafts", msg("draft", ""), d1, `\Draft`)
	add("Junk", msg("junk", ""), d1, `$Junk`)
	add("Work/Projects/Beta v1.2", msg("beta", ""), d1, `Work`, `\Seen`)
	add("Lists/golang-nuts", msg("list", "List-Id: <golang-nuts.googlegroups.com>\r\n"), d1, `\Seen`)
	add("Reçus & Factures", msg("reçu", ""), d1, `\Seen`)
	add("日本語 メール", msg("japanese", ""), d1, `$MDNSent`)
	add("Ελληνικά/Υποφάκελος", msg("greek child", ""), d1)
	add("Old Stuff", msg("old", ""), time.Date(2014, 1, 2, 3, 4, 5, 0, time.UTC), `\Seen`)
	big := make([]byte, 0, 300<<10)
	for len(big) < 300<<10 {
		big = append(big, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\r\n"...)
	}
	add("Work", append(msg("big", ""), big...), d1, `\Seen`)
	return mb
}

func TestDovecotSeedSnapshot(t *testing.T) {
	ctx := context.Background()
	for _, sep := range []rune{'/', '.'} {
		t.Run(string(sep), func(t *testing.T) {
			t.Parallel()
			d := StartDovecot(t, DovecotOptions{Separator: sep})
			want := handMade()
			if sep == '.' {
				// maildir++ cannot hold a '.' inside a name.
				for i := range want.Folders {
					want.Folders[i].Name = strings.ReplaceAll(want.Folders[i].Name, "v1.2", "v1-2")
				}
				for i := range want.Messages {
					want.Messages[i].Folder = strings.ReplaceAll(want.Messages[i].Folder, "v1.2", "v1-2")
				}
			}
			if err := d.Seed(ctx, "user1", want); err != nil {
				t.Fatalf("seed: %v", err)
			}
			for _, box := range []string{"INBOX", "INBOX/Sub", "Reçus & Factures", "Ελληνικά/Υποφάκελος", "Work/Projects", "a.b", "Emoji 🏢"} {
				box = strings.ReplaceAll(box, "/", string(sep))
				out, err := d.Doveadm(ctx, "mailbox", "path", "-u", "user1", box)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := d.MaildirPath("user1", box), strings.TrimSpace(string(out)); got != want {
					t.Errorf("MaildirPath(%q) = %q, doveadm says %q", box, got, want)
				}
			}
			if n, err := d.MessageCount(ctx, "user1"); err != nil || n != int64(len(want.Messages)) {
				t.Errorf("MessageCount = %d (%v), want %d", n, err, len(want.Messages))
			}
			if _, err := d.MessageCount(ctx, "nobody-here"); err == nil || !strings.Contains(err.Error(), "nobody-here") {
				t.Errorf("MessageCount of an unknown user: %v, want an error naming it", err)
			}
			got, err := d.Snapshot(ctx, "user1")
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			if diff := corpus.DiffMail(want, got, &corpus.DiffOptions{SpecialUse: true, KeywordCase: true}); diff != nil {
				t.Errorf("snapshot differs from the seeded mailbox:\n%s", strings.Join(diff, "\n"))
			}
			// Same order in a folder: UIDs follow the corpus order.
			var wantSubjects, gotSubjects []string
			for _, m := range want.Messages {
				if m.Folder == "INBOX" {
					wantSubjects = append(wantSubjects, subject(m.Raw))
				}
			}
			for _, m := range got.Messages {
				if m.Folder == "INBOX" {
					gotSubjects = append(gotSubjects, subject(m.Raw))
				}
			}
			if strings.Join(gotSubjects, "|") != strings.Join(wantSubjects, "|") {
				t.Errorf("INBOX order: got %q, want %q", gotSubjects, wantSubjects)
			}

			// Seeding again appends: every message twice.
			if err := d.Seed(ctx, "user1", want); err != nil {
				t.Fatalf("second seed: %v", err)
			}
			got2, err := d.Snapshot(ctx, "user1")
			if err != nil {
				t.Fatal(err)
			}
			if len(got2.Messages) != 2*len(want.Messages) {
				t.Errorf("after seeding twice: %d messages, want %d", len(got2.Messages), 2*len(want.Messages))
			}

			// ResetUser empties the account.
			if err := d.ResetUser(ctx, "user1"); err != nil {
				t.Fatalf("reset: %v", err)
			}
			got3, err := d.Snapshot(ctx, "user1")
			if err != nil {
				t.Fatal(err)
			}
			if len(got3.Messages) != 0 {
				t.Errorf("after reset: %d messages, want 0", len(got3.Messages))
			}
			for _, f := range got3.Folders {
				if _, auto := SpecialUseFolders[f.Name]; !auto && f.Name != "INBOX" {
					t.Errorf("after reset: folder %q still there", f.Name)
				}
			}
		})
	}
}

func subject(raw []byte) string {
	for _, line := range strings.Split(string(raw), "\r\n") {
		if s, ok := strings.CutPrefix(line, "Subject: "); ok {
			return s
		}
	}
	return ""
}

func TestDovecotSeedBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := StartDovecot(t, DovecotOptions{})
	cases := []struct {
		name string
		mb   corpus.Mailbox
	}{
		{"unknown user", corpus.Mailbox{}},
		{"unconfigured special use", corpus.Mailbox{Folders: []corpus.Folder{{Name: "Sent Items", SpecialUse: `\Sent`}}}},
		{"bad folder name", corpus.Mailbox{Folders: []corpus.Folder{{Name: "a//b"}}}},
		{"unknown system flag", corpus.Mailbox{Messages: []corpus.Message{{Folder: "INBOX", Raw: []byte("Subject: x\r\n\r\n"), Flags: []string{`\Bogus`}}}}},
		{"bad keyword", corpus.Mailbox{Messages: []corpus.Message{{Folder: "INBOX", Raw: []byte("Subject: x\r\n\r\n"), Flags: []string{`a(b`}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			user := "user1"
			if tc.name == "unknown user" {
				user = "nosuch"
			}
			if err := d.Seed(ctx, user, tc.mb); err == nil {
				t.Error("got nil error")
			} else {
				t.Logf("error (expected): %v", err)
			}
		})
	}
}

func TestDovecotStartFailure(t *testing.T) {
	requireBinary(t, "dovecot")
	_, err := NewDovecot(context.Background(), DovecotOptions{Name: "broken", ExtraConfig: "this_is_not_a_setting = 1\n"})
	if err == nil {
		t.Fatal("start with a broken config: got nil error")
	}
	if !strings.Contains(err.Error(), "broken") || !strings.Contains(err.Error(), "this_is_not_a_setting") {
		t.Errorf("error does not name the server and quote its log: %v", err)
	}
}
