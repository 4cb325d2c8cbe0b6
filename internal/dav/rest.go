package dav

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// RawObject is one object cut out of an export file, before validation.
type RawObject struct {
	// Key names the object: its UID, or a placeholder when it has none.
	Key  string
	Data []byte
}

// REST reads (and, for calendars, writes) Zimbra/Carbonio folders through
// the REST UserServlet: GET /home/<account>/<folder>?fmt=ics|vcf exports a
// folder as one file, which Split cuts into one object per UID; POST
// ...?fmt=ics imports, updating by UID. It is safe for concurrent use.
type REST struct {
	// Client talks to the server; on the Zimbra admin port (7071) admin
	// Basic credentials may read any account.
	Client  *Client
	P       *Protocol
	Account string
	// Folders are the folder paths to copy, e.g. "Calendar", "Work/Team".
	Folders []string
	// Format is "ics" or "vcf".
	Format string
	// Query holds extra parameters, e.g. "icalAttach=inline".
	Query string
	// Split cuts an export into objects.
	Split func(data []byte) ([]RawObject, error)
	// Writable enables Put (calendar import through ?fmt=ics).
	Writable bool

	mu    sync.Mutex
	cache map[string]map[string][]byte // collection href -> href -> data
}

// FlattenName is the predictable name of a nested folder: its path with
// "/" replaced by "-" ("Work/Team" becomes "Work-Team").
func FlattenName(folder string) string {
	return strings.ReplaceAll(strings.Trim(folder, "/"), "/", "-")
}

// Collections implements Source: one per folder, nested ones flattened.
func (r *REST) Collections(ctx context.Context) ([]Collection, error) {
	var out []Collection
	for _, f := range r.Folders {
		f = strings.Trim(f, "/")
		if f == "" {
			continue
		}
		segs := strings.Split(f, "/")
		for i := range segs {
			segs[i] = url.PathEscape(segs[i])
		}
		c := Collection{
			Href:        "/home/" + url.PathEscape(r.Account) + "/" + strings.Join(segs, "/") + "/",
			Name:        FlattenName(f),
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
	q := "fmt=" + r.Format
	if r.Query != "" {
		q += "&" + r.Query
	}
	return strings.TrimSuffix(c.Href, "/") + "?" + q
}

// List implements Source: it exports the folder and cuts it per UID; an
// object's ETag is a hash of its bytes.
func (r *REST) List(ctx context.Context, c Collection) ([]Ref, error) {
	req, err := r.Client.NewRequest(ctx, http.MethodGet, r.exportURL(c), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readAll(resp.Body, resp.ContentLength, &LimitError{What: "export", URL: req.URL.Redacted(), Limit: r.Client.limits.export(), Field: "MaxExport"})
	if err != nil {
		if isLimit(err) {
			return nil, err
		}
		return nil, fmt.Errorf("dav: export %s: %w", c.Href, err)
	}
	body = CRLF(body)
	var objs []RawObject
	if len(bytes.TrimSpace(body)) > 0 {
		objs, err = r.Split(body)
		if err != nil {
			return nil, fmt.Errorf("dav: export %s: %w", c.Href, err)
		}
	}
	m := map[string][]byte{}
	refs := make([]Ref, 0, len(objs))
	for _, o := range objs {
		href := c.Href + EscapeSegment(ObjectName(o.Key, r.P.Ext))
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
	if !r.Writable || len(r.Folders) != 1 {
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
	if !r.Writable {
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
	req, err := r.Client.NewRequest(ctx, http.MethodPost, r.exportURL(c), data)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", r.P.ContentType)
	if _, err := r.Client.exec(req); err != nil {
		return "", err
	}
	r.mu.Lock()
	if r.cache != nil && r.cache[c.Href] != nil {
		r.cache[c.Href][href] = data
	}
	r.mu.Unlock()
	return "", nil
}
