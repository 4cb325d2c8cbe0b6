package imapcopy

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/faultproxy"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// storedMessages is the number of messages in every mailbox of user1 on d.
func storedMessages(t *testing.T, d *testserver.Dovecot) int {
	t.Helper()
	c, err := d.Dial(testserver.DefaultUser)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range list {
		if m.Status != nil && m.Status.NumMessages != nil {
			n += int(*m.Status.NumMessages)
		}
	}
	return n
}

// TestPipelinedWindowInterrupted cuts the destination link while a writer
// has several MULTIAPPEND commands in flight: with a 100 ms round trip to
// the destination, the server has stored messages whose APPENDUID answers
// are still on the way when the link goes. The next run on the same
// checkpoint must find those messages by their in-flight marks, not send
// them again: the destination ends with exactly the source's messages,
// none lost, none twice.
func TestPipelinedWindowInterrupted(t *testing.T) {
	src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "src"})
	dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "dst"})
	acc := corpus.Generate(testserver.DefaultUser, corpus.Options{Seed: 23, Messages: 400, Events: -1, Contacts: -1})
	if err := src.Seed(context.Background(), testserver.DefaultUser, acc.Mail); err != nil {
		t.Fatal(err)
	}
	acct := func(addr string) *Account {
		return &Account{Addr: addr, Security: Plaintext, User: testserver.DefaultUser, Password: secret.New(testserver.DefaultPassword)}
	}
	srcAcct := acct(src.Addr)
	cp := NewMemoryCheckpoint()

	// First run: cut after the first answers arrived.
	line, err := faultproxy.ListenDelay(dst.Addr, faultproxy.DelayOptions{Delay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var recorded atomic.Int64
	var cut sync.Once
	c := &Copier{Checkpoint: cp, Concurrency: 1, Logger: testLogger(t),
		OnEvent: func(e Event) {
			if _, ok := e.(MessageCopied); ok && recorded.Add(1) >= 20 {
				cut.Do(func() {
					go func() {
						line.Close()
						cancel()
					}()
				})
			}
		}}
	_, err = c.Copy(ctx, acct(line.Addr()), srcAcct)
	if err == nil {
		t.Fatal("the interrupted Copy returned no error")
	}
	line.Close()
	stored := storedMessages(t, dst)
	t.Logf("first run: %d copies recorded, %d messages stored on the destination (error %v)", recorded.Load(), stored, err)
	if int64(stored) <= recorded.Load() {
		t.Fatalf("the cut lost no answer (stored %d, recorded %d): no window was in flight", stored, recorded.Load())
	}
	if stored >= len(acc.Mail.Messages) {
		t.Fatalf("the first run stored all %d messages before the cut", stored)
	}

	// Second run, on the same checkpoint, through a new line.
	line2, err := faultproxy.ListenDelay(dst.Addr, faultproxy.DelayOptions{Delay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line2.Close() })
	st, err := (&Copier{Checkpoint: cp, Logger: testLogger(t)}).Copy(context.Background(), acct(line2.Addr()), srcAcct)
	if err != nil {
		t.Fatalf("resumed Copy: %v", err)
	}
	checkStats(t, st)
	if !st.OK() {
		t.Errorf("resumed Copy not OK: %+v", st.Totals())
	}
	if got := storedMessages(t, dst); got != len(acc.Mail.Messages) {
		t.Errorf("destination holds %d messages, want %d", got, len(acc.Mail.Messages))
	}
	if d := diffDest(t, &pair{dst: acct(dst.Addr)}, acc.Mail); d != nil {
		t.Errorf("destination differs:\n%s", strings.Join(d, "\n"))
	}
}
