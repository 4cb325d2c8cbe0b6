package testserver

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
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
)

// davParallel is how many requests SeedDAV and SnapshotDAV keep in flight.
const davParallel = 4

// davClient sends requests to one DAV server as one user.
type davClient struct {
	hc         *http.Client
	user, pass string
}

func newDAVClient(user, password string) *davClient {
	return &davClient{
		hc:   &http.Client{Timeout: 60 * time.Second},
		user: user,
		pass: password,
	}
}

// HTTPError is a DAV request answered with an unexpected status.
type HTTPError struct {
	Method, URL string
	Code        int
	Body        string // the start of the response body
}

// Error names the request, the status and the start of the body.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("testserver: %s %s: %d %s: %s", e.Method, e.URL, e.Code, http.StatusText(e.Code), e.Body)
}

// StatusCode returns the HTTP status.
func (e *HTTPError) StatusCode() int { return e.Code }

// do sends one request and returns the body when the status is in ok.
func (c *davClient) do(ctx context.Context, method, u string, hdr map[string]string, body []byte, ok ...int) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("testserver: %s %s: %w", method, u, err)
	}
	req.SetBasicAuth(c.user, c.pass)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("testserver: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("testserver: %s %s: read body: %w", method, u, err)
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return b, resp.Header, nil
		}
	}
	msg := string(b)
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return b, resp.Header, &HTTPError{Method: method, URL: u, Code: resp.StatusCode, Body: strings.TrimSpace(msg)}
}

// collectionURL joins a home URL and a collection name into a collection
// URL with a trailing slash.
func collectionURL(home, name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/") || name == "." || name == ".." {
		return "", fmt.Errorf("testserver: collection name %q: want one path segment", name)
	}
	return strings.TrimSuffix(home, "/") + "/" + url.PathEscape(name) + "/", nil
}

func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// SeedDAV creates the calendars (MKCALENDAR with display name,
// description, color and supported components) and address books
// (extended MKCOL) under home, the calendar and address-book home of user
// (both the same URL, as on Radicale; with Xandikos use (*Xandikos).Seed),
// and PUTs every object with If-None-Match: *, a few in parallel. A
// collection that exists already is used as it is. The collection
// properties are also sent with PROPPATCH, as some servers ignore them at
// creation; what a server refuses to keep is not an error (SnapshotDAV shows
// it).
//
// Objects marked Broken are sent too, but a strict server refusing them is
// not an error; any other failure is, and the returned error joins one error
// per failed item, naming it.
func SeedDAV(ctx context.Context, home, user, password string, calendars, addressBooks []corpus.Collection) error {
	c := newDAVClient(user, password)
	var errs []error
	type put struct {
		url, ctype string
		o          corpus.Object
	}
	var puts []put
	for _, set := range []struct {
		cols  []corpus.Collection
		cal   bool
		ctype string
	}{{calendars, true, "text/calendar; charset=utf-8"}, {addressBooks, false, "text/vcard; charset=utf-8"}} {
		for _, col := range set.cols {
			cu, err := collectionURL(home, col.Name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := c.makeCollection(ctx, cu, col, set.cal); err != nil {
				errs = append(errs, err)
				continue
			}
			for _, o := range col.Objects {
				if o.Name == "" || strings.Contains(o.Name, "/") {
					errs = append(errs, fmt.Errorf("testserver: collection %q: object %q: bad resource name %q", col.Name, o.UID, o.Name))
					continue
				}
				puts = append(puts, put{cu + url.PathEscape(o.Name), set.ctype, o})
			}
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(davParallel)
	for _, p := range puts {
		g.Go(func() error {
			_, _, err := c.do(gctx, http.MethodPut, p.url, map[string]string{"Content-Type": p.ctype, "If-None-Match": "*"}, p.o.Data,
				http.StatusCreated, http.StatusNoContent, http.StatusOK)
			var he *HTTPError
			if err != nil && p.o.Broken && errors.As(err, &he) {
				err = nil // a strict server refusing a broken object is right
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("testserver: put object %q: %w", p.o.UID, err))
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("testserver: seed DAV: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// makeCollection creates col at u, or sets its properties when it exists.
func (c *davClient) makeCollection(ctx context.Context, u string, col corpus.Collection, cal bool) error {
	var props strings.Builder
	if col.DisplayName != "" {
		fmt.Fprintf(&props, "<D:displayname>%s</D:displayname>", xmlText(col.DisplayName))
	}
	if cal {
		if col.Description != "" {
			fmt.Fprintf(&props, "<C:calendar-description>%s</C:calendar-description>", xmlText(col.Description))
		}
		if col.Color != "" {
			fmt.Fprintf(&props, "<A:calendar-color>%s</A:calendar-color>", xmlText(col.Color))
		}
	} else if col.Description != "" {
		fmt.Fprintf(&props, "<CR:addressbook-description>%s</CR:addressbook-description>", xmlText(col.Description))
	}
	var comps strings.Builder
	if cal && len(col.Components) > 0 {
		comps.WriteString("<C:supported-calendar-component-set>")
		for _, comp := range col.Components {
			fmt.Fprintf(&comps, `<C:comp name="%s"/>`, xmlText(comp))
		}
		comps.WriteString("</C:supported-calendar-component-set>")
	}
	const ns = `xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav" xmlns:A="http://apple.com/ns/ical/"`
	var method, body string
	if cal {
		method = "MKCALENDAR"
		body = `<?xml version="1.0" encoding="utf-8"?><C:mkcalendar ` + ns + `><D:set><D:prop>` + props.String() + comps.String() + `</D:prop></D:set></C:mkcalendar>`
	} else {
		method = "MKCOL"
		body = `<?xml version="1.0" encoding="utf-8"?><D:mkcol ` + ns + `><D:set><D:prop><D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>` + props.String() + `</D:prop></D:set></D:mkcol>`
	}
	hdr := map[string]string{"Content-Type": "application/xml; charset=utf-8"}
	_, _, err := c.do(ctx, method, u, hdr, []byte(body), http.StatusCreated, http.StatusOK)
	if err != nil {
		// Servers answer an existing collection with 405, 409, or
		// (Xandikos) 207 holding 403 resource-must-be-null: look whether
		// it is there.
		if _, _, perr := c.do(ctx, "PROPFIND", u, map[string]string{"Depth": "0"}, nil, http.StatusMultiStatus); perr != nil {
			return fmt.Errorf("testserver: create collection %q: %w", col.Name, err)
		}
	}
	// Set the properties again: some servers ignore some of them at
	// creation (Xandikos 0.2.8 keeps only the display name) but take them
	// with PROPPATCH. Best effort: what the server keeps is what
	// SnapshotDAV will show.
	if props.Len() > 0 {
		body = `<?xml version="1.0" encoding="utf-8"?><D:propertyupdate ` + ns + `><D:set><D:prop>` + props.String() + `</D:prop></D:set></D:propertyupdate>`
		c.do(ctx, "PROPPATCH", u, hdr, []byte(body), http.StatusMultiStatus, http.StatusOK)
	}
	return nil
}

// multistatus is the subset of a PROPFIND answer SnapshotDAV reads.
type multistatus struct {
	Responses []struct {
		Href     string `xml:"DAV: href"`
		Propstat []struct {
			Status string `xml:"DAV: status"`
			Prop   struct {
				ResourceType struct {
					Collection  *struct{} `xml:"DAV: collection"`
					Calendar    *struct{} `xml:"urn:ietf:params:xml:ns:caldav calendar"`
					AddressBook *struct{} `xml:"urn:ietf:params:xml:ns:carddav addressbook"`
				} `xml:"DAV: resourcetype"`
				DisplayName string `xml:"DAV: displayname"`
				CalDesc     string `xml:"urn:ietf:params:xml:ns:caldav calendar-description"`
				BookDesc    string `xml:"urn:ietf:params:xml:ns:carddav addressbook-description"`
				Color       string `xml:"http://apple.com/ns/ical/ calendar-color"`
				Comps       struct {
					Comp []struct {
						Name string `xml:"name,attr"`
					} `xml:"urn:ietf:params:xml:ns:caldav comp"`
				} `xml:"urn:ietf:params:xml:ns:caldav supported-calendar-component-set"`
			} `xml:"DAV: prop"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
}

const propfindCollections = `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav" xmlns:A="http://apple.com/ns/ical/">
<D:prop><D:resourcetype/><D:displayname/><C:calendar-description/><CR:addressbook-description/><A:calendar-color/><C:supported-calendar-component-set/></D:prop>
</D:propfind>`

const propfindMembers = `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getetag/></D:prop></D:propfind>`

// propfind runs a Depth 1 PROPFIND on u.
func (c *davClient) propfind(ctx context.Context, u, body string) (*url.URL, *multistatus, error) {
	base, err := url.Parse(u)
	if err != nil {
		return nil, nil, fmt.Errorf("testserver: %q: %w", u, err)
	}
	b, _, err := c.do(ctx, "PROPFIND", u, map[string]string{"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}, []byte(body), http.StatusMultiStatus)
	if err != nil {
		return nil, nil, err
	}
	var ms multistatus
	if err := xml.Unmarshal(b, &ms); err != nil {
		return nil, nil, fmt.Errorf("testserver: PROPFIND %s: parse: %w", u, err)
	}
	return base, &ms, nil
}

// samePath compares URL paths ignoring a trailing slash and escaping.
func samePath(a, b string) bool {
	ua, err1 := url.PathUnescape(a)
	ub, err2 := url.PathUnescape(b)
	if err1 != nil || err2 != nil {
		ua, ub = a, b
	}
	return strings.TrimSuffix(ua, "/") == strings.TrimSuffix(ub, "/")
}

// SnapshotDAV reads every calendar and address book directly under home:
// the collection properties (display name, description, color, supported
// components) and every object, keyed by the UID parsed from its data, as
// the server returns it on GET. Collections and objects are sorted by name.
// Collection.Name and Object.Name are the unescaped last path segments.
func SnapshotDAV(ctx context.Context, home, user, password string) (calendars, addressBooks []corpus.Collection, err error) {
	c := newDAVClient(user, password)
	base, ms, err := c.propfind(ctx, home, propfindCollections)
	if err != nil {
		return nil, nil, err
	}
	type coll struct {
		url string
		cal bool
		col corpus.Collection
	}
	var colls []coll
	for _, r := range ms.Responses {
		ref, err := base.Parse(r.Href)
		if err != nil {
			return nil, nil, fmt.Errorf("testserver: PROPFIND %s: bad href %q: %w", home, r.Href, err)
		}
		if samePath(ref.Path, base.Path) {
			continue
		}
		var cl coll
		isCal, isBook := false, false
		for _, ps := range r.Propstat {
			if !strings.Contains(ps.Status, " 200") {
				continue
			}
			p := ps.Prop
			isCal = isCal || p.ResourceType.Calendar != nil
			isBook = isBook || p.ResourceType.AddressBook != nil
			if p.DisplayName != "" {
				cl.col.DisplayName = p.DisplayName
			}
			if p.CalDesc != "" {
				cl.col.Description = p.CalDesc
			}
			if p.BookDesc != "" {
				cl.col.Description = p.BookDesc
			}
			if p.Color != "" {
				cl.col.Color = p.Color
			}
			for _, comp := range p.Comps.Comp {
				cl.col.Components = append(cl.col.Components, comp.Name)
			}
		}
		if !isCal && !isBook {
			continue
		}
		cl.cal = isCal
		cl.url = ref.String()
		if !strings.HasSuffix(cl.url, "/") {
			cl.url += "/"
		}
		cl.col.Name, _ = url.PathUnescape(path.Base(ref.Path))
		if !isCal {
			cl.col.Components = nil
		}
		sort.Strings(cl.col.Components)
		colls = append(colls, cl)
	}
	for i := range colls {
		objs, err := c.snapshotCollection(ctx, colls[i].url, colls[i].cal)
		if err != nil {
			return nil, nil, err
		}
		colls[i].col.Objects = objs
	}
	sort.Slice(colls, func(i, j int) bool { return colls[i].col.Name < colls[j].col.Name })
	for _, cl := range colls {
		if cl.cal {
			calendars = append(calendars, cl.col)
		} else {
			addressBooks = append(addressBooks, cl.col)
		}
	}
	return calendars, addressBooks, nil
}

// snapshotCollection lists the members of u and GETs each.
func (c *davClient) snapshotCollection(ctx context.Context, u string, cal bool) ([]corpus.Object, error) {
	base, ms, err := c.propfind(ctx, u, propfindMembers)
	if err != nil {
		return nil, err
	}
	var urls []*url.URL
	for _, r := range ms.Responses {
		ref, err := base.Parse(r.Href)
		if err != nil {
			return nil, fmt.Errorf("testserver: PROPFIND %s: bad href %q: %w", u, r.Href, err)
		}
		if samePath(ref.Path, base.Path) {
			continue
		}
		isColl := false
		for _, ps := range r.Propstat {
			isColl = isColl || ps.Prop.ResourceType.Collection != nil
		}
		if !isColl {
			urls = append(urls, ref)
		}
	}
	objs := make([]corpus.Object, len(urls))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(davParallel)
	for i, ref := range urls {
		g.Go(func() error {
			b, _, err := c.do(gctx, http.MethodGet, ref.String(), nil, nil, http.StatusOK)
			if err != nil {
				return err
			}
			name, _ := url.PathUnescape(path.Base(ref.Path))
			objs[i] = corpus.Object{UID: parseUID(b, cal), Name: name, Data: b}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Name < objs[j].Name })
	return objs, nil
}

// parseUID returns the UID of a calendar object (of its first VEVENT,
// VTODO or VJOURNAL, never of a VALARM) or of a vCard; "" when there is
// none. It reads raw lines, so it works on malformed data too.
func parseUID(data []byte, cal bool) string {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	text = strings.ReplaceAll(text, "\n ", "")
	text = strings.ReplaceAll(text, "\n\t", "")
	var stack []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		prop := strings.ToUpper(name)
		if i := strings.IndexByte(prop, ';'); i >= 0 {
			prop = prop[:i]
		}
		if j := strings.LastIndexByte(prop, '.'); j >= 0 { // vCard group
			prop = prop[j+1:]
		}
		switch prop {
		case "BEGIN":
			stack = append(stack, strings.ToUpper(strings.TrimSpace(value)))
		case "END":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case "UID":
			if len(stack) == 0 {
				continue
			}
			top := stack[len(stack)-1]
			if !cal && top == "VCARD" || cal && (top == "VEVENT" || top == "VTODO" || top == "VJOURNAL") {
				return strings.TrimSpace(value)
			}
		}
	}
	return ""
}
