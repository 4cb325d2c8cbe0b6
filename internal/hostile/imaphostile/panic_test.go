package imaphostile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/secret"
)

// A panic in a folder's worker fails that folder alone: the others are
// copied and Copy returns its stats (from which reports are written).
// The panic is injected through OnEvent, which the copier calls from the
// folder's own goroutine.
func TestPanicFailsOneFolder(t *testing.T) {
	dst := newDovecot(t)
	src := start(t, []Folder{
		{Wire: "INBOX", Messages: msgs(2)},
		{Wire: "Boom", Messages: msgs(2)},
		{Wire: "Other", Messages: msgs(3)},
	}, Behaviour{})
	c := &imapcopy.Copier{
		OnEvent: func(ev imapcopy.Event) {
			if fs, ok := ev.(imapcopy.FolderStarted); ok && fs.Folder == "Boom" {
				panic("injected")
			}
		},
	}
	from := &imapcopy.Account{Addr: src.Addr(), Security: imapcopy.Plaintext, User: "user1", Password: secret.New("x")}
	to := &imapcopy.Account{Addr: dst.Addr, Security: imapcopy.Plaintext, User: "user1", Password: secret.New(dst.Users["user1"])}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := c.Copy(ctx, to, from)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	got := map[string]imapcopy.FolderStats{}
	for _, f := range st.Folders {
		got[f.Source] = f
	}
	if !strings.Contains(got["Boom"].Err, "panic: injected") {
		t.Errorf("Boom: error %q, want the panic", got["Boom"].Err)
	}
	other := got["Other"]
	if got["INBOX"].Copied != 2 || other.Copied != 3 || !other.OK() {
		t.Errorf("INBOX %+v, Other %+v: want 2 and 3 copied", got["INBOX"], got["Other"])
	}
}
