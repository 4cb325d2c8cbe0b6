package dav

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// RawObject is one object cut out of an export file, before validation.
type RawObject struct {
	// Key names the object: its UID, or a placeholder when it has none.
	Key string
	// Data is the object, CRLF line ends.
	Data []byte
}

// REST reads (and, for calendars, writes) the folders of one account
// through the Zimbra/Carbonio REST UserServlet: GET
// /home/<account>/<folder>?fmt=ics|vcf exports a folder as one file, which
// is cut into one object per UID; POST ...?fmt=ics imports, updating by UID.
// caldav.NewZimbraREST and carddav.NewZimbraREST make one. It is safe for
// concurrent use.
type REST struct {
	client   *Client
	p        *Protocol
	account  string
	folders  []string
	format   string
	query    string
	split    func(data []byte) ([]RawObject, error)
	writable bool

	mu    sync.Mutex
	cache map[string]map[string][]byte // collection href -> href -> data
}

// RESTOptions say what NewREST exports and how it cuts the export.
type RESTOptions struct {
	// Folders are the folder paths to copy, e.g. "Calendar", "Work/Team".
	Folders []string
	// Query holds extra export parameters, e.g. "icalAttach=inline".
	Query string
	// Split cuts an export into objects, one per UID; it is required.
	Split func(data []byte) ([]RawObject, error)
	// Writable enables Put (the calendar import through ?fmt=ics).
	Writable bool
}

// NewREST returns the REST folders of e.Account at the server e.URL, in
// the format of p (fmt=ics for CalDAV, fmt=vcf for CardDAV). On the admin
// port (7071) a global admin's Basic credentials, or an admin token, may
// read any account. Nothing is sent until first use.
func NewREST(p *Protocol, e Endpoint, o RESTOptions) (*REST, error) {
	if e.Account == "" {
		return nil, errors.New("dav: REST needs the account to read")
	}
	if p == nil || o.Split == nil {
		return nil, errors.New("dav: REST needs a protocol and a Split function")
	}
	c, err := e.client(true)
	if err != nil {
		return nil, err
	}
	return &REST{client: c, p: p, account: e.Account, folders: o.Folders, format: strings.TrimPrefix(p.Ext, "."),
		query: o.Query, split: o.Split, writable: o.Writable}, nil
}

// flattenName is the predictable name of a nested folder: its path with
// "/" replaced by "-" ("Work/Team" becomes "Work-Team").
func flattenName(folder string) string {
	return strings.ReplaceAll(strings.Trim(folder, "/"), "/", "-")
}

// Collections implements Source: one per folder, nested ones flattened.
func (r *REST) Collections(ctx context.Context) ([]Collection, error) {
	var out []Collection
	for _, f := range r.folders {
		f = strings.Trim(f, "/")
		if f == "" {
			continue
		}
		segs := strings.Split(f, "/")
		for i := range segs {
			segs[i] = url.PathEscape(segs[i])
		}
		c := Collection{
			Href:        "/home/" + url.PathEscape(r.account) + "/" + strings.Join(segs, "/") + "/",
			Name:        flattenName(f),
			DisplayName: strings.ReplaceAll(f, "/", " / "),
		}
		if strings.Contains(f, "/") {
			c.Nested = f
		}
		out = append(out, c)
	}
	return out, nil
}

func (r *REST) exportURL(c Collection) string {
	q := "fmt=" + r.format
	if r.query != "" {
		q += "&" + r.query
	}
	return strings.TrimSuffix(c.Href, "/") + "?" + q
}

// List implements Source: it exports the folder and cuts it per UID; an
// object's ETag is a hash of its bytes.
func (r *REST) List(ctx context.Context, c Collection) ([]Ref, error) {
	req, err := r.client.newRequest(ctx, http.MethodGet, r.exportURL(c), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readAll(resp.Body, resp.ContentLength, &LimitError{What: "export", URL: req.URL.Redacted(), Limit: r.client.limits.export(), Field: "MaxExport"})
	if err != nil {
		if isLimit(err) {
			return nil, err
		}
		return nil, fmt.Errorf("dav: export %s: %w", c.Href, err)
	}
	body = davtext.CRLF(body)
	var objs []RawObject
	if len(bytes.TrimSpace(body)) > 0 {
		objs, err = r.split(body)
		if err != nil {
			return nil, fmt.Errorf("dav: export %s: %w", c.Href, err)
		}
	}
	m := map[string][]byte{}
	refs := make([]Ref, 0, len(objs))
	for _, o := range objs {
		href := c.Href + EscapeSegment(ObjectName(o.Key, r.p.Ext))
		h := sha256.Sum256(o.Data)
		m[href] = o.Data
		refs = append(refs, Ref{Href: href, ETag: hex.EncodeToString(h[:16])})
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[string]map[string][]byte{}
	}
	r.cache[c.Href] = m
	r.mu.Unlock()
	return refs, nil
}

// Read implements Source from the export List fetched.
func (r *REST) Read(ctx context.Context, c Collection, refs []Ref, fn ReadFunc) error {
	r.mu.Lock()
	m := r.cache[c.Href]
	r.mu.Unlock()
	for _, ref := range refs {
		d, ok := m[ref.Href]
		if !ok {
			fn(ref, nil, fmt.Errorf("dav: %s is not in the export of %s", ref.Href, c.Href))
			continue
		}
		fn(ref, d, nil)
	}
	return nil
}

// Fixed reports the one folder of a writable REST destination: every
// source collection goes there (REST cannot create folders).
func (r *REST) Fixed() (Collection, bool) {
	if !r.writable || len(r.folders) != 1 {
		return Collection{}, false
	}
	cs, _ := r.Collections(context.Background())
	if len(cs) != 1 {
		return Collection{}, false
	}
	return cs[0], true
}

// CreateCollection implements Destination: REST cannot create folders.
func (r *REST) CreateCollection(ctx context.Context, c Collection) (Collection, error) {
	return Collection{}, fmt.Errorf("dav: REST import cannot create folder %q: create it first", c.Name)
}

// Put implements Destination by POSTing the object to the folder's
// ?fmt=ics import, which updates an existing UID in place. REST has no
// conditional write: Create is checked against the last export; IfMatch
// cannot be checked. It returns no ETag.
func (r *REST) Put(ctx context.Context, c Collection, href string, data []byte, cond Cond) (string, error) {
	if !r.writable {
		return "", fmt.Errorf("dav: %s: REST destination is read-only", href)
	}
	if cond.Create {
		r.mu.Lock()
		_, exists := r.cache[c.Href][href]
		r.mu.Unlock()
		if exists {
			return "", &HTTPError{Method: "POST", URL: href, Code: http.StatusPreconditionFailed, Body: "object already in the folder export"}
		}
	}
	req, err := r.client.newRequest(ctx, http.MethodPost, r.exportURL(c), data)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", r.p.ContentType)
	if _, err := r.client.exec(req); err != nil {
		return "", err
	}
	r.mu.Lock()
	if r.cache != nil && r.cache[c.Href] != nil {
		r.cache[c.Href][href] = data
	}
	r.mu.Unlock()
	return "", nil
}
