package state_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/state"
)

// A state file keeps the checkpoints of the copy engines: Mail for
// imapcopy, Calendars and Contacts for caldav and carddav. A copy that
// runs again with the same store resumes from it; the file is created
// 0600.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "zxmigrate-state-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.db")
	ctx := context.Background()

	// Two in-memory IMAP servers on loopback; the source holds two messages.
	src, dst := exampleAccount(), exampleAccount()
	defer src.stop()
	defer dst.stop()
	msg := corpus.Message{Folder: "INBOX", Raw: []byte("Subject: hello\r\n\r\nHi.\r\n"), Flags: []string{`\Seen`},
		InternalDate: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)}
	if err := src.srv.Seed("alice", corpus.Mailbox{Folders: []corpus.Folder{{Name: "INBOX"}}, Messages: []corpus.Message{msg, msg}}); err != nil {
		log.Fatal(err)
	}

	for pass := 1; pass <= 2; pass++ {
		st, err := state.Open(ctx, path)
		if err != nil {
			log.Fatal(err)
		}
		c := &imapcopy.Copier{Checkpoint: st.Mail("alice")}
		stats, err := c.Copy(ctx, dst.acct, src.acct)
		if err != nil {
			log.Fatal(err)
		}
		t := stats.Totals()
		fmt.Printf("pass %d: %d copied, %d already present\n", pass, t.Copied, t.AlreadyPresent)
		if err := st.Close(); err != nil {
			log.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(fi.Mode().Perm())
	// Output:
	// pass 1: 2 copied, 0 already present
	// pass 2: 0 copied, 2 already present
	// -rw-------
}

type exampleServer struct {
	srv  *memimap.Server
	acct *imapcopy.Account
}

func (e exampleServer) stop() { e.srv.Close() }

// exampleAccount starts an in-memory IMAP server with the user alice.
func exampleAccount() exampleServer {
	s, err := memimap.Start(memimap.Options{})
	if err != nil {
		log.Fatal(err)
	}
	s.AddUser("alice", "pw")
	return exampleServer{s, &imapcopy.Account{Addr: s.Addr(), Security: imapcopy.Plaintext, User: "alice", Password: secret.New("pw")}}
}
