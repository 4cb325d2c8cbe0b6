package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"testing"
)

// handshake runs one TLS handshake over an in-memory pipe and returns the
// client's error.
func handshake(t *testing.T, srv, cli *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		s := tls.Server(conn, srv)
		if s.Handshake() == nil {
			s.Write([]byte("x"))
		}
		s.Close()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(conn, cli)
	err = c.Handshake()
	if err == nil {
		buf := make([]byte, 1)
		_, err = io.ReadFull(c, buf)
	}
	c.Close()
	<-done
	return err
}

func TestHandshake(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.ServerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if err := handshake(t, srv, &tls.Config{RootCAs: ca.Pool(), ServerName: name}); err != nil {
			t.Errorf("handshake as %s with CA pool: %v", name, err)
		}
	}

	// Another name than the certificate's fails verification.
	err = handshake(t, srv, &tls.Config{RootCAs: ca.Pool(), ServerName: "example.org"})
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Errorf("handshake as example.org: got %v, want x509.HostnameError", err)
	}

	// Without the pool the certificate is unknown.
	err = handshake(t, srv, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"})
	var unk x509.UnknownAuthorityError
	if !errors.As(err, &unk) {
		t.Errorf("handshake without CA: got %v, want x509.UnknownAuthorityError", err)
	}

	// Another CA's pool does not trust it either.
	other, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv, &tls.Config{RootCAs: other.Pool(), ServerName: "127.0.0.1"}); !errors.As(err, &unk) {
		t.Errorf("handshake with other CA: got %v, want x509.UnknownAuthorityError", err)
	}
}

func TestCAFile(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	path, err := ca.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	certPEM, keyPEM, err := ca.Issue("localhost", "::1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "::1"}); err != nil {
		t.Errorf("verify issued certificate for ::1 against the CA file: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("verify issued certificate for localhost: %v", err)
	}
}

func TestIssueBadInput(t *testing.T) {
	ca, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Issue(); err == nil {
		t.Error("Issue() with no hosts: got nil error")
	}
	if _, _, err := ca.Issue("localhost", ""); err == nil {
		t.Error(`Issue("localhost", ""): got nil error`)
	}
}
