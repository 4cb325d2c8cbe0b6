package dav

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Remote is a CalDAV or CardDAV server seen as a Source, a Destination and
// a Deleter; caldav.NewDAV and carddav.NewDAV make one. It discovers its
// collections on first use. It is safe for concurrent use.
type Remote struct {
	p      *Protocol
	client *Client

	mu     sync.Mutex
	nested map[string][]string // collection href -> sub-collection hrefs seen by List
	done   bool
	home   string
	cols   []Collection
	single bool
}

// NewRemote returns the server at e speaking p (CalDAV or CardDAV).
// Nothing is sent until first use.
func NewRemote(p *Protocol, e Endpoint) (*Remote, error) {
	if p == nil {
		return nil, errors.New("dav: NewRemote needs a protocol")
	}
	c, err := e.Client()
	if err != nil {
		return nil, err
	}
	return &Remote{p: p, client: c}, nil
}

func (r *Remote) discover(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	home, cols, err := r.client.Discover(ctx, r.p)
	if err != nil {
		return err
	}
	r.home, r.cols, r.done = home, cols, true
	base := r.client.Base().Path
	r.single = len(cols) == 1 && samePath(cols[0].Href, base)
	return nil
}

// Collections implements Source.
func (r *Remote) Collections(ctx context.Context) ([]Collection, error) {
	if err := r.discover(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Collection(nil), r.cols...), nil
}

// Fixed reports the collection when the URL named one collection.
func (r *Remote) Fixed() (Collection, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.single {
		return r.cols[0], true
	}
	return Collection{}, false
}

// List implements Source. Sub-collections it meets are kept for Nested.
func (r *Remote) List(ctx context.Context, c Collection) ([]Ref, error) {
	refs, subs, err := r.client.listAll(ctx, c.Href)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.nested == nil {
		r.nested = map[string][]string{}
	}
	r.nested[c.Href] = subs
	r.mu.Unlock()
	return refs, nil
}

// Nested returns the calendars or address books found inside c by the
// last List of c, named by their path below the home set with "/"
// flattened to "-" (Carbonio does not nest collections).
func (r *Remote) Nested(ctx context.Context, c Collection) ([]Collection, error) {
	r.mu.Lock()
	subs := r.nested[c.Href]
	home := r.home
	r.mu.Unlock()
	var out []Collection
	for _, h := range subs {
		cols, err := r.client.collections(ctx, r.p, h, "0")
		if err != nil {
			return nil, err
		}
		for _, col := range cols {
			rel := strings.Trim(strings.TrimPrefix(CleanPath(col.Href), CleanPath(home)), "/")
			if rel == "" || !strings.Contains(rel, "/") {
				rel = strings.Trim(strings.TrimPrefix(CleanPath(col.Href), CleanPath(c.Href)), "/")
				rel = c.Name + "/" + rel
			}
			col.Nested = rel
			col.Name = flattenName(rel)
			out = append(out, col)
		}
	}
	return out, nil
}

// Read implements Source: multiget in batches, with a GET per object the
// REPORT did not return.
func (r *Remote) Read(ctx context.Context, c Collection, refs []Ref, fn ReadFunc) error {
	b := DefaultBatchSize
	for start := 0; start < len(refs); start += b {
		if err := r.client.MultiGet(ctx, r.p, c.Href, refs[start:min(start+b, len(refs))], fn); err != nil {
			return err
		}
	}
	return nil
}

// CreateCollection implements Destination: MKCALENDAR or extended MKCOL in
// the home set.
func (r *Remote) CreateCollection(ctx context.Context, c Collection) (Collection, error) {
	if err := r.discover(ctx); err != nil {
		return Collection{}, err
	}
	r.mu.Lock()
	home := r.home
	r.mu.Unlock()
	if home == "" {
		return Collection{}, fmt.Errorf("dav: no home set to create %q in", c.Name)
	}
	c.Href = DirHref(home) + EscapeSegment(c.Name) + "/"
	err := r.client.MakeCollection(ctx, r.p, c.Href, CollectionProps{DisplayName: c.DisplayName, Description: c.Description, Color: c.Color, Components: c.Components})
	if err != nil {
		// An earlier attempt may have created it and lost the answer (the
		// server then says 405): adopt a collection of the right kind.
		found, ferr := r.client.collections(ctx, r.p, c.Href, "0")
		if ferr != nil || len(found) != 1 || !samePath(found[0].Href, c.Href) {
			return Collection{}, err
		}
		c = found[0]
	}
	r.mu.Lock()
	r.cols = append(r.cols, c)
	r.mu.Unlock()
	return c, nil
}

// Put implements Destination; when the server returns no ETag it asks for
// one with PROPFIND.
func (r *Remote) Put(ctx context.Context, c Collection, href string, data []byte, cond Cond) (string, error) {
	etag, err := r.client.Put(ctx, href, r.p.ContentType, data, cond)
	if err != nil || etag != "" {
		return etag, err
	}
	return r.client.ETag(ctx, href)
}

// Delete implements Deleter: DELETE with If-Match.
func (r *Remote) Delete(ctx context.Context, href, etag string) error {
	return r.client.Delete(ctx, href, etag)
}
