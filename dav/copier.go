package dav

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/zxmigrate/zxmigrate/retry"
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
	// DefaultBatchSize, lowered for a collection too small to fill
	// Concurrency batches so that its writes overlap (down to 4 objects
	// per batch).
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
func (c *Copier) lastMemo(src Source) *sourceMemo {
	c.memoMu.Lock()
	defer c.memoMu.Unlock()
	if c.memo.forSource(src) {
		return c.memo
	}
	return nil
}

func (c *Copier) protocol() *Protocol { return c.Rules.Protocol() }

func (c *Copier) conc() int {
	if c.Concurrency > 0 {
		return c.Concurrency
	}
	return DefaultConcurrency
}

func (c *Copier) batch() int {
	if c.BatchSize > 0 {
		return c.BatchSize
	}
	return DefaultBatchSize
}

// minSpreadBatch is the smallest batch a collection is split into to use
// the concurrency: below it, a multiget costs about as much as the writes
// it feeds.
const minSpreadBatch = 4

// batchFor returns the batch size for a collection of n objects to read.
// Each batch writes its objects one after another, so with the default
// BatchSize a collection of fewer than Concurrency full batches is split
// into up to Concurrency batches of at least minSpreadBatch objects: its
// writes then overlap, which over a slow link lets the per-host pacer,
// not the round trip of each write, set the pace. An explicit BatchSize
// is kept as given.
func (c *Copier) batchFor(n int) int {
	size := c.batch()
	if c.BatchSize > 0 {
		return size
	}
	if per := max((n+c.conc()-1)/c.conc(), minSpreadBatch); per < size {
		return per
	}
	return size
}

func (c *Copier) policy() retry.Policy {
	p := c.retry
	if p.Attempts == 0 {
		p.Attempts = 4
	}
	return p
}

func (c *Copier) emit(ev Event) {
	if c.OnEvent != nil {
		c.OnEvent(ev)
	}
}

func (c *Copier) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(discardHandler{})
}

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// check reports a Copier or call that cannot work.
func (c *Copier) check(dst Destination, src Source) error {
	if c.Rules == nil {
		return errors.New("dav: Copier.Rules is nil (caldav.Rules{} or carddav.Rules{})")
	}
	if dst == nil || src == nil {
		return errors.New("dav: Copy needs a destination and a source")
	}
	return nil
}

// collections discovers one side's collections, retrying transient failures
// (a reset or a 503 during discovery) like every other request of a copy.
func (c *Copier) collections(ctx context.Context, side interface {
	Collections(ctx context.Context) ([]Collection, error)
}) ([]Collection, error) {
	var cols []Collection
	err := retry.Do(ctx, c.policy(), func(int) error {
		var err error
		cols, err = side.Collections(ctx)
		return err
	}, nil)
	return cols, err
}
