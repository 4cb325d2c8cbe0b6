package dav

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"

	"github.com/zxmigrate/zxmigrate/retry"
)

// Protocol names the parts of CalDAV or CardDAV the raw calls need.
type Protocol struct {
	// Name is "calendar" or "address book", for messages.
	Name string
	// NS is the protocol's XML namespace.
	NS string
	// HomeSet is the home-set property (calendar-home-set, addressbook-home-set).
	HomeSet string
	// ResourceType is the collection's resourcetype (calendar, addressbook).
	ResourceType string
	// Multiget is the REPORT element (calendar-multiget, addressbook-multiget).
	Multiget string
	// Data is the data property (calendar-data, address-data).
	Data string
	// Description is the description property.
	Description string
	// ContentType is sent with PUT.
	ContentType string
	// Ext is the resource name extension (".ics", ".vcf").
	Ext string
	// WellKnown is the well-known path (/.well-known/caldav).
	WellKnown string
}

// CalDAV and CardDAV protocols.
var (
	CalDAV = &Protocol{Name: "calendar", NS: nsCalDAV, HomeSet: "calendar-home-set", ResourceType: "calendar",
		Multiget: "calendar-multiget", Data: "calendar-data", Description: "calendar-description",
		ContentType: "text/calendar; charset=utf-8", Ext: ".ics", WellKnown: "/.well-known/caldav"}
	CardDAV = &Protocol{Name: "address book", NS: nsCardDAV, HomeSet: "addressbook-home-set", ResourceType: "addressbook",
		Multiget: "addressbook-multiget", Data: "address-data", Description: "addressbook-description",
		ContentType: "text/vcard; charset=utf-8", Ext: ".vcf", WellKnown: "/.well-known/carddav"}
)

// Ref is an object in a collection: its href and ETag (unquoted; may be
// empty when the server gives none).
type Ref struct {
	// Href is the object's path on its server.
	Href string
	// ETag is the object's entity tag, without quotes or weak marker.
	ETag string
}

// Collection is a calendar or address book.
type Collection struct {
	// Href is the collection's path on its server, with a trailing slash.
	Href string
	// Name is the collection's name at the destination: the last path
	// segment, or the flattened path of a nested collection.
	Name string
	// DisplayName, Description and Color are the collection's properties
	// (Color as calendar-color, e.g. "#FF8800FF").
	DisplayName string
	Description string
	Color       string
	// Components lists the iCalendar components a calendar accepts; empty
	// means unknown (accept all) and is always empty for address books.
	Components []string
	// Nested is the original nested path when Name was flattened.
	Nested string
}

// Accepts reports whether the collection takes a component (always true
// when its components are unknown or comp is empty).
func (c Collection) Accepts(comp string) bool {
	if len(c.Components) == 0 || comp == "" {
		return true
	}
	for _, x := range c.Components {
		if strings.EqualFold(x, comp) {
			return true
		}
	}
	return false
}

// List returns the objects of a collection with their ETags (PROPFIND
// depth 1), without the collection itself and sub-collections.
func (c *Client) List(ctx context.Context, coll string) ([]Ref, error) {
	refs, _, err := c.listAll(ctx, coll)
	return refs, err
}

// listAll is List that also returns the hrefs of sub-collections.
func (c *Client) listAll(ctx context.Context, coll string) (refs []Ref, subs []string, err error) {
	rs, err := c.propfind(ctx, coll, "1", xml.Name{Space: nsDAV, Local: "getetag"}, xml.Name{Space: nsDAV, Local: "resourcetype"})
	if err != nil {
		return nil, nil, err
	}
	var out []Ref
	for _, r := range rs {
		if samePath(r.Href, coll) {
			continue
		}
		if rt := r.Prop(nsDAV, "resourcetype"); rt != nil && rt.Child(nsDAV, "collection") != nil {
			subs = append(subs, DirHref(r.Href))
			continue
		}
		if r.Status == http.StatusNotFound {
			continue
		}
		ref := Ref{Href: r.Href}
		if e := r.Prop(nsDAV, "getetag"); e != nil {
			ref.ETag = parseETag(e.Text)
		}
		out = append(out, ref)
	}
	return out, subs, nil
}

// Get reads one object raw and returns its body and ETag.
func (c *Client) Get(ctx context.Context, href string) ([]byte, string, error) {
	req, err := c.newRequest(ctx, http.MethodGet, href, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := readAll(resp.Body, resp.ContentLength, &LimitError{What: "object", URL: req.URL.Redacted(), Limit: c.limits.object(), Field: "MaxObject"})
	if err != nil {
		if isLimit(err) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("dav: GET %s: %w", href, err)
	}
	return b, parseETag(resp.Header.Get("ETag")), nil
}

// ETag asks for one object's ETag (PROPFIND depth 0).
func (c *Client) ETag(ctx context.Context, href string) (string, error) {
	rs, err := c.propfind(ctx, href, "0", xml.Name{Space: nsDAV, Local: "getetag"})
	if err != nil {
		return "", err
	}
	for _, r := range rs {
		if e := r.Prop(nsDAV, "getetag"); e != nil {
			return parseETag(e.Text), nil
		}
	}
	return "", nil
}

// ReadFunc receives one object read by MultiGet; err names why it could not
// be read.
type ReadFunc func(ref Ref, data []byte, err error)

// MultiGet reads the objects at hrefs with one multiget REPORT and falls
// back to a GET per object that the REPORT did not return (or for all of
// them when the REPORT fails). fn is called once per href, in no particular
// order, from the calling goroutine.
func (c *Client) MultiGet(ctx context.Context, p *Protocol, coll string, refs []Ref, fn ReadFunc) error {
	// An href outside the client's scope fails as that object's error;
	// nothing is sent for it, not even to the listing server.
	inScope := refs[:0:0]
	for _, r := range refs {
		if err := c.checkHref(r.Href); err != nil {
			fn(r, nil, err)
			continue
		}
		inScope = append(inScope, r)
	}
	refs = inScope
	if len(refs) == 0 {
		return nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="utf-8"?><X:%s xmlns:D="DAV:" xmlns:X="%s"><D:prop><D:getetag/><X:%s/></D:prop>`, p.Multiget, p.NS, p.Data)
	for _, r := range refs {
		fmt.Fprintf(&b, "<D:href>%s</D:href>", html.EscapeString(r.Href))
	}
	fmt.Fprintf(&b, "</X:%s>", p.Multiget)
	got := map[string]bool{}
	req, err := c.newRequest(ctx, "REPORT", coll, b.Bytes())
	if err != nil {
		return err
	}
	req.Header.Set("Depth", "1")
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	resp, err := c.do(req)
	if err == nil {
		// An answer over Limits.MaxMultistatus falls back to a GET
		// per object like any other failed REPORT.
		rs, derr := c.readMultistatus(req, resp)
		resp.Body.Close()
		if derr == nil {
			byPath := map[string]Ref{}
			for _, r := range refs {
				byPath[CleanPath(r.Href)] = r
			}
			for _, r := range rs {
				ref, ok := byPath[CleanPath(r.Href)]
				if !ok || got[CleanPath(r.Href)] {
					continue
				}
				d := r.Prop(p.NS, p.Data)
				if d == nil || strings.TrimSpace(d.Text) == "" {
					continue // fall back to GET
				}
				if e := r.Prop(nsDAV, "getetag"); e != nil {
					ref.ETag = parseETag(e.Text)
				}
				got[CleanPath(r.Href)] = true
				fn(ref, []byte(d.Text), nil)
			}
		}
	} else if ctx.Err() != nil {
		return ctx.Err()
	} else if IsStatus(err, http.StatusUnauthorized) {
		return err
	}
	for _, r := range refs {
		if got[CleanPath(r.Href)] {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var data []byte
		var etag string
		err := retry.Do(ctx, retry.Policy{Attempts: 3}, func(int) error {
			var err error
			data, etag, err = c.Get(ctx, r.Href)
			return err
		}, nil)
		if err == nil && etag != "" {
			r.ETag = etag
		}
		if err != nil && IsStatus(err, http.StatusUnauthorized) {
			return err
		}
		fn(r, data, err)
	}
	return nil
}

// Cond is the precondition of a PUT.
type Cond struct {
	// Create sends If-None-Match: * (fail with 412 if the href exists).
	Create bool
	// IfMatch sends If-Match with this ETag (fail with 412 if it changed).
	IfMatch string
}

// Put writes data at href under cond and returns the new ETag ("" when the
// server sends none). It never writes without a precondition.
func (c *Client) Put(ctx context.Context, href, contentType string, data []byte, cond Cond) (string, error) {
	if !cond.Create && cond.IfMatch == "" {
		return "", fmt.Errorf("dav: PUT %s: refusing an unconditional overwrite", href)
	}
	req, err := c.newRequest(ctx, http.MethodPut, href, data)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", contentType)
	if cond.Create {
		req.Header.Set("If-None-Match", "*")
	} else {
		req.Header.Set("If-Match", quoteETag(cond.IfMatch))
	}
	h, err := c.exec(req)
	if err != nil {
		return "", err
	}
	return parseETag(h.Get("ETag")), nil
}

// exec sends req, reads its response body to the end (so that the
// connection can be reused) and returns the response headers.
func (c *Client) exec(req *http.Request) (http.Header, error) {
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header, nil
}

// Delete removes the object at href when its ETag is still etag (If-Match).
// A changed object fails with an *HTTPError of code 412, a missing one with
// 404 or 410. It never deletes without a precondition.
func (c *Client) Delete(ctx context.Context, href, etag string) error {
	if etag == "" {
		return fmt.Errorf("dav: DELETE %s: refusing an unconditional delete", href)
	}
	req, err := c.newRequest(ctx, http.MethodDelete, href, nil)
	if err != nil {
		return err
	}
	req.Header.Set("If-Match", quoteETag(etag))
	_, err = c.exec(req)
	return err
}

// CollectionProps are the properties set when creating a collection.
type CollectionProps struct {
	// DisplayName, Description and Color are set as the collection's
	// displayname, description and calendar-color (calendars only).
	DisplayName string
	Description string
	Color       string
	// Components is the supported-calendar-component-set (calendars only).
	Components []string
}

func (cp CollectionProps) xml(p *Protocol) string {
	var b strings.Builder
	if cp.DisplayName != "" {
		fmt.Fprintf(&b, "<D:displayname>%s</D:displayname>", html.EscapeString(cp.DisplayName))
	}
	if cp.Description != "" {
		fmt.Fprintf(&b, "<X:%s>%s</X:%s>", p.Description, html.EscapeString(cp.Description), p.Description)
	}
	if cp.Color != "" && p == CalDAV {
		fmt.Fprintf(&b, `<A:calendar-color xmlns:A="%s">%s</A:calendar-color>`, nsApple, html.EscapeString(cp.Color))
	}
	if len(cp.Components) > 0 && p == CalDAV {
		b.WriteString("<X:supported-calendar-component-set>")
		for _, c := range cp.Components {
			fmt.Fprintf(&b, `<X:comp name="%s"/>`, html.EscapeString(c))
		}
		b.WriteString("</X:supported-calendar-component-set>")
	}
	return b.String()
}

// MakeCollection creates a calendar (MKCALENDAR, falling back to extended
// MKCOL when the server does not know MKCALENDAR) or an address book
// (extended MKCOL, RFC 5689) at href with props.
func (c *Client) MakeCollection(ctx context.Context, p *Protocol, href string, props CollectionProps) error {
	href = DirHref(href)
	if p == CalDAV {
		body := fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?><X:mkcalendar xmlns:D="DAV:" xmlns:X="%s"><D:set><D:prop>%s</D:prop></D:set></X:mkcalendar>`, p.NS, props.xml(p))
		err := c.send(ctx, "MKCALENDAR", href, body)
		if err == nil || !(IsStatus(err, http.StatusMethodNotAllowed) || IsStatus(err, http.StatusNotImplemented) || IsStatus(err, http.StatusBadRequest)) {
			return err
		}
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" xmlns:X="%s"><D:set><D:prop><D:resourcetype><D:collection/><X:%s/></D:resourcetype>%s</D:prop></D:set></D:mkcol>`, p.NS, p.ResourceType, props.xml(p))
	return c.send(ctx, "MKCOL", href, body)
}

func (c *Client) send(ctx context.Context, method, href, body string) error {
	req, err := c.newRequest(ctx, method, href, []byte(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	_, err = c.exec(req)
	return err
}

// Discover finds the collections of protocol p starting at the client's
// base URL, which may be a server, a principal, a home set or a collection:
// a collection yields itself; otherwise current-user-principal (trying the
// well-known URL when the base has none), then the home set, then its
// children of the right resourcetype.
//
// It returns the home set (where new collections go; the parent of a
// collection URL) and the collections.
func (c *Client) Discover(ctx context.Context, p *Protocol) (home string, cols []Collection, err error) {
	base := c.base.Path
	props := []xml.Name{{Space: nsDAV, Local: "resourcetype"}, {Space: nsDAV, Local: "current-user-principal"}, {Space: p.NS, Local: p.HomeSet}}
	rs, err := c.propfind(ctx, base, "0", props...)
	if err != nil && !IsStatus(err, http.StatusNotFound) && !IsStatus(err, http.StatusMethodNotAllowed) && !IsStatus(err, http.StatusForbidden) {
		return "", nil, fmt.Errorf("dav: discover %s: %w", p.Name, err)
	}
	var self *msResponse
	if len(rs) > 0 {
		self = &rs[0]
	}
	if self != nil {
		if rt := self.Prop(nsDAV, "resourcetype"); rt != nil && rt.Child(p.NS, p.ResourceType) != nil {
			cs, err := c.collections(ctx, p, base, "0")
			if err != nil {
				return "", nil, err
			}
			parent := CleanPath(base)
			if i := strings.LastIndex(parent, "/"); i >= 0 {
				parent = parent[:i+1]
			}
			return parent, cs, nil
		}
	}
	if self != nil {
		if h := self.Prop(p.NS, p.HomeSet); h != nil {
			home = h.Href()
		}
	}
	if home == "" {
		principal := ""
		if self != nil {
			if cp := self.Prop(nsDAV, "current-user-principal"); cp != nil {
				principal = cp.Href()
			}
		}
		if principal == "" {
			principal, err = c.wellKnownPrincipal(ctx, p)
			if err != nil {
				return "", nil, err
			}
		}
		rs, err := c.propfind(ctx, principal, "0", xml.Name{Space: p.NS, Local: p.HomeSet}, xml.Name{Space: nsDAV, Local: "current-user-principal"})
		if err != nil {
			return "", nil, fmt.Errorf("dav: discover %s home set: %w", p.Name, err)
		}
		for _, r := range rs {
			if h := r.Prop(p.NS, p.HomeSet); h != nil && h.Href() != "" {
				home = h.Href()
			}
		}
		if home == "" {
			return "", nil, fmt.Errorf("dav: discover: %s has no %s", principal, p.HomeSet)
		}
	}
	cols, err = c.collections(ctx, p, home, "1")
	return DirHref(home), cols, err
}

func (c *Client) wellKnownPrincipal(ctx context.Context, p *Protocol) (string, error) {
	req, err := c.newRequest(ctx, "PROPFIND", p.WellKnown, []byte(`<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:current-user-principal/></D:prop></D:propfind>`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Depth", "0")
	req.Header.Set("Content-Type", "application/xml; charset=utf-8")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("dav: discover %s: %w", p.WellKnown, err)
	}
	defer resp.Body.Close()
	target := p.WellKnown
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "":
		target = resp.Header.Get("Location")
	case resp.Request != nil && resp.Request.URL.Path != p.WellKnown:
		// The client followed a redirect (and may have turned PROPFIND into GET).
		target = resp.Request.URL.Path
	case resp.StatusCode == http.StatusMultiStatus:
		rs, err := c.readMultistatus(req, resp)
		if err == nil {
			for _, r := range rs {
				if cp := r.Prop(nsDAV, "current-user-principal"); cp != nil && cp.Href() != "" {
					return cp.Href(), nil
				}
			}
		}
	case resp.StatusCode == http.StatusUnauthorized:
		return "", &HTTPError{Method: "PROPFIND", URL: p.WellKnown, Code: resp.StatusCode}
	}
	if target == p.WellKnown {
		return "", fmt.Errorf("dav: discover: no current-user-principal at %s or %s", c.base.Redacted(), p.WellKnown)
	}
	rs, err := c.propfind(ctx, target, "0", xml.Name{Space: nsDAV, Local: "current-user-principal"})
	if err != nil {
		return "", fmt.Errorf("dav: discover principal at %s: %w", target, err)
	}
	for _, r := range rs {
		if cp := r.Prop(nsDAV, "current-user-principal"); cp != nil && cp.Href() != "" {
			return cp.Href(), nil
		}
	}
	return target, nil
}

// collections lists the collections of protocol p at href (depth "1": the
// children of a home set; "0": href itself).
func (c *Client) collections(ctx context.Context, p *Protocol, href, depth string) ([]Collection, error) {
	rs, err := c.propfind(ctx, href, depth,
		xml.Name{Space: nsDAV, Local: "resourcetype"},
		xml.Name{Space: nsDAV, Local: "displayname"},
		xml.Name{Space: p.NS, Local: p.Description},
		xml.Name{Space: nsApple, Local: "calendar-color"},
		xml.Name{Space: nsCalDAV, Local: "supported-calendar-component-set"})
	if err != nil {
		return nil, fmt.Errorf("dav: list %ss at %s: %w", p.Name, href, err)
	}
	var out []Collection
	for _, r := range rs {
		rt := r.Prop(nsDAV, "resourcetype")
		if rt == nil || rt.Child(p.NS, p.ResourceType) == nil {
			continue
		}
		col := Collection{Href: DirHref(r.Href)}
		col.Name = lastSegment(col.Href)
		if d := r.Prop(nsDAV, "displayname"); d != nil {
			col.DisplayName = strings.TrimSpace(d.Text)
		}
		if d := r.Prop(p.NS, p.Description); d != nil {
			col.Description = d.Text
		}
		if d := r.Prop(nsApple, "calendar-color"); d != nil {
			col.Color = strings.TrimSpace(d.Text)
		}
		if d := r.Prop(nsCalDAV, "supported-calendar-component-set"); d != nil {
			for _, ch := range d.Children {
				for _, a := range ch.Attrs {
					if a.Name.Local == "name" {
						col.Components = append(col.Components, strings.ToUpper(a.Value))
					}
				}
			}
		}
		out = append(out, col)
	}
	return out, nil
}

func lastSegment(href string) string {
	p := CleanPath(href)
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}
