package dav

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/retry"
)

// fixedTarget is implemented by destinations addressed by a collection URL:
// every source collection goes there.
type fixedTarget interface {
	Fixed() (Collection, bool)
}

// run is the state of one Copy.
type run struct {
	c       *Copier
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
func (c *Copier) Copy(ctx context.Context, dst Destination, src Source) (*Stats, error) {
	if err := c.check(dst, src); err != nil {
		return nil, err
	}
	if c.Delete {
		if c.Checkpoint == nil {
			return nil, errors.New("dav: Delete needs a Checkpoint (only objects recorded as copied are deleted)")
		}
		if _, ok := c.Checkpoint.(ForgetCheckpoint); !ok {
			return nil, errors.New("dav: Delete needs a Checkpoint that can forget records (ForgetCheckpoint)")
		}
	}
	srcCols, err := c.collections(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("dav: source %ss: %w", c.protocol().Name, err)
	}
	dstCols, err := c.collections(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("dav: destination %ss: %w", c.protocol().Name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &run{c: c, src: src, dst: dst, sem: make(chan struct{}, c.conc()), cancel: cancel, dstCols: map[string]*dstColl{},
		attempted: map[string]bool{}, claimed: map[string]bool{}, memo: newSourceMemo(src)}
	c.memoMu.Lock()
	c.memo = r.memo
	c.memoMu.Unlock()
	for _, col := range dstCols {
		r.dstCols[col.Name] = &dstColl{col: col}
	}
	per := make([][]*collStats, len(srcCols))
	var g errgroup.Group
	g.SetLimit(c.conc())
	for i, sc := range srcCols {
		g.Go(func() error {
			per[i] = r.copyTree(ctx, sc, 0)
			return nil
		})
	}
	g.Wait()
	if c.Delete && !r.aborted() && ctx.Err() == nil {
		per = append(per, r.propagate(ctx))
	}
	stats := &Stats{}
	for _, p := range per {
		for _, cs := range p {
			out := cs.final()
			if c.Delete {
				c.emit(CollectionDone{Stats: out})
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
	r.c.emit(ObjectFailed{Collection: cs.Source, Item: item, UID: uid, Err: err})
	r.c.log().Debug("dav: item failed", "item", item, "uid", uid, "err", err)
	if retry.Classify(err) == retry.Fatal {
		r.fail(err)
		return
	}
	if r.c.OnError != nil {
		if aerr := r.c.OnError(item, err); aerr != nil {
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
	if !r.c.DryRun {
		c, err := r.dst.CreateCollection(ctx, want)
		if err != nil {
			return nil, fmt.Errorf("dav: create %s %q: %w", r.c.protocol().Name, want.Name, err)
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
	cs := &collStats{CollectionStats: CollectionStats{Source: sc.Href, Name: sc.Name, Nested: sc.Nested, DryRun: r.c.DryRun}}
	if sc.Nested != "" {
		cs.Notes = append(cs.Notes, ItemNote{Item: sc.Href, Note: fmt.Sprintf("nested collection %q flattened to %q", sc.Nested, sc.Name)})
	}
	var refs []Ref
	err := retry.Do(ctx, r.c.policy(), func(int) error {
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
	r.c.emit(CollectionStarted{Source: sc.Href, Destination: main.col.Href, Objects: len(refs)})
	key := sc.Href + " => " + main.col.Href
	recs := map[string][]Record{}
	if r.c.Checkpoint != nil {
		list, err := r.c.Checkpoint.Records(ctx, key)
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
	if r.c.Delete {
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
				r.c.emit(ObjectDone{Collection: sc.Href, Href: rec.DstHref, UID: rec.UID, Action: Unchanged})
			}
			continue
		}
		toRead = append(toRead, ref)
	}
	p := &pair{r: r, sc: sc, main: main, cs: cs, key: key, recs: recs, present: present}
	size := r.c.batchFor(len(toRead))
	var g errgroup.Group
	for start := 0; start < len(toRead); start += size {
		batch := toRead[start:min(start+size, len(toRead))]
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
	if !r.c.Delete {
		r.c.emit(CollectionDone{Stats: cs.final()})
	}
	return cs
}
