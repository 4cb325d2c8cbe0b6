package dav

import (
	"context"
	"errors"
	"log/slog"
	"sync"

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
