package httpx

import (
	"net/http"
)

// Credential adds a credential to one outgoing request (a header or a
// cookie). It is called on a copy of the request, once per hop, only for
// URLs inside the scope; it may be called concurrently.
type Credential func(req *http.Request) error

// Doer is the one-method HTTP client interface (go-webdav's HTTPClient;
// *http.Client satisfies it).
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// Authorize returns a client that sends requests through hc and attaches
// cred only to requests inside scope. Every request outside scope is
// refused with an *OriginError before anything is sent.
//
// When hc is an *http.Client (nil means NewClient with default Options),
// the result is a copy of it whose transport attaches the credential per
// hop and whose CheckRedirect refuses a redirect leaving the scope; its
// cookie jar is dropped, so the only cookie sent is the credential. Any
// other Doer follows redirects its own way: cred is then set on the
// request before it is handed over, and the Doer is trusted not to carry
// it elsewhere.
func Authorize(hc Doer, scope *Scope, cred Credential) Doer {
	if hc == nil {
		hc = NewClient(Options{})
	}
	c, ok := hc.(*http.Client)
	if !ok {
		return &headerDoer{next: hc, scope: scope, cred: cred}
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	prev := c.CheckRedirect
	return &http.Client{
		Transport: &authTransport{base: base, scope: scope, cred: cred},
		Timeout:   c.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if err := scope.CheckRedirect(req, via); err != nil {
				return err
			}
			if prev != nil {
				return prev(req, via)
			}
			return nil
		},
	}
}

// Restrict returns a client that refuses requests and redirects outside
// scope; it attaches nothing. Use it for clients that carry credentials in
// the request body (SOAP) or for unauthenticated access to a configured
// server.
func Restrict(hc Doer, scope *Scope) Doer {
	return Authorize(hc, scope, nil)
}

// RestrictClient is Restrict for an *http.Client (nil means NewClient with
// default Options), returning an *http.Client.
func RestrictClient(hc *http.Client, scope *Scope) *http.Client {
	if hc == nil {
		hc = NewClient(Options{})
	}
	return Authorize(hc, scope, nil).(*http.Client)
}

type authTransport struct {
	base  http.RoundTripper
	scope *Scope
	cred  Credential
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.scope.Check(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if t.cred == nil {
		return t.base.RoundTrip(req)
	}
	// A RoundTripper must not modify the request it is given.
	r := req.Clone(req.Context())
	if err := t.cred(r); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(r)
}

type headerDoer struct {
	next  Doer
	scope *Scope
	cred  Credential
}

func (d *headerDoer) Do(req *http.Request) (*http.Response, error) {
	err := d.scope.Check(req.URL)
	if err == nil && d.cred != nil {
		err = d.cred(req)
	}
	if err != nil {
		// Like http.Client.Do: the body is closed even on errors.
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return d.next.Do(req)
}
