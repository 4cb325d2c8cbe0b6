package imapappend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/imapscript"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// dial dials with a copy of the configuration.
func (a *Config) dial(ctx context.Context) (*Conn, error) { return Dial(ctx, *a) }

// dovecotAccount returns the configuration of user1 on d, logged in as
// the master user when admin.
func dovecotAccount(t *testing.T, d *testserver.Dovecot, admin bool, sec Security) *Config {
	t.Helper()
	a := &Config{Name: testserver.DefaultUser + "@dovecot", Addr: d.Addr, Security: sec, User: testserver.DefaultUser,
		Password: secret.New(testserver.DefaultPassword), IdleTimeout: 2 * time.Minute}
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
		a.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		if sec == ImplicitTLS {
			a.Addr = d.TLSAddr
		}
	}
	return a
}

// startFake runs script for one connection and returns a plaintext
// configuration for it (user "user", password p"a\ss).
func startFake(t *testing.T, script func(s *imapscript.Session)) *Config {
	t.Helper()
	addr := imapscript.Start(t, script)
	return &Config{Name: "user@fake", Addr: addr, Security: Plaintext, User: "user", Password: secret.New(`p"a\ss`),
		DialTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
}

// secName names a Security in subtest names.
var secName = map[Security]string{ImplicitTLS: "imaps", StartTLS: "starttls", Plaintext: "plaintext"}
