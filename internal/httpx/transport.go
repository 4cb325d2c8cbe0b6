package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// Defaults of Options.
const (
	// DefaultIdleTimeout is how long a connection may see no byte move in
	// either direction while a request is in flight before it is closed.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultDialTimeout bounds a TCP connect.
	DefaultDialTimeout = 30 * time.Second
	// DefaultTLSHandshakeTimeout bounds a TLS handshake.
	DefaultTLSHandshakeTimeout = 30 * time.Second
	// DefaultMaxIdleConnsPerHost keeps enough idle connections for the
	// parallel workers of a DAV copy (net/http keeps only 2).
	DefaultMaxIdleConnsPerHost = 32
)

// Options configure NewTransport and NewClient. The zero value means TLS
// verification against the system roots and the defaults above.
type Options struct {
	// TLSConfig is cloned; nil means verification against the system
	// roots, TLS 1.2 or later.
	TLSConfig *tls.Config
	// Proxy picks a proxy per request; nil means http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
	// DialTimeout bounds a TCP connect; 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds a TLS handshake; 0 means
	// DefaultTLSHandshakeTimeout.
	TLSHandshakeTimeout time.Duration
	// IdleTimeout closes a connection on which no byte moved for this
	// long. Every read and write moves the deadline, so a slow transfer
	// that progresses is never cut. 0 means DefaultIdleTimeout; negative
	// disables it.
	IdleTimeout time.Duration
	// MaxIdleConnsPerHost is the pool size per host; 0 means
	// DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// Wrap, when not nil, wraps the transport (a request pacer, a
	// recorder); it receives the base transport and returns the one used.
	Wrap func(http.RoundTripper) http.RoundTripper
	// Side names the servers the client reaches ("source",
	// "destination") in the reports to the observer a request's context
	// carries (internal/obs); "" means "http".
	Side string
}

func (o Options) idle() time.Duration {
	switch {
	case o.IdleTimeout < 0:
		return 0
	case o.IdleTimeout == 0:
		return DefaultIdleTimeout
	}
	return o.IdleTimeout
}

// NewTransport returns a transport with the options applied. Its
// connections have moving idle deadlines (see Options.IdleTimeout).
func NewTransport(o Options) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	}
	t.TLSClientConfig = cfg
	t.Proxy = http.ProxyFromEnvironment
	if o.Proxy != nil {
		t.Proxy = o.Proxy
	}
	dial := o.DialTimeout
	if dial <= 0 {
		dial = DefaultDialTimeout
	}
	t.TLSHandshakeTimeout = o.TLSHandshakeTimeout
	if t.TLSHandshakeTimeout <= 0 {
		t.TLSHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	t.MaxIdleConnsPerHost = o.MaxIdleConnsPerHost
	if t.MaxIdleConnsPerHost <= 0 {
		t.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	idle := o.idle()
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || idle <= 0 {
			return c, err
		}
		return newIdleConn(c, idle), nil
	}
	if idle > 0 && (t.IdleConnTimeout == 0 || t.IdleConnTimeout >= idle) {
		// A pooled connection is dropped by the pool before its idle
		// deadline would close it under a new request.
		t.IdleConnTimeout = idle / 2
	}
	// Under the pacer, the observer sees every attempt and every answer.
	var rt http.RoundTripper = obs.Transport(connectErrors{t}, o.Side)
	if o.Wrap != nil {
		rt = o.Wrap(rt)
	}
	return rt
}

// connectErrors marks the errors of failed connections with
// zxerrors.ErrUnreachable or zxerrors.ErrTLS (see zxerrors.Connect), so
// that every HTTP caller of this module reports them alike.
type connectErrors struct{ t *http.Transport }

// RoundTrip implements http.RoundTripper.
func (c connectErrors) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.t.RoundTrip(req)
	// http.Client turns a TLS record header that reads "HTTP/" into
	// http.ErrSchemeMismatch only when the transport's error is the bare
	// tls.RecordHeaderError (net/http client.go, send): do it here, before
	// the mark hides it.
	if rh, ok := err.(tls.RecordHeaderError); ok && string(rh.RecordHeader[:]) == "HTTP/" {
		err = http.ErrSchemeMismatch
	}
	return resp, zxerrors.Connect(err)
}

// CloseIdleConnections closes the transport's idle connections.
func (c connectErrors) CloseIdleConnections() { c.t.CloseIdleConnections() }

// NewClient returns an http.Client over NewTransport(o). It has no overall
// timeout (the idle deadlines bound a stalled transfer without cutting a
// long one) and refuses redirects to plain http from https.
func NewClient(o Options) *http.Client {
	return &http.Client{Transport: NewTransport(o), CheckRedirect: noDowngrade}
}

// noDowngrade refuses an https to http redirect and stops after 10.
func noDowngrade(req *http.Request, via []*http.Request) error {
	if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return &OriginError{URL: redacted(req.URL), Allowed: OriginOf(via[0].URL), Plaintext: true, Redirect: true, From: redacted(via[len(via)-1].URL)}
	}
	if len(via) >= 10 {
		return fmt.Errorf("httpx: stopped after 10 redirects")
	}
	return nil
}

// idleConn moves its read and write deadlines forward on every read and
// write: a blocked read (the transport's response reader) is released when
// nothing moved either way for the idle timeout.
type idleConn struct {
	net.Conn
	idle time.Duration
	// next is when the deadline was last moved, in UnixNano; the deadline
	// is moved again only when a sixteenth of the timeout has passed, to
	// keep the cost off small reads.
	last atomic.Int64
}

func newIdleConn(c net.Conn, idle time.Duration) *idleConn {
	ic := &idleConn{Conn: c, idle: idle}
	ic.touch()
	return ic
}

func (c *idleConn) touch() {
	now := time.Now()
	if last := c.last.Load(); last != 0 && now.UnixNano()-last < int64(c.idle/16) {
		return
	}
	c.last.Store(now.UnixNano())
	c.Conn.SetDeadline(now.Add(c.idle))
}

// Read implements net.Conn.
func (c *idleConn) Read(b []byte) (int, error) {
	c.touch()
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.touch()
	}
	return n, wrapTimeout(err, c.idle)
}

// Write implements net.Conn.
func (c *idleConn) Write(b []byte) (int, error) {
	c.touch()
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.touch()
	}
	return n, wrapTimeout(err, c.idle)
}

// IdleError is a connection closed because nothing moved on it for the idle
// timeout. It is a net.Error with Timeout true, so package retry treats it
// as transient.
type IdleError struct {
	Idle time.Duration
	Err  error
}

// Error implements error.
func (e *IdleError) Error() string {
	return fmt.Sprintf("httpx: no data for %s (idle timeout; raise it if the server is slow but alive): %v", e.Idle, e.Err)
}

// Unwrap returns the underlying error.
func (e *IdleError) Unwrap() error { return e.Err }

// Timeout implements net.Error.
func (e *IdleError) Timeout() bool { return true }

// Temporary implements net.Error.
func (e *IdleError) Temporary() bool { return true }

func wrapTimeout(err error, idle time.Duration) error {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return &IdleError{Idle: idle, Err: err}
	}
	return err
}

// LoadTLSConfig returns a TLS configuration with verification on, TLS 1.2
// or later, trusting the system roots plus the PEM certificates in caFile
// when it is not empty. It is the one place that builds the TLS
// configuration of a client from a CA file.
func LoadTLSConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// IdleTimeout returns how long the connection saw no data.
func (e *IdleError) IdleTimeout() time.Duration { return e.Idle }
