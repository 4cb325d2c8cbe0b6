// Package zxerrors holds the errors that every package of zxmigrate wraps
// for the failures a caller handles the same way wherever they happen: a
// server that refused the credentials, a server that could not be reached,
// and a TLS connection that could not be set up. Test for them with
// errors.Is:
//
//	_, err := copier.Copy(ctx, dst, src)
//	switch {
//	case errors.Is(err, zxerrors.ErrAuth):
//		// ask for the password again
//	case errors.Is(err, zxerrors.ErrUnreachable):
//		// check the address and the network
//	case errors.Is(err, zxerrors.ErrTLS):
//		// trust the server's CA, or fix its certificate
//	}
//
// The errors keep their own message and chain: errors.As still finds the
// *net.OpError, x509.HostnameError or *imap.Error underneath. The model is
// rclone's fs/fserrors, which marks errors with what to do about them
// without hiding their cause.
package zxerrors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"syscall"
)

var (
	// ErrAuth marks a server's refusal of the credentials: a wrong
	// password, an unknown user, an expired token, an SSH key or host
	// key refused. Trying again does not help.
	ErrAuth = errors.New("authentication failed")
	// ErrUnreachable marks a server that could not be reached: no such
	// host, connection refused, no route, or a connect that timed out.
	ErrUnreachable = errors.New("server unreachable")
	// ErrTLS marks a TLS connection that could not be set up: a
	// certificate that is not trusted, expired or for another name, a
	// failed handshake, a port that does not speak TLS, or a server that
	// refused STARTTLS.
	ErrTLS = errors.New("TLS failure")
)

// Mark returns err so that errors.Is(err, kind) holds, with err's message
// and chain unchanged. It returns nil for a nil err, and err itself when
// it already matches kind.
func Mark(err, kind error) error {
	if err == nil || errors.Is(err, kind) {
		return err
	}
	return &marked{err: err, kind: kind}
}

// marked is err, also matching kind.
type marked struct{ err, kind error }

func (m *marked) Error() string        { return m.err.Error() }
func (m *marked) Unwrap() error        { return m.err }
func (m *marked) Is(target error) bool { return target == m.kind }

// Connect marks an error from connecting to a server: a dial, a TLS
// handshake, an HTTP round trip. A TLS failure is marked ErrTLS, a failure
// to reach the server ErrUnreachable; other errors (a connection lost
// after it was set up, a cancelled context) are returned as they are.
func Connect(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrTLS) || errors.Is(err, ErrUnreachable) {
		return err
	}
	switch {
	case IsTLS(err):
		return Mark(err, ErrTLS)
	case isUnreachable(err):
		return Mark(err, ErrUnreachable)
	}
	return err
}

// IsTLS reports whether err's chain holds a failure to set up TLS: a
// certificate that did not verify, a handshake alert, or a peer that does
// not speak TLS. It does not look for ErrTLS; use errors.Is for that.
func IsTLS(err error) bool {
	var (
		cv    *tls.CertificateVerificationError
		ua    x509.UnknownAuthorityError
		he    x509.HostnameError
		ci    x509.CertificateInvalidError
		rh    tls.RecordHeaderError
		alert tls.AlertError
		ech   *tls.ECHRejectionError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) ||
		errors.As(err, &rh) || errors.As(err, &alert) || errors.As(err, &ech) ||
		errors.Is(err, http.ErrSchemeMismatch)
}

// isUnreachable reports whether err is a failure to open a connection.
func isUnreachable(err error) bool {
	var (
		dns *net.DNSError
		op  *net.OpError
	)
	switch {
	case errors.As(err, &dns):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return true
	case errors.As(err, &op):
		return op.Op == "dial"
	}
	return false
}
