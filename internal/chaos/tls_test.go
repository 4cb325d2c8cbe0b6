package chaos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/internal/testpki"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
)

// tlsFront terminates TLS with a certificate from ca for hosts and forwards
// the plaintext to target. It returns the listening address.
func tlsFront(t *testing.T, ca *testpki.CA, target string, hosts ...string) string {
	t.Helper()
	cfg, err := ca.ServerTLSConfig(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c); s.Close() }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// wantVerifyError checks that err is a certificate verification failure of
// the expected kind, and that its message says so in words.
func wantVerifyError(t *testing.T, what string, err error, kind string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: connected without a verifiable certificate", what)
	}
	var (
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ok bool
	)
	switch kind {
	case "unknown CA":
		ok = errors.As(err, &ua)
	case "wrong host":
		ok = errors.As(err, &he)
	}
	if !ok {
		t.Fatalf("%s: error %q (%T) is not a %s verification error", what, err, err, kind)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("%s: error %q does not mention the certificate", what, err)
	}
	t.Logf("%s: %v", what, err)
}

func TestTLSIMAPVerification(t *testing.T) {
	srv, err := memimap.Start(memimap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddUser("user1", "pass1")
	ca, err := testpki.New()
	if err != nil {
		t.Fatal(err)
	}
	good := tlsFront(t, ca, srv.Addr(), "127.0.0.1")
	wrongHost := tlsFront(t, ca, srv.Addr(), "mail.example.com")
	ctx := context.Background()
	dial := func(addr string, cfg *tls.Config) error {
		a := &imapcopy.Account{Addr: addr, Security: imapcopy.ImplicitTLS, TLSConfig: cfg, User: "user1",
			Password: secret.New("pass1"), DialTimeout: 10 * time.Second}
		c, err := a.Dial(ctx)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(good, ca.ClientTLSConfig()); err != nil {
		t.Fatalf("trusted CA and right name: %v", err)
	}
	// The zero TLSConfig means the system roots: our CA is unknown there.
	wantVerifyError(t, "IMAP, default roots", dial(good, nil), "unknown CA")
	wantVerifyError(t, "IMAP, wrong host name", dial(wrongHost, ca.ClientTLSConfig()), "wrong host")
	other, _ := testpki.New()
	wantVerifyError(t, "IMAP, other CA", dial(good, other.ClientTLSConfig()), "unknown CA")
}

func TestTLSSOAPVerification(t *testing.T) {
	srv := carboniotest.New(carboniotest.Options{})
	defer srv.Close()
	ctx := context.Background()
	login := func(url string, hc func() *carbonio.Client) error {
		c := hc()
		c.URL = url
		return c.Login(ctx)
	}
	base := func() *carbonio.Client {
		return &carbonio.Client{Admin: "admin@carbonio.local", Password: secret.New("admin-password"), Retry: fastRetry}
	}
	trusting := func() *carbonio.Client { c := base(); c.HTTPClient = srv.Client(); return c }
	if err := login(srv.URL, trusting); err != nil {
		t.Fatalf("trusted certificate: %v", err)
	}
	// nil HTTPClient means system roots with verification on.
	wantVerifyError(t, "SOAP, default client", login(srv.URL, base), "unknown CA")
	// httptest's certificate names 127.0.0.1 and example.com, not localhost.
	wrong := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	wantVerifyError(t, "SOAP, wrong host name", login(wrong, trusting), "wrong host")
}

func TestTLSDAVVerification(t *testing.T) {
	ca, err := testpki.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := memdav.New()
	srv.AddUser("user1", "pass1")
	serve := func(hosts ...string) string {
		ts := httptest.NewUnstartedServer(srv)
		cfg, err := ca.ServerTLSConfig(hosts...)
		if err != nil {
			t.Fatal(err)
		}
		ts.TLS = cfg
		ts.StartTLS()
		t.Cleanup(ts.Close)
		return ts.URL
	}
	good, wrongHost := serve("127.0.0.1"), serve("dav.example.com")
	ctx := context.Background()
	// Copy from and to the same calendar home: enough to exercise discovery,
	// listing and the TLS handshake of the copy engine's client.
	list := func(base string, hc *http.Client) error {
		e := dav.Endpoint{URL: base + memdav.CalendarHome("user1"), User: "user1", Password: secret.New("pass1")}
		if hc != nil {
			e.HTTPClient = hc
		}
		d, err := caldav.NewDAV(e)
		if err != nil {
			return err
		}
		_, err = (&dav.Copier{Rules: caldav.Rules{}}).Copy(ctx, d, d)
		return err
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLSConfig()}}
	if err := list(good, trusting); err != nil {
		t.Fatalf("trusted CA and right name: %v", err)
	}
	// No HTTPClient means the package default: system roots, verification on.
	wantVerifyError(t, "DAV, default client", list(good, nil), "unknown CA")
	wantVerifyError(t, "DAV, wrong host name", list(wrongHost, trusting), "wrong host")
}

// TestTLSDovecotVerification checks the mail side against a real server:
// Dovecot with implicit TLS and STARTTLS.
func TestTLSDovecotVerification(t *testing.T) {
	d := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "tls", TLS: true})
	ctx := context.Background()
	dial := func(addr string, sec imapcopy.Security, cfg *tls.Config) error {
		a := &imapcopy.Account{Addr: addr, Security: sec, TLSConfig: cfg, User: "user1",
			Password: secret.New(d.Users["user1"]), DialTimeout: 10 * time.Second}
		c, err := a.Dial(ctx)
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name string
		addr string
		sec  imapcopy.Security
	}{{"implicit TLS", d.TLSAddr, imapcopy.ImplicitTLS}, {"STARTTLS", d.Addr, imapcopy.StartTLS}} {
		if err := dial(tc.addr, tc.sec, d.CA.ClientTLSConfig()); err != nil {
			t.Fatalf("Dovecot %s, trusted CA: %v", tc.name, err)
		}
		wantVerifyError(t, "Dovecot "+tc.name+", default roots", dial(tc.addr, tc.sec, nil), "unknown CA")
		wrong := d.CA.ClientTLSConfig()
		wrong.ServerName = "mail.example.com"
		wantVerifyError(t, "Dovecot "+tc.name+", wrong host name", dial(tc.addr, tc.sec, wrong), "wrong host")
	}
}
