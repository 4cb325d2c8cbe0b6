package imapcopy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// dovecotAccount is an Account on d for user1: by user login or by master
// (admin) login, over plaintext, STARTTLS or implicit TLS.
func dovecotAccount(t *testing.T, d *testserver.Dovecot, admin bool, sec Security) *Account {
	t.Helper()
	a := &Account{Addr: d.Addr, Security: sec, User: testserver.DefaultUser, Password: secret.New(testserver.DefaultPassword)}
	if admin {
		a.Admin, a.Password = d.MasterUser, secret.New(d.MasterPassword)
	}
	if sec != Plaintext {
		pem, err := os.ReadFile(d.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatal("no CA certificate")
		}
		a.TLSConfig = &tls.Config{RootCAs: pool}
		if sec == ImplicitTLS {
			a.Addr = d.TLSAddr
		}
	}
	return a
}

type dovecotCase struct {
	name               string
	srcSep, dstSep     rune
	srcAdmin, dstAdmin bool
	srcSec, dstSec     Security
}

// dovecotPair starts two Dovecots for one suite case.
func dovecotPair(c dovecotCase) func(t *testing.T) *pair {
	return func(t *testing.T) *pair {
		tlsOn := c.srcSec != Plaintext || c.dstSec != Plaintext
		src := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "src", Separator: c.srcSep, TLS: tlsOn})
		dst := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "dst", Separator: c.dstSep, TLS: tlsOn})
		p := &pair{
			src:       dovecotAccount(t, src, c.srcAdmin, c.srcSec),
			dst:       dovecotAccount(t, dst, c.dstAdmin, c.dstSec),
			srcDelim:  c.srcSep,
			dstDelim:  c.dstSep,
			condstore: true,
		}
		p.seed = func(t *testing.T, m corpus.Mailbox) {
			if err := src.Seed(context.Background(), testserver.DefaultUser, forSeparator(m, c.srcSep)); err != nil {
				t.Fatal(err)
			}
		}
		p.adapt = func(m corpus.Mailbox) corpus.Mailbox { return forSeparator(m, c.srcSep) }
		return p
	}
}

// forSeparator renames corpus folders whose names hold sep (possible only
// on a '/' server) so that a server with that separator can hold them.
func forSeparator(m corpus.Mailbox, sep rune) corpus.Mailbox {
	if sep == '/' || sep == 0 {
		return m
	}
	fix := func(n string) string { return strings.ReplaceAll(n, string(sep), "_") }
	out := corpus.Mailbox{Folders: make([]corpus.Folder, len(m.Folders)), Messages: make([]corpus.Message, len(m.Messages))}
	for i, f := range m.Folders {
		f.Name = fix(f.Name)
		out.Folders[i] = f
	}
	for i, msg := range m.Messages {
		msg.Folder = fix(msg.Folder)
		out.Messages[i] = msg
	}
	return out
}

func TestConformanceDovecot(t *testing.T) {
	cases := []dovecotCase{
		{name: "slash-slash", srcSep: '/', dstSep: '/', srcSec: Plaintext, dstSec: Plaintext},
		{name: "slash-dot-admin-both", srcSep: '/', dstSep: '.', srcAdmin: true, dstAdmin: true, srcSec: Plaintext, dstSec: Plaintext},
		{name: "dot-slash-tls", srcSep: '.', dstSep: '/', srcAdmin: true, srcSec: ImplicitTLS, dstSec: StartTLS},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSuite(t, dovecotPair(c), i == 0) })
	}
}
