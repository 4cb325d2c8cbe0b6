package dav

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
	"github.com/zxmigrate/zxmigrate/retry"
)

// readObj is one source object as Read delivered it.
type readObj struct {
	ref  Ref
	data []byte
	err  error
}

func allETag(rs []Record, etag string) bool {
	for _, r := range rs {
		if r.SrcETag != etag {
			return false
		}
	}
	return true
}

// pair is one source collection being copied.
type pair struct {
	r    *run
	sc   Collection
	main *dstColl
	cs   *collStats
	key  string
	recs map[string][]Record // read-only after start
	// present holds the destination paths that exist (CleanPath), for
	// records; read-only after start.
	present map[string]bool
}

func allPresent(rs []Record, present map[string]bool) bool {
	for _, r := range rs {
		if !present[CleanPath(r.DstHref)] {
			return false
		}
	}
	return true
}

// present lists the destination collections the records point into and
// returns the paths found there.
func (r *run) present(ctx context.Context, recs map[string][]Record) (map[string]bool, error) {
	dirs := map[string]bool{}
	for _, rs := range recs {
		for _, rec := range rs {
			p := CleanPath(rec.DstHref)
			if i := strings.LastIndex(p, "/"); i >= 0 {
				dirs[p[:i+1]] = true
			}
		}
	}
	out := map[string]bool{}
	for d := range dirs {
		var refs []Ref
		err := retry.Do(ctx, r.c.policy(), func(int) error {
			var err error
			refs, err = r.dst.List(ctx, Collection{Href: d})
			return err
		}, nil)
		if IsStatus(err, http.StatusNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, ref := range refs {
			out[CleanPath(ref.Href)] = true
		}
	}
	return out, nil
}

// flush stores the records of one batch in one SaveBatch. The objects are
// already written, so an interrupted run still records them.
func (p *pair) flush(ctx context.Context, pending []Record) {
	if len(pending) == 0 {
		return
	}
	bc := p.r.c.Checkpoint.(BatchCheckpoint)
	if err := bc.SaveBatch(context.WithoutCancel(ctx), p.key, pending); err != nil {
		p.r.fail(fmt.Errorf("dav: write checkpoint: %w", err))
	}
}

// object copies the items of one source object. Records to save go to
// *pending when the checkpoint takes batches, else are saved at once.
func (p *pair) object(ctx context.Context, o readObj, pending *[]Record) {
	r := p.r
	if o.err != nil {
		r.itemFailed(p.cs, o.ref.Href, "", fmt.Errorf("dav: read: %w", o.err), false)
		return
	}
	items, err := r.c.Rules.Split(davtext.CRLF(o.data))
	if err != nil {
		r.itemFailed(p.cs, o.ref.Href, "", err, true)
		return
	}
	r.memo.put(p.sc.Href, o.ref, items)
	if len(items) > 1 {
		p.cs.add(func(s *CollectionStats) {
			s.Notes = append(s.Notes, ItemNote{Item: o.ref.Href, Note: fmt.Sprintf("resource holds %d UIDs: split into one resource per UID", len(items))})
		})
	}
	for _, it := range items {
		if ctx.Err() != nil {
			return
		}
		if err := p.item(ctx, o.ref, it, pending); err != nil {
			r.itemFailed(p.cs, o.ref.Href, it.UID, err, false)
		}
	}
}

// companion names the collection for items the main one does not accept.
func companion(name, comp string) string {
	switch comp {
	case "VTODO":
		return name + "-tasks"
	case "VEVENT":
		return name + "-events"
	default:
		return name + "-" + strings.ToLower(strings.TrimPrefix(comp, "V"))
	}
}

// safeName reports whether uid is 1 to 120 of [A-Za-z0-9._@+=-] (a loop:
// the regular expression cost more than the rest of naming an object).
func safeName(uid string) bool {
	if len(uid) == 0 || len(uid) > 120 {
		return false
	}
	for i := 0; i < len(uid); i++ {
		switch c := uid[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == '@' || c == '+' || c == '=' || c == '-':
		default:
			return false
		}
	}
	return true
}

// ObjectName is the resource name for a UID: the UID itself when it is a
// safe path segment, else a hash of it.
func ObjectName(uid, ext string) string {
	if safeName(uid) && !strings.HasPrefix(uid, ".") {
		return uid + ext
	}
	h := sha1.Sum([]byte(uid))
	return hex.EncodeToString(h[:]) + ext
}

func (p *pair) item(ctx context.Context, src Ref, it Item, pending *[]Record) error {
	r := p.r
	dc := p.main
	if !dc.col.Accepts(it.Component) {
		var err error
		dc, err = r.target(ctx, Collection{Name: companion(p.sc.Name, it.Component), DisplayName: strings.TrimSpace(p.sc.DisplayName + " " + companionLabel(it.Component)), Components: []string{it.Component}}, false)
		if err != nil {
			return err
		}
		p.cs.add(func(s *CollectionStats) { s.Routed++ })
	}
	for _, n := range it.Notes {
		p.cs.add(func(s *CollectionStats) { s.Notes = append(s.Notes, ItemNote{Item: src.Href, UID: it.UID, Note: n}) })
	}
	lock := dc.lockUID(it.UID)
	lock.Lock()
	defer lock.Unlock()
	if prev, dup := dc.markSeen(it.UID, src.Href); dup {
		return fmt.Errorf("dav: UID %q also in source object %s: not written twice", it.UID, prev)
	}
	var rec Record
	hasRec := false
	for _, x := range p.recs[src.Href] {
		if x.UID == it.UID && p.present[CleanPath(x.DstHref)] {
			rec, hasRec = x, true
		}
	}
	done := func(a Action, href, etag string) error {
		nr := Record{SrcHref: src.Href, SrcETag: src.ETag, UID: it.UID, Hash: it.Hash, DstHref: href, DstETag: etag}
		if _, batch := r.c.Checkpoint.(BatchCheckpoint); batch && !r.c.DryRun && nr != rec {
			*pending = append(*pending, nr)
		} else if r.c.Checkpoint != nil && !r.c.DryRun && nr != rec {
			if err := r.c.Checkpoint.Save(ctx, p.key, nr); err != nil {
				r.fail(fmt.Errorf("dav: write checkpoint: %w", err))
				return err
			}
		}
		dc.remember(it.UID, indexed{Ref{href, etag}, it.Hash})
		r.claim(href)
		p.cs.add(func(s *CollectionStats) {
			switch a {
			case Created:
				s.Created++
			case Updated:
				s.Updated++
			default:
				s.Unchanged++
			}
			if it.Repaired && a != Unchanged {
				s.Repaired++
			}
		})
		r.c.emit(ObjectDone{Collection: p.sc.Href, Href: href, UID: it.UID, Action: a})
		return nil
	}
	if hasRec && rec.Hash == it.Hash {
		return done(Unchanged, rec.DstHref, rec.DstETag)
	}
	var (
		href string
		cond Cond
		act  = Created
	)
	switch {
	case hasRec && rec.DstETag != "":
		href, cond, act = rec.DstHref, Cond{IfMatch: rec.DstETag}, Updated
	default:
		x, ok, err := p.lookup(ctx, dc, it.UID)
		if err != nil {
			return err
		}
		if ok {
			if x.Hash == it.Hash {
				return done(Unchanged, x.Href, x.ETag)
			}
			href, cond, act = x.Href, Cond{IfMatch: x.ETag}, Updated
			if x.ETag == "" {
				return fmt.Errorf("dav: %s exists at the destination without an ETag: not overwritten", x.Href)
			}
		} else {
			href, cond = dc.col.Href+EscapeSegment(ObjectName(it.UID, r.c.protocol().Ext)), Cond{Create: true}
		}
	}
	if r.c.DryRun {
		return done(act, href, "")
	}
	etag, err := p.put(ctx, dc, href, it.Data, cond)
	switch at := ConflictHref(err); {
	case err == nil:
		return done(act, href, etag)
	case at != "" && !samePath(at, href):
		// The server holds this UID at another href (Carbonio: a UID is
		// unique in the whole mailbox): match by UID and adopt it there.
		return p.adopt(ctx, dc, src, it, at, done)
	case IsStatus(err, http.StatusPreconditionFailed) && cond.Create:
		// Something is there: adopt it if it holds our UID.
		got, uid, gerr := p.readDst(ctx, dc.col, href)
		if gerr != nil {
			return fmt.Errorf("dav: %s exists at the destination and cannot be read: %w", href, gerr)
		}
		if uid != it.UID {
			return fmt.Errorf("dav: %s exists at the destination with another UID %q: not overwritten", href, uid)
		}
		if got.Hash == it.Hash {
			return done(Unchanged, href, got.ETag)
		}
		etag, err := p.put(ctx, dc, href, it.Data, Cond{IfMatch: got.ETag})
		if err != nil {
			return err
		}
		return done(Updated, href, etag)
	case IsStatus(err, http.StatusPreconditionFailed):
		return fmt.Errorf("dav: %s changed at the destination since the last copy: not overwritten: %w", href, err)
	case IsStatus(err, http.StatusNotFound) && !cond.Create:
		etag, err := p.put(ctx, dc, href, it.Data, Cond{Create: true})
		if err != nil {
			return err
		}
		return done(Created, href, etag)
	default:
		return err
	}
}

// readDst reads the one destination object at href in col and returns it
// with its UID and content hash.
func (p *pair) readDst(ctx context.Context, col Collection, href string) (indexed, string, error) {
	return p.r.readDst(ctx, col, href)
}

// readDst reads the one destination object at href in col and returns it
// with its UID and content hash.
func (r *run) readDst(ctx context.Context, col Collection, href string) (indexed, string, error) {
	var got indexed
	var uid string
	var rerr error
	err := r.dst.Read(ctx, col, []Ref{{Href: href}}, func(ref Ref, data []byte, err error) {
		if err != nil {
			rerr = err
			return
		}
		got.Ref = ref
		uid, got.Hash, rerr = r.c.Rules.Fingerprint(davtext.CRLF(data))
	})
	if err == nil {
		err = rerr
	}
	return got, uid, err
}

// adopt makes the object at href, which the destination says holds it.UID,
// the copy of it: unchanged when equal, else updated there under If-Match.
func (p *pair) adopt(ctx context.Context, dc *dstColl, src Ref, it Item, href string, done func(Action, string, string) error) error {
	dir := CleanPath(href)
	if i := strings.LastIndex(dir, "/"); i >= 0 {
		dir = dir[:i+1]
	}
	got, uid, gerr := p.readDst(ctx, Collection{Href: dir}, href)
	if gerr != nil {
		return fmt.Errorf("dav: the destination holds UID %q at %s, which cannot be read: %w", it.UID, href, gerr)
	}
	if uid != it.UID {
		return fmt.Errorf("dav: the destination says UID %q is at %s, which holds UID %q: not written", it.UID, href, uid)
	}
	note := fmt.Sprintf("UID already at %s on the destination: matched by UID and kept there", href)
	if !samePath(dir, dc.col.Href) {
		note = fmt.Sprintf("UID already at %s, outside %s, on the destination (one UID per mailbox): matched by UID and kept there", href, dc.col.Href)
		// Verify looks for it there (the checkpoint records it too).
		p.r.memo.adopt(p.sc.Href, it.UID, href)
	}
	p.cs.add(func(s *CollectionStats) { s.Notes = append(s.Notes, ItemNote{Item: src.Href, UID: it.UID, Note: note}) })
	if got.Hash == it.Hash {
		return done(Unchanged, href, got.ETag)
	}
	if got.ETag == "" {
		return fmt.Errorf("dav: %s holds UID %q without an ETag: not overwritten", href, it.UID)
	}
	etag, err := p.put(ctx, dc, href, it.Data, Cond{IfMatch: got.ETag})
	if err != nil {
		return err
	}
	return done(Updated, href, etag)
}

func companionLabel(comp string) string {
	switch comp {
	case "VTODO":
		return "(tasks)"
	case "VEVENT":
		return "(events)"
	}
	return "(" + strings.ToLower(comp) + ")"
}

func (p *pair) put(ctx context.Context, dc *dstColl, href string, data []byte, cond Cond) (string, error) {
	var etag string
	err := retry.Do(ctx, p.r.c.policy(), func(int) error {
		var err error
		etag, err = p.r.dst.Put(ctx, dc.col, href, data, cond)
		return err
	}, nil)
	return etag, err
}

func (d *dstColl) lockUID(uid string) *sync.Mutex {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.uidLocks == nil {
		d.uidLocks = map[string]*sync.Mutex{}
	}
	l := d.uidLocks[uid]
	if l == nil {
		l = &sync.Mutex{}
		d.uidLocks[uid] = l
	}
	return l
}

func (d *dstColl) markSeen(uid, href string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]string{}
	}
	if prev, ok := d.seen[uid]; ok && prev != href {
		return prev, true
	}
	d.seen[uid] = href
	return "", false
}

func (d *dstColl) remember(uid string, x indexed) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.built {
		d.byUID[uid] = x
	}
}

// lookup finds uid in the destination collection, building the UID index
// on first use (one listing and a read of every object).
func (p *pair) lookup(ctx context.Context, d *dstColl, uid string) (indexed, bool, error) {
	d.mu.Lock()
	if d.built {
		x, ok := d.byUID[uid]
		d.mu.Unlock()
		return x, ok, nil
	}
	d.mu.Unlock()
	idx, dups, err := index(ctx, p.r.dst, d.col, p.r.c.Rules, p.r.c.batch())
	if err != nil {
		return indexed{}, false, fmt.Errorf("dav: index destination %s: %w", d.col.Href, err)
	}
	d.mu.Lock()
	if !d.built {
		d.byUID = map[string]indexed{}
		for u, xs := range idx {
			d.byUID[u] = xs[0]
		}
		d.built = true
		for _, u := range dups {
			p.cs.add(func(s *CollectionStats) {
				s.Notes = append(s.Notes, ItemNote{Item: d.col.Href, UID: u, Note: "destination already holds this UID more than once"})
			})
		}
	}
	x, ok := d.byUID[uid]
	d.mu.Unlock()
	return x, ok, nil
}

// index reads every object of c and returns them by UID; dups lists UIDs
// held by more than one object. Unreadable objects are skipped.
func index(ctx context.Context, s Source, c Collection, rules Rules, batch int) (map[string][]indexed, []string, error) {
	refs, err := s.List(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	out := map[string][]indexed{}
	var dups []string
	for start := 0; start < len(refs); start += batch {
		err := s.Read(ctx, c, refs[start:min(start+batch, len(refs))], func(ref Ref, data []byte, err error) {
			if err != nil {
				return
			}
			uid, h, err := rules.Fingerprint(davtext.CRLF(data))
			if err != nil || uid == "" {
				return
			}
			if len(out[uid]) == 1 {
				dups = append(dups, uid)
			}
			out[uid] = append(out[uid], indexed{ref, h})
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return out, dups, nil
}
