package imapcopy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// exampleServers starts two in-memory IMAP servers on loopback, the source
// holding alice's INBOX and Work folder with three messages, and returns
// them with alice's account on each.
func exampleServers() (dst, src *imapcopy.Account, stop func()) {
	s, err := memimap.Start(memimap.Options{})
	if err != nil {
		log.Fatal(err)
	}
	d, err := memimap.Start(memimap.Options{})
	if err != nil {
		log.Fatal(err)
	}
	s.AddUser("alice", "source-pw")
	d.AddUser("alice", "destination-pw")
	date := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	msg := func(folder, subject string, flags ...string) corpus.Message {
		raw := "From: bob@example.com\r\nTo: alice@example.com\r\nSubject: " + subject + "\r\n\r\nHello.\r\n"
		return corpus.Message{Folder: folder, Raw: []byte(raw), Flags: flags, InternalDate: date}
	}
	err = s.Seed("alice", corpus.Mailbox{
		Folders: []corpus.Folder{{Name: "INBOX", Subscribed: true}, {Name: "Work", Subscribed: true}},
		Messages: []corpus.Message{
			msg("INBOX", "lunch", `\Seen`),
			msg("INBOX", "report", `\Flagged`),
			msg("Work", "plan", `\Seen`, "Project"),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// The in-memory servers speak plain text on loopback; real servers
	// use the zero Security, implicit TLS.
	src = &imapcopy.Account{Addr: s.Addr(), Security: imapcopy.Plaintext, User: "alice", Password: secret.New("source-pw")}
	dst = &imapcopy.Account{Addr: d.Addr(), Security: imapcopy.Plaintext, User: "alice", Password: secret.New("destination-pw")}
	return dst, src, func() { s.Close(); d.Close() }
}

// Copy one mailbox, then again: the second pass finds everything present
// and copies nothing. Without a Checkpoint the Copier matches messages by
// content; with one (state.Store's Mail) it resumes by UID.
func ExampleCopier_Copy() {
	dst, src, stop := exampleServers()
	defer stop()
	ctx := context.Background()

	c := &imapcopy.Copier{}
	for pass := 1; pass <= 2; pass++ {
		stats, err := c.Copy(ctx, dst, src) // destination first, as in io.Copy
		if err != nil {
			log.Fatal(err) // authentication, cancellation, an unwritable checkpoint
		}
		t := stats.Totals()
		fmt.Printf("pass %d: %d copied, %d already present, ok %v\n", pass, t.Copied, t.AlreadyPresent, stats.OK())
	}
	// Output:
	// pass 1: 3 copied, 0 already present, ok true
	// pass 2: 0 copied, 3 already present, ok true
}

// A refused password is zxerrors.ErrAuth, whichever server refused it.
func ExampleCopier_Copy_wrongPassword() {
	dst, src, stop := exampleServers()
	defer stop()
	dst.Password = secret.New("wrong")

	_, err := (&imapcopy.Copier{}).Copy(context.Background(), dst, src)
	fmt.Println(errors.Is(err, zxerrors.ErrAuth))
	// Output:
	// true
}

// ParseURL reads the account from an imap:// or imaps:// URL; the
// password is set apart, never in the URL.
func ExampleParseURL() {
	a, err := imapcopy.ParseURL("imaps://alice@example.com@carbonio.example.com")
	if err != nil {
		log.Fatal(err)
	}
	a.Password = secret.New("from a file or the environment")
	fmt.Println(a.Addr, a.User, a.Security == imapcopy.ImplicitTLS)
	// Output:
	// carbonio.example.com:993 alice@example.com true
}
