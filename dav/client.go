package dav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/emersion/go-webdav"

	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// XML namespaces.
const (
	nsDAV     = "DAV:"
	nsCalDAV  = "urn:ietf:params:xml:ns:caldav"
	nsCardDAV = "urn:ietf:params:xml:ns:carddav"
	nsApple   = "http://apple.com/ns/ical/"
)

// maxErrorBody bounds how much of a server's error answer is kept.
const maxErrorBody = 512

// maxConflictBody bounds how much of an error answer is searched for a
// no-uid-conflict href.
const maxConflictBody = 16 << 10

// uidConflictHref returns the DAV:href inside a no-uid-conflict element
// (CalDAV or CardDAV namespace) of an error body, or "".
func uidConflictHref(body []byte) string {
	if !bytes.Contains(body, []byte("no-uid-conflict")) {
		return ""
	}
	d := newXMLReader(bytes.NewReader(body), "", Limits{})
	depth := 0 // > 0 inside no-uid-conflict
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case depth == 0 && t.Name.Local == "no-uid-conflict" && (t.Name.Space == nsCalDAV || t.Name.Space == nsCardDAV):
				depth = 1
			case depth > 0 && t.Name.Space == nsDAV && t.Name.Local == "href":
				h, err := text(d)
				if err != nil {
					return ""
				}
				return strings.TrimSpace(h)
			case depth > 0:
				depth++
			}
		case xml.EndElement:
			if depth > 0 {
				depth--
			}
		}
	}
}

// ConflictHref returns the href an *HTTPError in err names as holding the
// UID being written (see HTTPError.ConflictHref), or "".
func ConflictHref(err error) string {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.ConflictHref
	}
	return ""
}

// HTTPError is a non-success answer from a server. A 408, 429, 500, 502,
// 503 or 504 is retried with backoff; a 401 aborts the copy as an
// authentication failure.
type HTTPError struct {
	// Method and URL are the request's (the URL without credentials).
	Method string
	URL    string
	// Code is the HTTP status code.
	Code int
	// Body is the start of the server's answer, for the report.
	Body string
	// ConflictHref is the href named by a no-uid-conflict precondition in
	// the answer (RFC 4791 5.3.2.1, RFC 6352 6.3.2.1): the UID being
	// written is already held there. Carbonio answers 412 with it.
	ConflictHref string
}

// Error implements error.
func (e *HTTPError) Error() string {
	s := fmt.Sprintf("dav: %s %s: %d %s", e.Method, e.URL, e.Code, http.StatusText(e.Code))
	if b := strings.TrimSpace(e.Body); b != "" {
		s += ": " + b
	}
	return s
}

// StatusCode returns the HTTP status code.
func (e *HTTPError) StatusCode() int { return e.Code }

// Server returns the host:port the answer came from ("" when URL does not
// parse), never a user name or a path: per-server metrics count the
// retries of the error against it.
func (e *HTTPError) Server() string {
	u, err := url.Parse(e.URL)
	if err != nil {
		return ""
	}
	return obs.HostPort(u)
}

// Is makes a 401 match zxerrors.ErrAuth.
func (e *HTTPError) Is(target error) bool {
	return target == zxerrors.ErrAuth && e.Code == http.StatusUnauthorized
}

// IsStatus reports whether err is an *HTTPError with the given code.
func IsStatus(err error, code int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Code == code
}

// Client sends raw WebDAV requests relative to a base URL. It sends nothing
// outside its scope (the base URL's origin plus the trusted origins) and
// reads answers under its Limits. It is safe for concurrent use when its
// HTTPClient is.
type Client struct {
	http   webdav.HTTPClient
	base   *url.URL
	scope  *httpx.Scope
	limits Limits
}

// clientOptions are the optional settings of newClientWith.
type clientOptions struct {
	// TrustedOrigins lists origins besides the base URL's that hrefs and
	// redirects may point to ("https://dav2.example.com:8443", or a bare
	// host taking the base URL's scheme). Anything else is refused.
	TrustedOrigins []string
	// AllowPlaintext permits plain-http hrefs from an https base.
	AllowPlaintext bool
	// Limits bound the answers read.
	Limits Limits
}

// newClient returns a client for the server at base with default options.
// hc nil means http.DefaultClient.
func newClient(hc webdav.HTTPClient, base string) (*Client, error) {
	return newClientWith(hc, base, clientOptions{})
}

// newClientWith returns a client for the server at base. hc nil means
// http.DefaultClient. hc carries the credentials (see EndpointClient); the
// client refuses, before anything is sent, every href outside base's
// origin and o.TrustedOrigins.
func newClientWith(hc webdav.HTTPClient, base string, o clientOptions) (*Client, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("dav: parse URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("dav: URL %q: scheme must be http or https", base)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	u.User = nil
	scope, err := httpx.NewScope(u.String(), o.TrustedOrigins, o.AllowPlaintext)
	if err != nil {
		return nil, fmt.Errorf("dav: %w", err)
	}
	return &Client{http: hc, base: u, scope: scope, limits: o.Limits}, nil
}

// Limits returns the client's limits.
func (c *Client) Limits() Limits { return c.limits }

// Base returns the base URL.
func (c *Client) Base() *url.URL { u := *c.base; return &u }

// resolveHref turns an href (absolute path or URL) into a full URL.
func (c *Client) resolveHref(href string) *url.URL {
	ref, err := url.Parse(href)
	if err != nil {
		u := *c.base
		u.Path = href
		u.RawPath = ""
		return &u
	}
	return c.base.ResolveReference(ref)
}

// NewRequest builds a request for href.
func (c *Client) newRequest(ctx context.Context, method, href string, body []byte) (*http.Request, error) {
	u := c.resolveHref(href)
	if err := c.scope.Check(u); err != nil {
		return nil, fmt.Errorf("dav: %s %s: %w", method, u.Redacted(), err)
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	// A *bytes.Reader body gets ContentLength and GetBody (for replays)
	// from net/http itself.
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, fmt.Errorf("dav: %s %s: %w", method, href, err)
	}
	return req, nil
}

// Do sends req and returns the response when its status is below 300; any
// other status becomes an *HTTPError and the body is closed.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("dav: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxConflictBody))
		resp.Body.Close()
		he := &HTTPError{Method: req.Method, URL: req.URL.Redacted(), Code: resp.StatusCode, ConflictHref: uidConflictHref(b)}
		if len(b) > maxErrorBody {
			b = b[:maxErrorBody]
		}
		he.Body = string(b)
		return nil, he
	}
	return resp, nil
}

// xmlProp is one property in a multistatus answer.
type xmlProp struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []xmlProp  `xml:",any"`
}

// Child returns the first child named space/local, or nil.
func (p *xmlProp) Child(space, local string) *xmlProp {
	for i := range p.Children {
		if p.Children[i].XMLName.Space == space && p.Children[i].XMLName.Local == local {
			return &p.Children[i]
		}
	}
	return nil
}

// Href returns the text of the first DAV:href child.
func (p *xmlProp) Href() string {
	if h := p.Child(nsDAV, "href"); h != nil {
		return strings.TrimSpace(h.Text)
	}
	return ""
}

// msResponse is one resource of a multistatus answer, with the properties the
// server returned with status 200.
type msResponse struct {
	Href string
	// Status is the response-level status (0 when the response carries
	// propstats instead).
	Status int
	Props  []xmlProp
	// Missing lists properties answered with a non-200 status.
	Missing []xml.Name
}

// Prop returns the property named space/local, or nil.
func (r *msResponse) Prop(space, local string) *xmlProp {
	for i := range r.Props {
		if r.Props[i].XMLName.Space == space && r.Props[i].XMLName.Local == local {
			return &r.Props[i]
		}
	}
	return nil
}

// parseStatus reads "HTTP/1.1 200 OK".
func parseStatus(s string) int {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		return 0
	}
	return n
}

// checkHref returns nil when href may be requested (it is inside the
// client's scope), else an error naming it.
func (c *Client) checkHref(href string) error {
	if err := c.scope.Check(c.resolveHref(href)); err != nil {
		return fmt.Errorf("dav: %w", err)
	}
	return nil
}

// readMultistatus reads the multistatus answer of req under the client's
// limits.
func (c *Client) readMultistatus(req *http.Request, resp *http.Response) ([]msResponse, error) {
	body := newLimitReader(resp.Body, &LimitError{What: "multistatus", URL: req.URL.Redacted(), Limit: c.limits.multistatus(), Field: "MaxMultistatus"})
	rs, err := decodeMultistatus(body, req.URL.Redacted(), c.limits)
	if err != nil && !isLimit(err) {
		return nil, fmt.Errorf("dav: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	return rs, err
}

// decodeMultistatus reads a DAV:multistatus answer under limits l (the byte
// limit is the caller's, on r). It walks the tokens by hand (encoding/xml's
// reflection costs more than the parsing on large multiget answers, and
// its recursion has no depth bound); unknown elements are skipped.
func decodeMultistatus(r io.Reader, url string, l Limits) ([]msResponse, error) {
	d := newXMLReader(r, url, l)
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("dav: decode multistatus: %w", err)
		}
		// Like encoding/xml into an untagged struct: the first element,
		// whatever its name, and nothing after it.
		if _, ok := tok.(xml.StartElement); !ok {
			continue
		}
		var out []msResponse
		if err := decodeResponses(d, &out); err != nil {
			return nil, fmt.Errorf("dav: decode multistatus: %w", err)
		}
		return out, nil
	}
}

// decodeResponses reads the children of DAV:multistatus up to its end.
func decodeResponses(d *xmlReader, out *[]msResponse) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			if t.Name.Space != nsDAV || t.Name.Local != "response" {
				if err := d.Skip(); err != nil {
					return err
				}
				continue
			}
			resp, ok, err := decodeResponse(d)
			if err != nil {
				return err
			}
			if ok {
				*out = append(*out, resp)
			}
		}
	}
}

// decodeResponse reads one DAV:response; ok is false when it has no href.
func decodeResponse(d *xmlReader) (resp msResponse, ok bool, err error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return msResponse{}, false, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			resp.Href = strings.TrimSpace(resp.Href)
			return resp, ok, nil
		case xml.StartElement:
			if t.Name.Space != nsDAV {
				if err := d.Skip(); err != nil {
					return msResponse{}, false, err
				}
				continue
			}
			switch t.Name.Local {
			case "href":
				s, err := text(d)
				if err != nil {
					return msResponse{}, false, err
				}
				if !ok {
					resp.Href, ok = s, true
				}
			case "status":
				s, err := text(d)
				if err != nil {
					return msResponse{}, false, err
				}
				resp.Status = parseStatus(s)
			case "propstat":
				if err := decodePropstat(d, &resp); err != nil {
					return msResponse{}, false, err
				}
			default:
				if err := d.Skip(); err != nil {
					return msResponse{}, false, err
				}
			}
		}
	}
}

// decodePropstat reads one DAV:propstat into resp: its properties go to
// Props when its status is 2xx (or absent), else their names to Missing.
func decodePropstat(d *xmlReader, resp *msResponse) error {
	var props []xmlProp
	code := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			for _, p := range props {
				if code == 0 || (code >= 200 && code < 300) {
					resp.Props = append(resp.Props, p)
				} else {
					resp.Missing = append(resp.Missing, p.XMLName)
				}
			}
			return nil
		case xml.StartElement:
			switch {
			case t.Name.Space == nsDAV && t.Name.Local == "prop":
				for {
					tok, err := d.Token()
					if err != nil {
						return err
					}
					if _, end := tok.(xml.EndElement); end {
						break
					}
					if se, ok := tok.(xml.StartElement); ok {
						p, err := decodeProp(d, se)
						if err != nil {
							return err
						}
						props = append(props, p)
					}
				}
			case t.Name.Space == nsDAV && t.Name.Local == "status":
				s, err := text(d)
				if err != nil {
					return err
				}
				code = parseStatus(s)
			default:
				if err := d.Skip(); err != nil {
					return err
				}
			}
		}
	}
}

// decodeProp reads the element started by se: its attributes, its own
// character data and its child elements.
func decodeProp(d *xmlReader, se xml.StartElement) (xmlProp, error) {
	p := xmlProp{XMLName: se.Name}
	if len(se.Attr) > 0 {
		p.Attrs = append([]xml.Attr(nil), se.Attr...)
	}
	var buf []byte
	for {
		tok, err := d.Token()
		if err != nil {
			return xmlProp{}, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			p.Text = string(buf)
			return p, nil
		case xml.CharData:
			buf = append(buf, t...)
		case xml.StartElement:
			c, err := decodeProp(d, t)
			if err != nil {
				return xmlProp{}, err
			}
			p.Children = append(p.Children, c)
		}
	}
}

// text reads the character data of the current element up to its end,
// skipping child elements.
func text(d *xmlReader) (string, error) {
	var buf []byte
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return string(buf), nil
		case xml.CharData:
			buf = append(buf, t...)
		case xml.StartElement:
			if err := d.Skip(); err != nil {
				return "", err
			}
		}
	}
}

// propfind asks for props on href with the given depth ("0" or "1").
func (c *Client) propfind(ctx context.Context, href, depth string, props ...xml.Name) ([]msResponse, error) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>`)
	for _, p := range props {
		fmt.Fprintf(&b, `<x:%s xmlns:x="%s"/>`, p.Local, p.Space)
	}
	b.WriteString(`</D:prop></D:propfind>`)
	req, err := c.newRequest(ctx, "PROPFIND", href, []byte(b.String()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Depth", depth)
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return c.readMultistatus(req, resp)
}

// samePath reports whether two hrefs name the same path (decoded, ignoring
// a trailing slash and scheme/host).
func samePath(a, b string) bool { return CleanPath(a) == CleanPath(b) }

// CleanPath returns the decoded path of href without a trailing slash.
func CleanPath(href string) string {
	p := href
	if u, err := url.Parse(href); err == nil {
		p = u.Path
	}
	p = path.Clean("/" + p)
	return p
}

// DirHref returns href with exactly one trailing slash.
func DirHref(href string) string { return strings.TrimRight(href, "/") + "/" }

// EscapeSegment escapes one path segment.
func EscapeSegment(s string) string { return url.PathEscape(s) }

// parseETag removes quotes and a weak marker from an ETag header or property;
// it never fails.
func parseETag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s
}

// quoteETag formats an ETag for If-Match.
func quoteETag(etag string) string { return `"` + etag + `"` }
