package imapappend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/zxmigrate/zxmigrate/internal/imapscript"
)

// Pipelined APPENDs: three commands go out before any answer is read; the
// server answers them out of order, with a NOOP of the client's in
// between, and refuses one. Each Wait gets its own command's answer, the
// refusal leaves the connection usable, and a connection lost before the
// last answer fails only that wait.
func TestAppendFakePipelined(t *testing.T) {
	a := startFake(t, func(s *imapscript.Session) {
		s.Login("MULTIAPPEND UIDPLUS LITERAL+")
		var tags []string
		for range 3 {
			tag, _, bodies := s.AppendCmd("")
			if len(bodies) != 1 {
				s.T.Errorf("fake server: %d literals, want 1", len(bodies))
			}
			tags = append(tags, tag)
		}
		noop, _ := s.Cmd("NOOP")
		s.Send(tags[1]+" NO [OVERQUOTA] full", tags[0]+" OK [APPENDUID 7 11] ok", noop+" OK noop")
		tag, _, _ := s.AppendCmd("")
		s.Send(tags[2]+" OK [APPENDUID 7 13] ok", tag+" OK [APPENDUID 7 14] ok")
		tag, _, _ = s.AppendCmd("")
		_ = tag // no answer: the connection goes
	})
	c := dialAppendT(t, a)
	ctx := context.Background()
	var ps []*Pending
	for i := range 3 {
		p, err := c.Start(ctx, "INBOX", oneItem(fmt.Sprintf("message %d", i)))
		if err != nil {
			t.Fatalf("Start %d: %v", i, err)
		}
		ps = append(ps, p)
	}
	if err := c.Noop(ctx); err != nil {
		t.Fatalf("NOOP between pipelined APPENDs: %v", err)
	}
	want := []struct {
		uid  imap.UID
		code imap.ResponseCode
	}{{11, ""}, {0, imap.ResponseCodeOverQuota}}
	for i, w := range want {
		_, uids, err := ps[i].Wait(ctx)
		var ie *imap.Error
		switch {
		case w.code != "" && (!errors.As(err, &ie) || ie.Code != w.code):
			t.Errorf("Wait %d = %v, want NO [%s]", i, err, w.code)
		case w.code == "" && (err != nil || !slices.Equal(uids, []imap.UID{w.uid})):
			t.Errorf("Wait %d = %v, %v; want UID %d", i, uids, err, w.uid)
		}
	}
	p4, err := c.Start(ctx, "INBOX", oneItem("message 3"))
	if err != nil {
		t.Fatalf("Start after a refusal: %v", err)
	}
	if _, uids, err := p4.Wait(ctx); err != nil || !slices.Equal(uids, []imap.UID{14}) {
		t.Errorf("Wait 4 = %v, %v; want UID 14", uids, err)
	}
	if _, uids, err := ps[2].Wait(ctx); err != nil || !slices.Equal(uids, []imap.UID{13}) {
		t.Errorf("Wait 3 (answered before Wait 4) = %v, %v; want UID 13", uids, err)
	}
	p5, err := c.Start(ctx, "INBOX", oneItem("message 4"))
	if err != nil {
		t.Fatalf("Start 5: %v", err)
	}
	if _, _, err := p5.Wait(ctx); err == nil || !c.Closed() {
		t.Errorf("Wait on a lost connection = %v (closed %v), want an error and the connection closed", err, c.Closed())
	}
}

// Pipelined MULTIAPPENDs into Dovecot, with LITERAL+ and with synchronising
// literals (whose '+' comes after the answers to the commands before):
// every command's UIDs come back to its own Wait, in the order the
// messages were stored.
func TestAppendPipelinedDovecot(t *testing.T) {
	d := startAppendDovecot(t)
	for _, mode := range []string{"literal+", "synchronising"} {
		t.Run(mode, func(t *testing.T) {
			box := "Pipe-" + mode
			createMailbox(t, d, box)
			c := dialAppendT(t, dovecotAccount(t, d, false, Plaintext))
			if mode == "synchronising" {
				c.cs.LiteralPlus, c.cs.LiteralMinus = false, false
			}
			const cmds, per = 6, 8
			var bodies [][]byte
			var ps []*Pending
			for k := range cmds {
				batch := make([][]byte, per)
				for i := range batch {
					batch[i] = testMessage(k*per+i, 500+97*(k*per+i))
				}
				bodies = append(bodies, batch...)
				p, err := c.Start(context.Background(), box, makeItems(batch, make([][]imap.Flag, per), make([]time.Time, per)))
				if err != nil {
					t.Fatalf("Start %d: %v", k, err)
				}
				ps = append(ps, p)
			}
			var uids []imap.UID
			for k, p := range ps {
				_, u, err := p.Wait(context.Background())
				if err != nil || len(u) != per {
					t.Fatalf("Wait %d = %v, %v; want %d UIDs", k, u, err, per)
				}
				uids = append(uids, u...)
			}
			got := fetchAll(t, d, box)
			if len(got) != len(bodies) {
				t.Fatalf("fetched %d messages, want %d", len(got), len(bodies))
			}
			for i, g := range got {
				if g.UID != uids[i] || !bytes.Equal(g.Body, bodies[i]) {
					t.Errorf("message %d: UID %d (Wait said %d), body equal %v", i, g.UID, uids[i], bytes.Equal(g.Body, bodies[i]))
				}
			}
		})
	}
}
