package dav

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/emersion/go-webdav"

	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// TokenSource gives a Carbonio auth token for one user (admin
// DelegateAuth), sent as the ZM_AUTH_TOKEN cookie; carbonio.Client
// implements it. It is called for every request, possibly concurrently:
// implementations cache the token and renew it before it expires. If it
// also has a method ForgetUserToken(account string), a 401 drops the cached
// token and the request is sent once more with a new one.
type TokenSource interface {
	// UserToken returns account's token.
	UserToken(ctx context.Context, account string) (secret.Secret, error)
}

// Endpoint is a CalDAV or CardDAV server, or a Zimbra REST port, and how to
// log in. caldav.NewDAV, carddav.NewDAV and the NewZimbraREST functions
// take one.
type Endpoint struct {
	// URL is a server, principal, home-set or collection URL (for REST:
	// the server, e.g. https://zimbra.example.com:7071).
	URL string
	// User is the login name, sent with Password as Basic credentials
	// when Token is nil.
	User string
	// Password is User's password.
	Password secret.Secret
	// Token, when not nil, gives the ZM_AUTH_TOKEN cookie for Account (or
	// User when Account is empty): Carbonio admin DelegateAuth, no user
	// password needed. On a Zimbra REST admin port (7071, 6071) it goes in
	// ZM_ADMIN_AUTH_TOKEN and must be an admin's token.
	Token TokenSource
	// Account is the mailbox whose data is read or written.
	Account string
	// HTTPClient sends the requests; nil means an http.Client with TLS
	// verification on, idle timeouts and the process's per-host pacer.
	// Given an *http.Client, credentials are attached per hop by a copy of
	// it, so they reach no origin but URL's and TrustedOrigins, redirects
	// included.
	HTTPClient webdav.HTTPClient
	// TrustedOrigins lists origins besides URL's that hrefs and redirects
	// may point to ("https://dav2.example.com:8443", or a bare host taking
	// URL's scheme). Requests to any other origin are refused and reported
	// as the failure of the object or collection concerned.
	TrustedOrigins []string
	// AllowPlaintext permits plain-http hrefs and redirects from an https
	// URL (credentials then travel in clear).
	AllowPlaintext bool
	// Limits bound what the server may send; the zero value means the
	// defaults (see Limits).
	Limits Limits
	// TLSConfig and IdleTimeout configure the client made when HTTPClient
	// is nil: nil TLSConfig verifies against the system roots; IdleTimeout
	// fails a request on whose connection no byte moved for that long (a
	// slow transfer that progresses is never cut), 0 meaning 2 minutes.
	TLSConfig *tls.Config
	// IdleTimeout: see TLSConfig.
	IdleTimeout time.Duration
}

// HTTP returns the endpoint's authenticated HTTP client, for go-webdav's
// clients or raw requests. It sends credentials to URL's origin and
// TrustedOrigins only, and reads every XML answer under Limits (size and
// depth) before the caller decodes it. A URL that cannot be parsed gives a
// client whose every request fails with that error.
func (e Endpoint) HTTP() webdav.HTTPClient { return guardXML(e.http(false), e.Limits) }

// http returns the authenticated client; rest selects the Zimbra REST
// cookie rule (TokenCookie).
func (e Endpoint) http(rest bool) webdav.HTTPClient {
	scope, err := httpx.NewScope(e.URL, e.TrustedOrigins, e.AllowPlaintext)
	if err != nil {
		return failing{fmt.Errorf("dav: %w", err)}
	}
	hc := e.HTTPClient
	if hc == nil {
		hc = httpx.NewClient(httpx.Options{TLSConfig: e.TLSConfig, IdleTimeout: e.IdleTimeout, Wrap: pace.Default().Wrap})
	}
	if rest {
		return restClient(hc, scope, e.URL, e.User, e.Password, e.Token, e.Account)
	}
	return endpointClient(hc, scope, e.User, e.Password, e.Token, e.Account)
}

// Client returns a raw client for the endpoint.
func (e Endpoint) Client() (*Client, error) { return e.client(false) }

func (e Endpoint) client(rest bool) (*Client, error) {
	return newClientWith(e.http(rest), e.URL, clientOptions{TrustedOrigins: e.TrustedOrigins, AllowPlaintext: e.AllowPlaintext, Limits: e.Limits})
}

type failing struct{ err error }

func (f failing) Do(*http.Request) (*http.Response, error) { return nil, f.err }

// defaultHTTPClient returns an http.Client with TLS verification on, idle
// deadlines on every connection and enough idle connections per host for
// DefaultConcurrency workers (see internal/httpx). Its requests go through
// the process's shared pacer (pace.Default), which keeps each host under
// Zimbra's default request rate.
func defaultHTTPClient() *http.Client {
	return httpx.NewClient(httpx.Options{Wrap: pace.Default().Wrap})
}

// basicAuth returns an HTTP client that sends Basic credentials to the
// origins of scope only (see httpx.Authorize); requests and redirects
// elsewhere are refused. The password is revealed only on the wire.
func basicAuth(hc webdav.HTTPClient, scope *httpx.Scope, user string, pw secret.Secret) webdav.HTTPClient {
	return httpx.Authorize(hc, scope, func(req *http.Request) error {
		req.SetBasicAuth(user, pw.Reveal())
		return nil
	})
}

// tokenFunc returns the current auth token.
type tokenFunc func(ctx context.Context) (secret.Secret, error)

// cookieAuth returns an HTTP client that sends the token from tok as the
// named cookie (ZM_AUTH_TOKEN for user ports, ZM_ADMIN_AUTH_TOKEN for the
// admin port), to the origins of scope only (see httpx.Authorize). A token
// error fails the request, wrapped with zxerrors.ErrAuth. When the server
// answers 401 and forget is not nil, forget drops the cached token and the
// request is sent once more with a fresh one.
func cookieAuth(hc webdav.HTTPClient, scope *httpx.Scope, name string, tok tokenFunc, forget func()) webdav.HTTPClient {
	authed := httpx.Authorize(hc, scope, func(req *http.Request) error {
		t, err := tok(req.Context())
		if err != nil {
			return fmt.Errorf("dav: token for %s: %w: %w", req.URL.Host, zxerrors.ErrAuth, err)
		}
		req.AddCookie(&http.Cookie{Name: name, Value: t.Reveal()})
		return nil
	})
	return &cookieClient{hc: authed, forget: forget}
}

// cookieClient sends a request once more after a 401 once forget has
// dropped the cached token.
type cookieClient struct {
	hc     webdav.HTTPClient
	forget func()
}

func (c *cookieClient) Do(req *http.Request) (*http.Response, error) {
	retryable := c.forget != nil && (req.Body == nil || req.GetBody != nil)
	var first *http.Request
	if retryable {
		first = req.Clone(req.Context())
	} else {
		first = req
	}
	resp, err := c.hc.Do(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !retryable {
		return resp, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	c.forget()
	again := req.Clone(req.Context())
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("dav: replay %s: %w", req.URL.Redacted(), err)
		}
		again.Body = b
	}
	return c.hc.Do(again)
}

// endpointClient returns hc (nil: defaultHTTPClient) authenticated as an
// Endpoint says: with token set, the ZM_AUTH_TOKEN cookie
// of account (user when account is empty), renewed once on a 401 when the
// source can forget a token; else Basic user/password when user is set.
// Credentials go to the origins of scope only; with neither, requests
// outside scope are still refused.
func endpointClient(hc webdav.HTTPClient, scope *httpx.Scope, user string, pw secret.Secret, token TokenSource, account string) webdav.HTTPClient {
	if hc == nil {
		hc = defaultHTTPClient()
	}
	switch {
	case token != nil:
		if account == "" {
			account = user
		}
		var forget func()
		if f, ok := token.(interface{ ForgetUserToken(account string) }); ok {
			forget = func() { f.ForgetUserToken(account) }
		}
		return cookieAuth(hc, scope, "ZM_AUTH_TOKEN", func(ctx context.Context) (secret.Secret, error) {
			return token.UserToken(ctx, account)
		}, forget)
	case user != "":
		return basicAuth(hc, scope, user, pw)
	}
	return httpx.Restrict(hc, scope)
}

// TokenCookie names the cookie that carries an auth token to rawURL: a
// request to an admin port (the mailstore's 7071, the proxy's 6071) is an
// admin request, whose token the servlets read from ZM_ADMIN_AUTH_TOKEN;
// elsewhere ZM_AUTH_TOKEN (zextras/carbonio-mailbox
// common/src/main/java/com/zimbra/common/util/ZimbraCookie.java
// authTokenCookieName, store/…/cs/servlet/util/AuthUtil.java
// isAdminRequest, store/…/cs/service/UserServletUtil.java getAccount).
func TokenCookie(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "ZM_AUTH_TOKEN"
	}
	port := u.Port()
	if port == "" {
		_, port, _ = net.SplitHostPort(u.Host)
	}
	if port == "7071" || port == "6071" {
		return "ZM_ADMIN_AUTH_TOKEN"
	}
	return "ZM_AUTH_TOKEN"
}

// restClient is endpointClient for Zimbra REST (UserServlet) requests to
// rawURL, credentials going to the origins of scope only: with a token, on an admin port the token goes in
// ZM_ADMIN_AUTH_TOKEN (and must then be an admin's token), elsewhere in
// ZM_AUTH_TOKEN.
func restClient(hc webdav.HTTPClient, scope *httpx.Scope, rawURL, user string, pw secret.Secret, token TokenSource, account string) webdav.HTTPClient {
	name := TokenCookie(rawURL)
	if token == nil || name == "ZM_AUTH_TOKEN" {
		return endpointClient(hc, scope, user, pw, token, account)
	}
	if hc == nil {
		hc = defaultHTTPClient()
	}
	if account == "" {
		account = user
	}
	var forget func()
	if f, ok := token.(interface{ ForgetUserToken(account string) }); ok {
		forget = func() { f.ForgetUserToken(account) }
	}
	return cookieAuth(hc, scope, name, func(ctx context.Context) (secret.Secret, error) {
		return token.UserToken(ctx, account)
	}, forget)
}
