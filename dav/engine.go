package dav

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
	"github.com/zxmigrate/zxmigrate/internal/retry"
)

// Defaults for Copier's zero fields.
const (
	DefaultConcurrency = 4
	DefaultBatchSize   = 50
)

// Copier copies every calendar or address book of a Source to a
// Destination. Its fields are its options; zero values mean the documented
// defaults, except Rules, which names the format (caldav.Rules{} or
// carddav.Rules{}) and must be set.
//
// A Copier may be used for several Copy and Verify calls, also
// concurrently, as long as its fields are not changed meanwhile. Each call
// returns only once the goroutines it started have ended; connections
// belong to the HTTP clients of the Source and Destination. Cancelling ctx
// stops a call: requests in flight are abandoned, what was written is kept
// and recorded in Checkpoint, and the call returns an error that matches
// ctx's (errors.Is) with the stats so far. Verify reuses what the
// last Copy of the same Copier read from the same Source (see Verify).
type Copier struct {
	// Rules validate, repair and fingerprint the objects: caldav.Rules{}
	// for calendars and task lists, carddav.Rules{} for address books.
	// Copy and Verify fail when Rules is nil.
	Rules Rules
	// Concurrency bounds parallel requests to each server; 0 means
	// DefaultConcurrency.
	Concurrency int
	// BatchSize is the number of objects per multiget REPORT; 0 means
	// DefaultBatchSize.
	BatchSize int
	// Checkpoint, when not nil, remembers what was copied so that a re-run
	// skips unchanged objects and updates changed ones. Without it objects
	// are matched by UID at the destination. A BatchCheckpoint gets the
	// records of each multiget batch at once; a crash then loses at most
	// one batch of records, and those objects are matched by UID on the
	// next run.
	Checkpoint Checkpoint
	// DryRun reads and validates everything and reports what would be
	// written, writing nothing.
	DryRun bool
	// Delete, when set, deletes at the destination the objects this tool
	// copied (recorded in Checkpoint, which must then be a
	// ForgetCheckpoint) that the source no longer has, once every
	// collection is copied, with If-Match on the ETag written; see Copy.
	// With DryRun it counts what it would delete. The zero value copies
	// only (additive).
	Delete bool
	// OnEvent, when not nil, receives progress events. It may be called
	// concurrently and must return quickly.
	OnEvent func(Event)
	// OnError, when not nil, is called for each failed object: returning
	// nil skips it, an error aborts Copy with that error. By default
	// failures are recorded in the stats and the copy goes on. It may be
	// called concurrently.
	OnError func(item string, err error) error
	// Logger, when not nil, receives debug logs.
	Logger *slog.Logger

	memoMu sync.Mutex
	memo   *sourceMemo // what the last Copy read, for Verify
	retry  retry.Policy
}

// lastMemo returns the memo of the last Copy when it read src.
func (e *Copier) lastMemo(src Source) *sourceMemo {
	e.memoMu.Lock()
	defer e.memoMu.Unlock()
	if e.memo.forSource(src) {
		return e.memo
	}
	return nil
}

func (e *Copier) protocol() *Protocol { return e.Rules.Protocol() }

func (e *Copier) conc() int {
	if e.Concurrency > 0 {
		return e.Concurrency
	}
	return DefaultConcurrency
}

func (e *Copier) batch() int {
	if e.BatchSize > 0 {
		return e.BatchSize
	}
	return DefaultBatchSize
}

func (e *Copier) policy() retry.Policy {
	p := e.retry
	if p.Attempts == 0 {
		p.Attempts = 4
	}
	return p
}

func (e *Copier) emit(ev Event) {
	if e.OnEvent != nil {
		e.OnEvent(ev)
	}
}

func (e *Copier) log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(discardHandler{})
}

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// fixedTarget is implemented by destinations addressed by a collection URL:
// every source collection goes there.
type fixedTarget interface {
	Fixed() (Collection, bool)
}

// run is the state of one Copy.
type run struct {
	e       *Copier
	src     Source
	dst     Destination
	memo    *sourceMemo // what this run read, for a later Verify
	sem     chan struct{}
	abortMu sync.Mutex
	abort   error
	cancel  context.CancelFunc

	colMu   sync.Mutex
	dstCols map[string]*dstColl // by Name

	// For Delete: the pairs copied, the source collections tried and the
	// destination paths this run wrote or matched.
	delMu     sync.Mutex
	pairs     []*pairState
	attempted map[string]bool
	claimed   map[string]bool
}

// dstColl is one destination collection with its lazily built UID index.
type dstColl struct {
	col     Collection
	created bool
	mu      sync.Mutex
	built   bool
	byUID   map[string]indexed
	// writing guards one UID at a time.
	uidLocks map[string]*sync.Mutex
	// seen maps UIDs written in this run to the source href.
	seen map[string]string
}

type indexed struct {
	Ref
	Hash string
}

// Copy copies every source collection to the destination collection of the
// same name (created when missing). Per-item problems are in the returned
// stats; the error is non-nil only when the copy could not go on (listing
// collections failed, authentication refused, OnError aborted, ctx ended).
//
// With Delete, once every collection is copied, each checkpoint record whose
// source object the collection's listing no longer holds is a deletion
// candidate: its destination object is deleted with If-Match on the
// recorded ETag and the record forgotten (Deleted; already gone counts as
// deleted). An object changed at the destination since (412) is kept and
// noted, and its record forgotten: it is the destination's own now. Other
// failures are per-object failures; the record stays for the next run.
// Nothing is deleted in a collection whose listing failed, whose objects
// failed to copy, or that lists no objects while the checkpoint holds
// records for it; nor when the destination is not a Deleter, nor at a path
// this run wrote or another collection's record holds; these are counted
// in HeldBack with the reason in Notes. A collection pair of the checkpoint
// whose source collection is gone is reported (Gone); no collection is ever
// deleted.
func (e *Copier) Copy(ctx context.Context, dst Destination, src Source) (*Stats, error) {
	if err := e.check(dst, src); err != nil {
		return nil, err
	}
	if e.Delete {
		if e.Checkpoint == nil {
			return nil, errors.New("dav: Delete needs a Checkpoint (only objects recorded as copied are deleted)")
		}
		if _, ok := e.Checkpoint.(ForgetCheckpoint); !ok {
			return nil, errors.New("dav: Delete needs a Checkpoint that can forget records (ForgetCheckpoint)")
		}
	}
	srcCols, err := e.collections(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("dav: source %ss: %w", e.protocol().Name, err)
	}
	dstCols, err := e.collections(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("dav: destination %ss: %w", e.protocol().Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{e: e, src: src, dst: dst, sem: make(chan struct{}, e.conc()), cancel: cancel, dstCols: map[string]*dstColl{},
		attempted: map[string]bool{}, claimed: map[string]bool{}, memo: newSourceMemo(src)}
	e.memoMu.Lock()
	e.memo = r.memo
	e.memoMu.Unlock()
	for _, c := range dstCols {
		r.dstCols[c.Name] = &dstColl{col: c}
	}
	per := make([][]*collStats, len(srcCols))
	var g errgroup.Group
	g.SetLimit(e.conc())
	for i, sc := range srcCols {
		g.Go(func() error {
			per[i] = r.copyTree(ctx, sc, 0)
			return nil
		})
	}
	g.Wait()
	if e.Delete && !r.aborted() && ctx.Err() == nil {
		per = append(per, r.propagate(ctx))
	}
	stats := &Stats{}
	for _, p := range per {
		for _, cs := range p {
			out := cs.final()
			if e.Delete {
				e.emit(CollectionDone{Stats: out})
			}
			stats.Collections = append(stats.Collections, out)
		}
	}
	if r.abort != nil {
		return stats, r.abort
	}
	if err := ctx.Err(); err != nil {
		return stats, err
	}
	return stats, nil
}

// check reports a Copier or call that cannot work.
func (e *Copier) check(dst Destination, src Source) error {
	if e.Rules == nil {
		return errors.New("dav: Copier.Rules is nil (caldav.Rules{} or carddav.Rules{})")
	}
	if dst == nil || src == nil {
		return errors.New("dav: Copy needs a destination and a source")
	}
	return nil
}

// fail records an abort error and cancels the run.
func (r *run) fail(err error) {
	r.abortMu.Lock()
	if r.abort == nil {
		r.abort = err
	}
	r.abortMu.Unlock()
	r.cancel()
}

func (r *run) aborted() bool {
	r.abortMu.Lock()
	defer r.abortMu.Unlock()
	return r.abort != nil
}

// collStats is CollectionStats under a mutex.
type collStats struct {
	mu sync.Mutex
	CollectionStats
}

func (cs *collStats) add(f func(s *CollectionStats)) {
	cs.mu.Lock()
	f(&cs.CollectionStats)
	cs.mu.Unlock()
}

// final returns the stats with the errors sorted by item.
func (cs *collStats) final() CollectionStats {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := cs.CollectionStats
	out.Errors = append([]ItemError(nil), out.Errors...)
	out.Notes = append([]ItemNote(nil), out.Notes...)
	sort.SliceStable(out.Errors, func(i, j int) bool { return out.Errors[i].Item < out.Errors[j].Item })
	return out
}

// itemFailed records a failure and asks OnError; fatal errors abort.
func (r *run) itemFailed(cs *collStats, item, uid string, err error, skipped bool) {
	cs.add(func(s *CollectionStats) {
		if skipped {
			s.Skipped++
		} else {
			s.Failed++
		}
		s.Errors = append(s.Errors, ItemError{Item: item, UID: uid, Reason: err.Error(), Err: err})
	})
	r.e.emit(ObjectFailed{Collection: cs.Source, Item: item, UID: uid, Err: err})
	r.e.log().Debug("dav: item failed", "item", item, "uid", uid, "err", err)
	if retry.Classify(err) == retry.Fatal {
		r.fail(err)
		return
	}
	if r.e.OnError != nil {
		if aerr := r.e.OnError(item, err); aerr != nil {
			r.fail(aerr)
		}
	}
}

// target finds or creates the destination collection for want. A main
// collection goes to the destination's fixed collection when its URL named
// one; companions are always looked up or created by name.
func (r *run) target(ctx context.Context, want Collection, main bool) (*dstColl, error) {
	r.colMu.Lock()
	defer r.colMu.Unlock()
	if ft, ok := r.dst.(fixedTarget); ok && main {
		if c, ok := ft.Fixed(); ok {
			if d, ok := r.dstCols[c.Name]; ok {
				return d, nil
			}
		}
	}
	if d, ok := r.dstCols[want.Name]; ok {
		return d, nil
	}
	d := &dstColl{col: want, created: true, built: true, byUID: map[string]indexed{}}
	if !r.e.DryRun {
		c, err := r.dst.CreateCollection(ctx, want)
		if err != nil {
			return nil, fmt.Errorf("dav: create %s %q: %w", r.e.protocol().Name, want.Name, err)
		}
		d.col = c
	}
	r.dstCols[want.Name] = d
	return d, nil
}

// nestedSource is implemented by sources that can nest collections.
type nestedSource interface {
	Nested(ctx context.Context, c Collection) ([]Collection, error)
}

// maxNesting bounds how deep nested collections are followed.
const maxNesting = 8

// copyTree copies sc and then the collections nested in it, flattened.
func (r *run) copyTree(ctx context.Context, sc Collection, depth int) []*collStats {
	out := []*collStats{r.copyCollection(ctx, sc)}
	ns, ok := r.src.(nestedSource)
	if !ok || ctx.Err() != nil {
		return out
	}
	subs, err := ns.Nested(ctx, sc)
	if err != nil {
		cs := &collStats{CollectionStats: CollectionStats{Source: sc.Href, Name: sc.Name}}
		r.itemFailed(cs, sc.Href, "", fmt.Errorf("dav: nested collections of %s: %w", sc.Href, err), false)
		return append(out, cs)
	}
	for _, sub := range subs {
		if depth >= maxNesting {
			cs := &collStats{CollectionStats: CollectionStats{Source: sub.Href, Name: sub.Name, Nested: sub.Nested}}
			r.itemFailed(cs, sub.Href, "", fmt.Errorf("dav: %s nested deeper than %d levels: not copied", sub.Href, maxNesting), false)
			r.attempt(sub.Href)
			out = append(out, cs)
			continue
		}
		out = append(out, r.copyTree(ctx, sub, depth+1)...)
	}
	return out
}

func (r *run) copyCollection(ctx context.Context, sc Collection) *collStats {
	r.attempt(sc.Href)
	cs := &collStats{CollectionStats: CollectionStats{Source: sc.Href, Name: sc.Name, Nested: sc.Nested, DryRun: r.e.DryRun}}
	if sc.Nested != "" {
		cs.Notes = append(cs.Notes, ItemNote{Item: sc.Href, Note: fmt.Sprintf("nested collection %q flattened to %q", sc.Nested, sc.Name)})
	}
	var refs []Ref
	err := retry.Do(ctx, r.e.policy(), func(int) error {
		var err error
		refs, err = r.src.List(ctx, sc)
		return err
	}, nil)
	if err != nil {
		r.itemFailed(cs, sc.Href, "", fmt.Errorf("dav: list %s: %w", sc.Href, err), false)
		return r.collectionDone(cs)
	}
	cs.Objects = len(refs)
	main, err := r.target(ctx, Collection{Name: sc.Name, DisplayName: sc.DisplayName, Description: sc.Description, Color: sc.Color, Components: sc.Components}, true)
	if err != nil {
		r.itemFailed(cs, sc.Href, "", fmt.Errorf("%w (%d objects not copied)", err, len(refs)), false)
		return r.collectionDone(cs)
	}
	cs.Destination = main.col.Href
	cs.CollectionCreated = main.created
	r.e.emit(CollectionStarted{Source: sc.Href, Destination: main.col.Href, Objects: len(refs)})
	key := sc.Href + " => " + main.col.Href
	recs := map[string][]Record{}
	if r.e.Checkpoint != nil {
		list, err := r.e.Checkpoint.Records(ctx, key)
		if err != nil {
			r.fail(fmt.Errorf("dav: read checkpoint: %w", err))
			return r.collectionDone(cs)
		}
		for _, rec := range list {
			recs[rec.SrcHref] = append(recs[rec.SrcHref], rec)
		}
	}
	// Objects recorded as copied must still be at the destination: one
	// listing per destination collection finds those deleted there since.
	var present map[string]bool
	if len(recs) > 0 {
		present, err = r.present(ctx, recs)
		if err != nil {
			r.itemFailed(cs, sc.Href, "", fmt.Errorf("dav: list destination: %w", err), false)
			return r.collectionDone(cs)
		}
	}
	if r.e.Delete {
		listed := make(map[string]bool, len(refs))
		for _, ref := range refs {
			listed[CleanPath(ref.Href)] = true
		}
		r.delMu.Lock()
		r.pairs = append(r.pairs, &pairState{key: key, cs: cs, listed: listed, recs: recs, present: present})
		r.delMu.Unlock()
	}
	// Unchanged by ETag: skip without reading.
	var toRead []Ref
	for _, ref := range refs {
		if rs := recs[ref.Href]; len(rs) > 0 && ref.ETag != "" && allETag(rs, ref.ETag) && allPresent(rs, present) {
			cs.Unchanged += len(rs)
			for _, rec := range rs {
				r.e.emit(ObjectDone{Collection: sc.Href, Href: rec.DstHref, UID: rec.UID, Action: Unchanged})
			}
			continue
		}
		toRead = append(toRead, ref)
	}
	p := &pair{r: r, sc: sc, main: main, cs: cs, key: key, recs: recs, present: present}
	var g errgroup.Group
	for start := 0; start < len(toRead); start += r.e.batch() {
		batch := toRead[start:min(start+r.e.batch(), len(toRead))]
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			defer func() { <-r.sem }()
			var objs []readObj
			err := r.src.Read(ctx, sc, batch, func(ref Ref, data []byte, err error) {
				objs = append(objs, readObj{ref, data, err})
			})
			if err != nil {
				if retry.Classify(err) == retry.Fatal {
					r.fail(err)
					return nil
				}
				for _, ref := range batch {
					r.itemFailed(cs, ref.Href, "", fmt.Errorf("dav: read: %w", err), false)
				}
				return nil
			}
			var pending []Record
			defer func() { p.flush(ctx, pending) }()
			for _, o := range objs {
				if ctx.Err() != nil {
					return nil
				}
				p.object(ctx, o, &pending)
			}
			return nil
		})
	}
	g.Wait()
	return r.collectionDone(cs)
}

// collectionDone sends CollectionDone for cs unless Delete defers it.
func (r *run) collectionDone(cs *collStats) *collStats {
	if !r.e.Delete {
		r.e.emit(CollectionDone{Stats: cs.final()})
	}
	return cs
}

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
		err := retry.Do(ctx, r.e.policy(), func(int) error {
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
	bc := p.r.e.Checkpoint.(BatchCheckpoint)
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
	items, err := r.e.Rules.Split(davtext.CRLF(o.data))
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
		if _, batch := r.e.Checkpoint.(BatchCheckpoint); batch && !r.e.DryRun && nr != rec {
			*pending = append(*pending, nr)
		} else if r.e.Checkpoint != nil && !r.e.DryRun && nr != rec {
			if err := r.e.Checkpoint.Save(ctx, p.key, nr); err != nil {
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
		r.e.emit(ObjectDone{Collection: p.sc.Href, Href: href, UID: it.UID, Action: a})
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
			href, cond = dc.col.Href+EscapeSegment(ObjectName(it.UID, r.e.protocol().Ext)), Cond{Create: true}
		}
	}
	if r.e.DryRun {
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
		uid, got.Hash, rerr = r.e.Rules.Fingerprint(davtext.CRLF(data))
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
	err := retry.Do(ctx, p.r.e.policy(), func(int) error {
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
	idx, dups, err := index(ctx, p.r.dst, d.col, p.r.e.Rules, p.r.e.batch())
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

// collections discovers one side's collections, retrying transient failures
// (a reset or a 503 during discovery) like every other request of a copy.
func (e *Copier) collections(ctx context.Context, side interface {
	Collections(ctx context.Context) ([]Collection, error)
}) ([]Collection, error) {
	var cols []Collection
	err := retry.Do(ctx, e.policy(), func(int) error {
		var err error
		cols, err = side.Collections(ctx)
		return err
	}, nil)
	return cols, err
}
