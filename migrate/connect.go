package migrate

// This file holds how a run connects: the TLS configuration from a CA
// file, the HTTP clients of the DAV and admin calls, and the preflight's
// reachability checks. internal/httpx builds every TLS configuration and
// HTTP client; the functions here are its public face.

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// Defaults of HTTPOptions, and of the SDK's retries. They are the values
// of the internal packages that apply them (a test keeps them equal).
const (
	// DefaultIdleTimeout is how long a connection may move no byte while
	// a request is in flight before the request fails.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultHTTPRate is how many HTTP requests per second one client
	// sends to one host at most: Zimbra's default
	// zimbraHttpDosFilterMaxRequestsPerSec.
	DefaultHTTPRate = 30
	// DefaultRetryAttempts is how many times the SDK tries a request that
	// fails transiently (a reset connection, HTTP 503, IMAP BYE) before
	// it gives up.
	DefaultRetryAttempts = 6
)

// LoadTLSConfig returns a TLS configuration with verification on, TLS 1.2
// or later, trusting the system roots plus the PEM certificates in caFile
// when it is not empty. An unreadable file or one without a certificate is
// an error.
func LoadTLSConfig(caFile string) (*tls.Config, error) { return httpx.LoadTLSConfig(caFile) }

// HTTPOptions configure NewHTTPClient. The zero value means TLS
// verification against the system roots, DefaultIdleTimeout and
// DefaultHTTPRate.
type HTTPOptions struct {
	// TLSConfig is cloned; nil means the system roots, TLS 1.2 or later.
	TLSConfig *tls.Config
	// IdleTimeout fails a request when no byte moved on its connection
	// for this long; a slow transfer that progresses is never cut. 0
	// means DefaultIdleTimeout; negative disables it.
	IdleTimeout time.Duration
	// Rate is how many requests per second the client sends to one host
	// at most, slowing down further when a server answers 429 or 503. 0
	// means DefaultHTTPRate; negative turns pacing off.
	Rate float64
}

// NewHTTPClient returns the HTTP client the SDK uses for DAV and the admin
// API, for callers that fill caldav.Endpoint.HTTPClient or
// carbonio.Client.HTTPClient themselves. It has dial and TLS handshake
// timeouts and idle deadlines but no overall timeout, refuses redirects
// from https to http, and marks failed connections with
// zxerrors.ErrUnreachable or zxerrors.ErrTLS. It is safe for concurrent
// use.
func NewHTTPClient(o HTTPOptions) *http.Client {
	return httpClient(o.TLSConfig, o.IdleTimeout, pace.New(o.Rate), "")
}

// httpClient has no overall timeout: its connections' idle deadlines
// (internal/httpx) fail a stalled request without cutting a long transfer.
// Every request goes through the pacer p (one pace per host), which a run
// shares between its clients. side names its servers in the per-server
// metrics ("source", "destination"; "" when unknown).
func httpClient(cfg *tls.Config, idle time.Duration, p *pace.Pacer, side string) *http.Client {
	return httpx.NewClient(httpx.Options{TLSConfig: cfg, IdleTimeout: idle, Wrap: p.Wrap, Side: side})
}

// CheckTrustedOrigins checks origins as DAVEndpoint.TrustedOrigins and the
// TrustedOrigins of caldav and carddav endpoints take them: URLs
// ("https://dav2.example.com:8443"; a path is ignored) or bare
// host[:port], which mean https. A plain-http origin is an error unless
// allowPlaintext is set: credentials would travel in clear.
func CheckTrustedOrigins(origins []string, allowPlaintext bool) error {
	for _, o := range origins {
		org, err := httpx.ParseOrigin(o, "https")
		if err != nil {
			return err
		}
		if org.Scheme == "http" && !allowPlaintext {
			return fmt.Errorf("%s is plain http: credentials would travel in clear", org)
		}
	}
	return nil
}

// loadTLS is LoadTLSConfig for a plan's ca_file.
func loadTLS(caFile string) (*tls.Config, error) {
	cfg, err := LoadTLSConfig(caFile)
	if err != nil {
		return nil, fmt.Errorf("migrate: ca_file: %w", err)
	}
	return cfg, nil
}

// dialCheck connects (and, for implicit TLS, handshakes with verification).
func dialCheck(ctx context.Context, key, addr, security string, cfg *tls.Config) error {
	d := net.Dialer{Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return &ServerError{Key: key, Address: addr, Err: zxerrors.Connect(err)}
	}
	defer conn.Close()
	if security == "" || security == "tls" {
		c := cfg.Clone()
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(conn, c)
		if err := tc.HandshakeContext(ctx); err != nil {
			return &ServerError{Key: key, Address: addr, Err: fmt.Errorf("tls: %w", zxerrors.Connect(err))}
		}
	}
	return nil
}

func httpCheck(ctx context.Context, key, url string, hc *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, url, nil)
	if err != nil {
		return &ServerError{Key: key, Address: url, Err: err}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &ServerError{Key: key, Address: url, Err: err}
	}
	resp.Body.Close()
	return nil // any HTTP answer means reachable; logins are per account
}
