package zxerrors_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/testpki"
	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

var kinds = []struct {
	name string
	err  error
}{
	{"ErrAuth", zxerrors.ErrAuth},
	{"ErrUnreachable", zxerrors.ErrUnreachable},
	{"ErrTLS", zxerrors.ErrTLS},
}

// checkKind fails unless err matches want and none of the other kinds.
func checkKind(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one matching %v", want)
	}
	for _, k := range kinds {
		if got := errors.Is(err, k.err); got != (k.err == want) {
			t.Errorf("errors.Is(err, zxerrors.%s) = %v, want %v; err: %v", k.name, got, k.err == want, err)
		}
	}
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestMarkKeepsMessageAndChain(t *testing.T) {
	base := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("boom")}
	err := fmt.Errorf("imapcopy: connect x: %w", zxerrors.Connect(base))
	if got, want := err.Error(), "imapcopy: connect x: dial tcp: boom"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op != base {
		t.Errorf("errors.As did not find the *net.OpError under the mark")
	}
	checkKind(t, err, zxerrors.ErrUnreachable)
	if zxerrors.Mark(nil, zxerrors.ErrTLS) != nil || zxerrors.Connect(nil) != nil {
		t.Error("a nil error was marked")
	}
	// A lost connection (not a dial) and a cancelled dial stay unmarked.
	for _, e := range []error{
		&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")},
		&net.OpError{Op: "dial", Net: "tcp", Err: context.Canceled},
		errors.New("something else"),
	} {
		got := zxerrors.Connect(e)
		for _, k := range kinds {
			if errors.Is(got, k.err) {
				t.Errorf("Connect(%v) matches %s", e, k.name)
			}
		}
	}
	// Marking twice keeps one mark.
	m := zxerrors.Mark(zxerrors.Mark(base, zxerrors.ErrTLS), zxerrors.ErrTLS)
	if errors.Unwrap(m) != base {
		t.Errorf("a second Mark wrapped the error again: %#v", m)
	}
}

// TestIMAP: imapcopy's errors against a real Dovecot.
func TestIMAP(t *testing.T) {
	d := testserver.StartDovecot(t, testserver.DovecotOptions{Name: "zxerrors", TLS: true})

	_, plainPort, _ := net.SplitHostPort(d.Addr)
	account := func(addr string, sec imapcopy.Security, cfg *tls.Config, pw string) *imapcopy.Account {
		return &imapcopy.Account{Addr: addr, Security: sec, TLSConfig: cfg, User: "user1", Password: secret.New(pw), DialTimeout: 30 * time.Second}
	}
	trusted := d.CA.ClientTLSConfig()
	otherName := d.CA.ClientTLSConfig()
	otherName.ServerName = "imap.example.org" // the certificate names 127.0.0.1 and localhost
	otherCA, err := testpki.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The control: the right password on the trusted certificate works.
	c, err := account(d.TLSAddr, imapcopy.ImplicitTLS, trusted, "pass1").Dial(ctx)
	if err != nil {
		t.Fatalf("the right password: %v", err)
	}
	c.Close()

	for _, tc := range []struct {
		name string
		acct *imapcopy.Account
		want error
	}{
		{"wrong password", account(d.TLSAddr, imapcopy.ImplicitTLS, trusted, "wrong"), zxerrors.ErrAuth},
		{"wrong password, STARTTLS", account(d.Addr, imapcopy.StartTLS, trusted, "wrong"), zxerrors.ErrAuth},
		{"closed port", account(closedAddr(t), imapcopy.ImplicitTLS, trusted, "pass1"), zxerrors.ErrUnreachable},
		{"certificate for another name", account(d.TLSAddr, imapcopy.ImplicitTLS, otherName, "pass1"), zxerrors.ErrTLS},
		{"certificate from an unknown CA", account(d.TLSAddr, imapcopy.ImplicitTLS, otherCA.ClientTLSConfig(), "pass1"), zxerrors.ErrTLS},
		{"STARTTLS, certificate for another name", account(d.Addr, imapcopy.StartTLS, otherName, "pass1"), zxerrors.ErrTLS},
		{"implicit TLS on the plain port", account("127.0.0.1:"+plainPort, imapcopy.ImplicitTLS, trusted, "pass1"), zxerrors.ErrTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.acct.Dial(ctx)
			if err == nil {
				c.Close()
			}
			checkKind(t, err, tc.want)
		})
	}

	// The Copier's own write connections report the same: a destination
	// that refuses the password, and one that cannot be reached.
	src := account(d.TLSAddr, imapcopy.ImplicitTLS, trusted, "pass1")
	for _, tc := range []struct {
		name string
		dst  *imapcopy.Account
		want error
	}{
		{"copy to a wrong password", account(d.TLSAddr, imapcopy.ImplicitTLS, trusted, "wrong"), zxerrors.ErrAuth},
		{"copy to a closed port", account(closedAddr(t), imapcopy.ImplicitTLS, trusted, "pass1"), zxerrors.ErrUnreachable},
		{"copy to another name", account(d.TLSAddr, imapcopy.ImplicitTLS, otherName, "pass1"), zxerrors.ErrTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			_, err := (&imapcopy.Copier{}).Copy(ctx, tc.dst, src)
			checkKind(t, err, tc.want)
		})
	}
}

// TestCarbonio: the admin client's errors against the fake admin server.
func TestCarbonio(t *testing.T) {
	srv := carboniotest.New(carboniotest.Options{Admin: "admin@example.com", Password: "pw"})
	defer srv.Close()
	ca, err := testpki.New()
	if err != nil {
		t.Fatal(err)
	}
	// A server whose certificate is trusted but names another host.
	cfg, err := ca.ServerTLSConfig("carbonio.example.org")
	if err != nil {
		t.Fatal(err)
	}
	wrongName := httptest.NewUnstartedServer(http.NotFoundHandler())
	wrongName.TLS = cfg
	wrongName.StartTLS()
	defer wrongName.Close()
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.ClientTLSConfig()}}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := func(url, pw string, hc *http.Client) *carbonio.Client {
		c := &carbonio.Client{URL: url, Admin: "admin@example.com", Password: secret.New(pw), HTTPClient: hc}
		c.Retry.Attempts = 1
		return c
	}
	if err := client(srv.URL, "pw", srv.Client()).Login(ctx); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	for _, tc := range []struct {
		name string
		c    *carbonio.Client
		want error
	}{
		{"wrong password", client(srv.URL, "wrong", srv.Client()), zxerrors.ErrAuth},
		{"closed port", client("https://"+closedAddr(t), "pw", nil), zxerrors.ErrUnreachable},
		{"closed port, caller's client", client("https://"+closedAddr(t), "pw", &http.Client{}), zxerrors.ErrUnreachable},
		{"certificate from an unknown CA", client(srv.URL, "pw", nil), zxerrors.ErrTLS},
		{"certificate for another name", client(wrongName.URL, "pw", trusting), zxerrors.ErrTLS},
		{"https to a plain HTTP port", client(strings.Replace(plain.URL, "http:", "https:", 1), "pw", nil), zxerrors.ErrTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkKind(t, tc.c.Login(ctx), tc.want)
		})
	}
	// The plain port keeps net/http's own error in the chain.
	if err := client(strings.Replace(plain.URL, "http:", "https:", 1), "pw", nil).Login(ctx); !errors.Is(err, http.ErrSchemeMismatch) {
		t.Errorf("https to a plain HTTP port: %v, want http.ErrSchemeMismatch in the chain", err)
	}
}

// TestDAV: the DAV engine's errors against a real Radicale, a closed port
// and a certificate from an unknown CA.
func TestDAV(t *testing.T) {
	r := testserver.StartRadicale(t, map[string]string{"alice": "pw"})
	untrusted := httptest.NewTLSServer(http.NotFoundHandler()) // its own CA, not in the system roots
	defer untrusted.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	collections := func(url, pw string) error {
		src, err := caldav.NewDAV(dav.Endpoint{URL: url, User: "alice", Password: secret.New(pw), AllowPlaintext: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Collections(ctx)
		return err
	}
	if err := collections(r.CalendarHome("alice"), "pw"); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	for _, tc := range []struct {
		name, url, pw string
		want          error
	}{
		{"wrong password", r.CalendarHome("alice"), "wrong", zxerrors.ErrAuth},
		{"closed port", "https://" + closedAddr(t) + "/alice/", "pw", zxerrors.ErrUnreachable},
		{"certificate from an unknown CA", untrusted.URL + "/alice/", "pw", zxerrors.ErrTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkKind(t, collections(tc.url, tc.pw), tc.want)
		})
	}
}
