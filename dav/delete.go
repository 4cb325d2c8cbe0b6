package dav

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/retry"
)

// pairState is what Delete needs of one collection pair copied by a run.
type pairState struct {
	key string
	cs  *collStats
	// listed holds the clean paths the source listing returned.
	listed map[string]bool
	// recs are the checkpoint records read before the copy, by SrcHref.
	recs map[string][]Record
	// present holds the destination paths found for recs (nil without
	// records).
	present map[string]bool

	mu     sync.Mutex
	forget []Record
}

func (p *pairState) drop(rec Record) {
	p.mu.Lock()
	p.forget = append(p.forget, rec)
	p.mu.Unlock()
}

// attempt notes that this run tried to copy the source collection href.
func (r *run) attempt(href string) {
	if !r.c.Delete {
		return
	}
	r.delMu.Lock()
	r.attempted[CleanPath(href)] = true
	r.delMu.Unlock()
}

// claim notes that this run wrote or matched the destination object at
// href: it is never deleted by this run.
func (r *run) claim(href string) {
	if !r.c.Delete || href == "" {
		return
	}
	r.delMu.Lock()
	r.claimed[CleanPath(href)] = true
	r.delMu.Unlock()
}

// candidate is one destination object to delete, with the records (one
// or more, from one or more pairs) that point at it.
type candidate struct {
	path string
	recs []Record
	of   []*pairState
}

// propagate runs after every collection is copied: it deletes at the
// destination the recorded objects whose source objects are gone, and
// returns an entry per checkpoint pair whose source collection is gone.
func (r *run) propagate(ctx context.Context) []*collStats {
	fc := r.c.Checkpoint.(ForgetCheckpoint)
	r.delMu.Lock()
	pairs := append([]*pairState(nil), r.pairs...)
	claimed := make(map[string]bool, len(r.claimed))
	for k := range r.claimed {
		claimed[k] = true
	}
	attempted := r.attempted
	r.delMu.Unlock()
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].key < pairs[j].key })

	// Objects whose source is still listed stay, wherever they are.
	seen := map[string]bool{}
	for _, p := range pairs {
		seen[p.key] = true
		for _, rs := range p.recs {
			for _, rec := range rs {
				if p.listed[CleanPath(rec.SrcHref)] {
					claimed[CleanPath(rec.DstHref)] = true
				}
			}
		}
	}
	// So do the objects of the other pairs of the checkpoint: collections
	// that failed before their records were read, or are gone.
	keys, err := fc.Collections(ctx)
	if err != nil {
		r.fail(fmt.Errorf("dav: read checkpoint: %w", err))
		return nil
	}
	var gone []*collStats
	for _, k := range keys {
		if seen[k] {
			continue
		}
		recs, err := fc.Records(ctx, k)
		if err != nil {
			r.fail(fmt.Errorf("dav: read checkpoint: %w", err))
			return nil
		}
		for _, rec := range recs {
			claimed[CleanPath(rec.DstHref)] = true
		}
		src, dst, _ := strings.Cut(k, " => ")
		if len(recs) == 0 || attempted[CleanPath(src)] {
			continue // its failure is reported with the collection
		}
		gone = append(gone, &collStats{CollectionStats: CollectionStats{Source: src, Destination: dst, Gone: true,
			HeldBack: len(recs), DryRun: r.c.DryRun, Notes: []ItemNote{{Item: src, Note: fmt.Sprintf(
				"the source collection is gone (or not among this run's collections): %d deletions held back; the destination collection and its objects are kept", len(recs))}}}})
	}

	deleter, canDelete := r.dst.(Deleter)
	byPath := map[string]*candidate{}
	var order []*candidate
	for _, p := range pairs {
		var cands []Record
		for _, rs := range p.recs {
			for _, rec := range rs {
				if !p.listed[CleanPath(rec.SrcHref)] {
					cands = append(cands, rec)
				}
			}
		}
		if len(cands) == 0 {
			continue
		}
		sort.Slice(cands, func(i, j int) bool {
			if cands[i].SrcHref != cands[j].SrcHref {
				return cands[i].SrcHref < cands[j].SrcHref
			}
			return cands[i].UID < cands[j].UID
		})
		p.cs.mu.Lock()
		failed := p.cs.Failed
		p.cs.mu.Unlock()
		held := ""
		switch {
		case len(p.listed) == 0:
			held = fmt.Sprintf("the source lists no objects; %d deletions held back", len(cands))
		case failed > 0:
			held = fmt.Sprintf("%d objects of this collection failed; %d deletions held back until a run without failures", failed, len(cands))
		case !canDelete:
			held = fmt.Sprintf("the destination cannot delete objects (REST import); %d deletions not done", len(cands))
		}
		if held != "" {
			p.cs.add(func(s *CollectionStats) {
				s.HeldBack += len(cands)
				s.Notes = append(s.Notes, ItemNote{Item: p.cs.Source, Note: held})
			})
			continue
		}
		for _, rec := range cands {
			path := CleanPath(rec.DstHref)
			if rec.DstHref == "" || claimed[path] {
				// Another source object's copy lives there now (moved, or
				// matched by UID): only the stale record goes.
				if rec.DstHref != "" {
					p.cs.add(func(s *CollectionStats) {
						s.Notes = append(s.Notes, ItemNote{Item: rec.SrcHref, UID: rec.UID,
							Note: fmt.Sprintf("gone from the source; %s not deleted: it holds the copy of another source object", rec.DstHref)})
					})
				}
				p.drop(rec)
				continue
			}
			c := byPath[path]
			if c == nil {
				c = &candidate{path: path}
				byPath[path] = c
				order = append(order, c)
			}
			c.recs = append(c.recs, rec)
			c.of = append(c.of, p)
		}
	}

	var g errgroup.Group
	g.SetLimit(r.c.conc())
	for _, c := range order {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			r.deleteOne(ctx, deleter, c)
			return nil
		})
	}
	g.Wait()
	if r.c.DryRun {
		return gone
	}
	for _, p := range pairs {
		if len(p.forget) == 0 {
			continue
		}
		if err := fc.Forget(context.WithoutCancel(ctx), p.key, p.forget); err != nil {
			r.fail(fmt.Errorf("dav: write checkpoint: %w", err))
			break
		}
	}
	return gone
}

// deleteOne deletes the destination object of c, counted in the first
// pair that recorded it.
func (r *run) deleteOne(ctx context.Context, d Deleter, c *candidate) {
	rec, p := c.recs[0], c.of[0]
	deleted := func() {
		p.cs.add(func(s *CollectionStats) { s.Deleted++ })
		for i := range c.recs {
			c.of[i].drop(c.recs[i])
		}
		r.c.emit(ObjectDeleted{Collection: p.cs.Source, Href: rec.DstHref, SrcHref: rec.SrcHref, UID: rec.UID})
	}
	kept := func(why string) {
		p.cs.add(func(s *CollectionStats) {
			s.Kept++
			s.Notes = append(s.Notes, ItemNote{Item: rec.SrcHref, UID: rec.UID,
				Note: fmt.Sprintf("kept: %s (%s; the source no longer has it)", why, rec.DstHref)})
		})
		// The object is the destination's own now: never deleted later.
		for i := range c.recs {
			c.of[i].drop(c.recs[i])
		}
	}
	failed := func(err error) {
		if ctx.Err() != nil {
			return
		}
		r.itemFailed(p.cs, rec.SrcHref, rec.UID, fmt.Errorf("dav: delete %s (gone from the source): %w", rec.DstHref, err), false)
	}
	if p.present != nil && !p.present[c.path] {
		deleted() // the destination lost it already
		return
	}
	if r.c.DryRun {
		p.cs.add(func(s *CollectionStats) { s.Deleted++ })
		r.c.emit(ObjectDeleted{Collection: p.cs.Source, Href: rec.DstHref, SrcHref: rec.SrcHref, UID: rec.UID})
		return
	}
	etag := rec.DstETag
	if etag == "" {
		// No ETag was recorded: delete only what still holds the content
		// written, under the ETag it has now.
		dir := c.path
		if i := strings.LastIndex(dir, "/"); i >= 0 {
			dir = dir[:i+1]
		}
		got, uid, err := r.readDst(ctx, Collection{Href: dir}, rec.DstHref)
		switch {
		case IsStatus(err, http.StatusNotFound) || IsStatus(err, http.StatusGone):
			deleted()
			return
		case err != nil:
			failed(err)
			return
		case uid != rec.UID || got.Hash != rec.Hash:
			kept("changed on the destination")
			return
		case got.ETag == "":
			kept("the destination gives no ETag, so it cannot be deleted under a precondition")
			return
		}
		etag = got.ETag
	}
	err := retry.Do(ctx, r.c.policy(), func(int) error { return d.Delete(ctx, rec.DstHref, etag) }, nil)
	switch {
	case err == nil || IsStatus(err, http.StatusNotFound) || IsStatus(err, http.StatusGone):
		deleted()
	case IsStatus(err, http.StatusPreconditionFailed):
		kept("changed on the destination")
	default:
		failed(err)
	}
}
