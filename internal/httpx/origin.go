// Package httpx builds the HTTP clients every zxmigrate component uses to
// reach DAV, REST and SOAP servers, and holds the one place where
// credentials are attached to requests.
//
// The rule it enforces: a credential (Basic authorization, a bearer or
// token header, a ZM_AUTH_TOKEN / ZM_ADMIN_AUTH_TOKEN cookie) goes only to
// the origin (scheme, host and port, RFC 6454 section 4) the client was
// configured for, or to an origin listed explicitly as trusted. Requests and
// redirects to any other origin are refused with an *OriginError naming
// the URL; a plain-http URL reached from an https configuration is refused
// unless plaintext is allowed. Go's own http.Client keeps Authorization on
// a redirect to the same host name on another port or scheme
// (net/http/client.go, shouldCopyHeaderOnRedirect), which is why
// credentials are attached per hop by a RoundTripper here, never set on the
// request by the caller.
//
// NewTransport builds a transport whose connections carry idle deadlines
// that move with progress: a transfer that keeps moving is never cut, a
// server that stops answering fails after Options.IdleTimeout.
package httpx

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/zxmigrate/zxmigrate/retry"
)

// Origin is a scheme, host and port (RFC 6454 section 4), lower case, the
// port always explicit.
type Origin struct {
	Scheme string
	Host   string
	Port   string
}

// OriginOf returns the origin of u; the port defaults to 80 for http and
// 443 for https.
func OriginOf(u *url.URL) Origin {
	o := Origin{Scheme: strings.ToLower(u.Scheme), Host: strings.ToLower(u.Hostname()), Port: u.Port()}
	if o.Port == "" {
		switch o.Scheme {
		case "http":
			o.Port = "80"
		case "https":
			o.Port = "443"
		}
	}
	return o
}

// String returns scheme://host:port.
func (o Origin) String() string {
	return o.Scheme + "://" + net.JoinHostPort(o.Host, o.Port)
}

// ParseOrigin reads an origin written as a URL ("https://dav2.example.com",
// "https://dav2.example.com:8443"; a path is ignored) or as a bare
// host[:port], which takes scheme def.
func ParseOrigin(s, def string) (Origin, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Origin{}, errors.New("httpx: empty origin")
	}
	if !strings.Contains(s, "://") {
		s = def + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Origin{}, fmt.Errorf("httpx: origin %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Origin{}, fmt.Errorf("httpx: origin %q: scheme must be http or https", s)
	}
	if u.Hostname() == "" {
		return Origin{}, fmt.Errorf("httpx: origin %q has no host", s)
	}
	return OriginOf(u), nil
}

// Scope is the set of origins a client may send requests (and with them
// credentials) to: the origin it was configured for plus the ones listed
// as trusted. The zero value allows nothing; a nil *Scope allows everything
// (for callers that configure no server). It is immutable and safe for
// concurrent use.
type Scope struct {
	base           Origin
	trusted        []Origin
	allowPlaintext bool
}

// NewScope returns the scope of base (a URL) plus trusted origins (see
// ParseOrigin; a bare host takes base's scheme). allowPlaintext permits
// plain-http origins when base is https; without it such origins are
// refused even when listed.
func NewScope(base string, trusted []string, allowPlaintext bool) (*Scope, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("httpx: URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Errorf("httpx: URL %q: need http(s)://host", u.Redacted())
	}
	s := &Scope{base: OriginOf(u), allowPlaintext: allowPlaintext}
	for _, t := range trusted {
		o, err := ParseOrigin(t, s.base.Scheme)
		if err != nil {
			return nil, err
		}
		s.trusted = append(s.trusted, o)
	}
	return s, nil
}

// Base returns the configured origin.
func (s *Scope) Base() Origin { return s.base }

// Check returns nil when u may be sent to, else an *OriginError.
func (s *Scope) Check(u *url.URL) error {
	if s == nil {
		return nil
	}
	o := OriginOf(u)
	if o.Scheme == "http" && s.base.Scheme == "https" && !s.allowPlaintext {
		return &OriginError{URL: redacted(u), Allowed: s.base, Plaintext: true}
	}
	if o == s.base {
		return nil
	}
	for _, t := range s.trusted {
		if o == t {
			return nil
		}
	}
	return &OriginError{URL: redacted(u), Allowed: s.base}
}

// CheckRedirect is an http.Client CheckRedirect: it refuses a redirect
// leaving the scope and stops after 10 redirects, like net/http.
func (s *Scope) CheckRedirect(req *http.Request, via []*http.Request) error {
	if err := s.Check(req.URL); err != nil {
		var oe *OriginError
		if errors.As(err, &oe) {
			oe.Redirect = true
			if len(via) > 0 {
				oe.From = redacted(via[len(via)-1].URL)
			}
		}
		return err
	}
	if len(via) >= 10 {
		return errors.New("httpx: stopped after 10 redirects")
	}
	return nil
}

func redacted(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	c.Fragment = ""
	return c.Redacted()
}

// OriginError is a request refused because its URL is outside the scope.
// Its retry class is Permanent: the same href fails the same way again.
type OriginError struct {
	// URL is the refused URL, without query and user info.
	URL string
	// Allowed is the configured origin.
	Allowed Origin
	// Plaintext is set when the URL is plain http and the configuration
	// https.
	Plaintext bool
	// Redirect is set when a server redirected to URL; From is the URL
	// that redirected.
	Redirect bool
	From     string
}

// Error implements error.
func (e *OriginError) Error() string {
	what := "refusing request to " + e.URL
	if e.Redirect {
		what = "refusing redirect"
		if e.From != "" {
			what += " from " + e.From
		}
		what += " to " + e.URL
	}
	if e.Plaintext {
		return fmt.Sprintf("httpx: %s: plain http from an https server (%s); credentials would travel in clear (allow plaintext to permit it)", what, e.Allowed)
	}
	return fmt.Sprintf("httpx: %s: not the configured origin %s (list it as a trusted origin if it belongs to the same service)", what, e.Allowed)
}

// RetryClass implements retry.Classifier.
func (e *OriginError) RetryClass() retry.Class { return retry.Permanent }
