package imapcopy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/retry"
)

// Defaults for zero Copier fields.
const (
	DefaultConcurrency    = 3                    // folders in parallel per account (bench/README.md, fetch.sh)
	WANConcurrency        = 8                    // folders in parallel per account when a server is WANRoundTrip or more away
	WANRoundTrip          = 5 * time.Millisecond // round trip from which WANConcurrency applies
	DefaultMaxWriters     = 1                    // APPEND connections per destination mailbox (at most 4 advised)
	DefaultSpillThreshold = 8 << 20              // message size above which a message is always spooled to a temp file
	DefaultMemoryBudget   = 16 << 20             // bytes of message bodies one Copy call holds in RAM at most
	WANMemoryBudget       = 48 << 20             // DefaultMemoryBudget when a server is WANRoundTrip or more away
	DefaultMaxRepeat      = 20                   // identical commands in a row before a NOOP
	DefaultInFlightSettle = time.Second
	fetchChunk            = 200 // UIDs per FETCH of message bodies
	uidChunk              = 500 // UIDs per STORE (keeps command lines well under 8 KB)
)

// Copier copies every folder of one IMAP mailbox to another: exact bytes,
// flags, keywords and INTERNALDATE, resumable through its Checkpoint. The
// fields are its options; zero values mean the documented defaults.
//
// A Copier may be used for several Copy calls, also concurrently, as long as
// its fields are not changed meanwhile.
type Copier struct {
	// Concurrency is how many folders are copied in parallel, each on its
	// own connections; 0 means DefaultConcurrency, or WANConcurrency when
	// the round trip to either server, timed with a NOOP after login, is
	// WANRoundTrip or more: each folder pays a few round trips of set-up
	// and proof, which other folders' transfers then fill. Against Zimbra
	// or Carbonio, whose ImapCommandThrottle runs one FETCH per account at
	// a time, 3 was fastest on loopback in bench/fetch.sh: more readers
	// mostly wait for the account's FETCH lock. With Budget shared by
	// other Copy calls under way against the same servers (a plan's
	// accounts), a zero Concurrency is divided among them: the default
	// is what one server gets, not what one account does. Either is cut
	// to half of the Copy's share of Budget: the budget's connections per
	// server divided by the Copy calls under way against that server
	// when this one started.
	Concurrency int
	// MaxWriters caps APPEND connections per destination mailbox; 0 means
	// DefaultMaxWriters. One writer is fastest into a local Dovecot (its
	// writers serialise on the mailbox lock); over a WAN into Carbonio up
	// to 4 help (Zimbra has ~15 lock waiters per mailbox: never more).
	MaxWriters int
	// AppendBatch caps the messages sent in one APPEND command when the
	// destination offers MULTIAPPEND (RFC 3502) and is reached through an
	// Account; 0 means DefaultAppendBatch, 1 sends each message alone.
	AppendBatch int
	// Budget caps connections per server across every Copier sharing it;
	// nil means a private budget of DefaultConnsPerServer.
	Budget *ConnBudget
	// Checkpoint remembers copies for resume and re-runs; nil means an
	// in-memory one (nothing survives the process).
	Checkpoint Checkpoint
	// Include, when not empty, limits the copy to source folders matching
	// one of its patterns; Exclude skips folders matching one of its
	// patterns. Patterns match the source name written with '/' as
	// separator; '*' matches anything (separators too), '?' one character.
	Include, Exclude []string
	// Map renames folders explicitly: source name → destination name, both
	// written with '/' as separator.
	Map map[string]string
	// SkipFolder, when set, may skip a folder (e.g. a Zimbra mountpoint or
	// saved search) with a reason. It gets the name with '/' separators.
	SkipFolder func(name string) (skip bool, reason string)
	// SkipDeleted leaves out messages flagged \Deleted (not yet expunged).
	// By default they are copied with the flag.
	SkipDeleted bool
	// Delete deletes on the destination the copies of messages that the
	// source no longer has (deleted or moved away since an earlier run),
	// as a last pass before a cut-over needs. Only messages in the
	// Checkpoint's UID map are ever deleted, so it needs the checkpoint of
	// the earlier runs: messages it appended, or found on the destination
	// as the copy of a source message; mail without a source counterpart
	// is never touched. Deletion uses UID EXPUNGE (UIDPLUS); without it nothing is
	// deleted, and each message whose copy stays is reported once in
	// FolderStats.DeleteFailed. Off by default.
	Delete bool
	// MaxSize skips and reports messages larger than this many bytes; 0
	// means no limit besides the destination's APPENDLIMIT.
	MaxSize int64
	// DryRun reads both sides and reports what would be done, writing
	// nothing to the destination or the checkpoint.
	DryRun bool
	// DeepVerify hashes whole messages on both sides in the final proof
	// instead of comparing size, flags, INTERNALDATE, Message-ID and Date
	// and a sample of whole bodies.
	DeepVerify bool
	// VerifySample is the fraction of copied messages the default proof
	// reads whole on both sides (see DefaultVerifySample for the odds); 0
	// means DefaultVerifySample, a negative value no sample.
	VerifySample float64
	// VerifySeed chooses the sample; 0 means a random seed per Copy, which
	// the Verification reports.
	VerifySeed uint64
	// SpillThreshold is the message size above which a message is spooled
	// to a temporary file rather than held in memory; 0 means
	// DefaultSpillThreshold.
	SpillThreshold int64
	// MemoryBudget caps the bytes of message bodies one Copy call holds in
	// memory, in use or kept for reuse; a message that does not fit is
	// spooled to a temporary file like one over SpillThreshold. 0 means
	// DefaultMemoryBudget, or WANMemoryBudget when the round trip to
	// either server is WANRoundTrip or more: more messages are then in
	// flight.
	MemoryBudget int64
	// TempDir holds spooled messages; "" means os.TempDir.
	TempDir string
	// MaxRepeat is how many identical commands may be sent in a row on one
	// connection before a NOOP is interleaved; 0 means DefaultMaxRepeat,
	// negative disables.
	MaxRepeat int
	// RetryAttempts is how many times a folder pass is tried when the
	// connection drops or the server is busy; 0 means 6.
	RetryAttempts int
	// InFlightSettle is how long a pass waits, when it finds messages that
	// were in flight when an earlier pass stopped, before it looks for them
	// on the destination (a server may commit an APPEND after the client
	// went away); 0 means DefaultInFlightSettle, negative means no wait.
	InFlightSettle time.Duration
	// OnEvent, when set, receives progress events. It may be called
	// concurrently and must return quickly.
	OnEvent func(Event)
	// OnError, when set, decides per failed item (a message or a folder):
	// nil records the failure and goes on, non-nil aborts Copy with it.
	// It may be called concurrently.
	OnError func(item string, err error) error
	// Logger receives debug and warning logs; nil means silent.
	Logger *slog.Logger
}

// connError marks failures of the connection rather than answers of the
// server: the folder pass is tried again.
type connError struct{ err error }

func (e connError) Error() string           { return e.err.Error() }
func (e connError) Unwrap() error           { return e.err }
func (e connError) RetryClass() retry.Class { return retry.Transient }

// fatalError marks errors that must abort the whole Copy (checkpoint
// writes, aborts asked by OnError).
type fatalError struct{ err error }

func (f fatalError) Error() string           { return f.err.Error() }
func (f fatalError) Unwrap() error           { return f.err }
func (f fatalError) RetryClass() retry.Class { return retry.Fatal }

func (c *Copier) emit(e Event) {
	if c.OnEvent != nil {
		c.OnEvent(e)
	}
}

func (c *Copier) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(discardHandler{})
	}
	return c.Logger
}

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// itemError lets OnError abort; nil means go on.
func (c *Copier) itemError(item string, err error) error {
	if c.OnError == nil {
		return nil
	}
	if abort := c.OnError(item, err); abort != nil {
		return fatalError{abort}
	}
	return nil
}

func (c *Copier) concurrency() int {
	if c.Concurrency > 0 {
		return c.Concurrency
	}
	return DefaultConcurrency
}

func (c *Copier) maxWriters() int {
	if c.MaxWriters > 0 {
		return c.MaxWriters
	}
	return DefaultMaxWriters
}

func (c *Copier) spill() int64 {
	if c.SpillThreshold > 0 {
		return c.SpillThreshold
	}
	return DefaultSpillThreshold
}

func (c *Copier) memoryBudget() int64 {
	if c.MemoryBudget > 0 {
		return c.MemoryBudget
	}
	return DefaultMemoryBudget
}

func (c *Copier) settle() time.Duration {
	switch {
	case c.InFlightSettle < 0:
		return 0
	case c.InFlightSettle == 0:
		return DefaultInFlightSettle
	}
	return c.InFlightSettle
}

func (c *Copier) maxRepeat() int {
	switch {
	case c.MaxRepeat < 0:
		return 0
	case c.MaxRepeat == 0:
		return DefaultMaxRepeat
	}
	return c.MaxRepeat
}

// session is the state of one Copy call.
type session struct {
	c        *Copier
	memo     refusalMemo // refusals remembered across the folder passes of this Copy
	src, dst *pool
	dstRaw   *rawPool // append connections of the destination; nil: append through go-imap
	cp       Checkpoint
	srcInfo  sideInfo
	dstInfo  sideInfo
	mem      *memBudget // message bodies in memory
	seed     uint64     // chooses the proof's sample (Copier.VerifySeed)
	// windowBytes bounds the message bytes of a writer's commands in
	// flight.
	windowBytes int64
}

// sideInfo is what one LIST pass learned about a server.
type sideInfo struct {
	ns          nsInfo
	caps        imap.CapSet
	list        []*imap.ListData
	bad         []string // raw names that are not modified UTF-7
	byName      map[string]*imap.ListData
	appendLimit int64
	rtt         time.Duration // a NOOP's round trip after login
}

func (s sideInfo) has(cp imap.Cap) bool { return s.caps.Has(cp) }

// Copy copies every selected folder of src into dst and verifies the
// result. Per-item problems are reported in Stats; the error is non-nil only
// when the copy could not go on (authentication, cancelled context,
// unwritable checkpoint, an abort from OnError, or a failed folder listing).
func (c *Copier) Copy(ctx context.Context, dst, src Dialer) (*Stats, error) {
	return c.run(ctx, dst, src, false)
}

// Verify compares src and dst folder by folder without copying anything: the
// fingerprint proof of Copy, usable alone. Folders missing on dst are
// reported with every source message missing.
func (c *Copier) Verify(ctx context.Context, dst, src Dialer) (*Stats, error) {
	return c.run(ctx, dst, src, true)
}

func (c *Copier) run(ctx context.Context, dst, src Dialer, verifyOnly bool) (*Stats, error) {
	budget := c.Budget
	if budget == nil {
		budget = NewConnBudget(0)
	}
	s := &session{c: c, src: newPool(src, budget), dst: newPool(dst, budget), cp: c.Checkpoint,
		mem: newMemBudget(c.memoryBudget()), seed: c.VerifySeed}
	s.src.side, s.dst.side = obs.SideSource, obs.SideDestination
	for s.seed == 0 {
		s.seed = rand.Uint64()
	}
	if s.cp == nil {
		s.cp = NewMemoryCheckpoint()
	}
	if c.DryRun || verifyOnly {
		s.cp = readOnlyCheckpoint{s.cp}
	}
	defer s.src.closeAll()
	defer s.dst.closeAll()
	defer budget.join(s.src.key, s.dst.key)()
	if ad, ok := dst.(appendDialer); ok && !c.DryRun && !verifyOnly {
		s.dstRaw = newRawPool(ad, budget, dialerKey(dst))
		defer s.dstRaw.closeAll()
	}
	stats := &Stats{Source: src.String(), Destination: dst.String(), DryRun: c.DryRun}
	start := time.Now()

	// Log in to both sides first: an authentication failure stops here,
	// before any fan-out can lock an account.
	var srcErr, dstErr error
	var wg sync.WaitGroup
	wg.Add(2)
	// A dropped connection or a busy server while logging in or listing is
	// retried with backoff like any folder pass; refused credentials are not.
	listRetrying := func(p *pool, source bool, info *sideInfo, errp *error) {
		defer wg.Done()
		*errp = retry.Do(ctx, retry.Policy{Attempts: c.RetryAttempts}, func(int) error {
			var err error
			*info, err = s.listSide(ctx, p, source)
			return err
		}, func(attempt int, err error, wait time.Duration) {
			c.log().Info("retrying folder listing", "source", source, "attempt", attempt, "error", err, "wait", wait)
		})
	}
	go listRetrying(s.src, true, &s.srcInfo, &srcErr)
	go listRetrying(s.dst, false, &s.dstInfo, &dstErr)
	wg.Wait()
	if srcErr != nil {
		return stats, srcErr
	}
	if dstErr != nil {
		return stats, dstErr
	}
	c.log().Debug("listed both sides", "source_folders", len(s.srcInfo.list), "dest_folders", len(s.dstInfo.list), "elapsed", time.Since(start))
	folders := s.sourceFolders()
	plans, err := c.planFolders(folders, s.srcInfo.ns, s.dstInfo.ns, s.dstInfo.list, s.srcInfo.has(imap.CapSpecialUse))
	if err != nil {
		return stats, err
	}
	plans = append(plans, c.badFolderPlans(s.srcInfo.bad)...)
	if !c.DryRun && !verifyOnly {
		if err := s.createFolders(ctx, plans); err != nil {
			return stats, err
		}
	}
	stats.Folders = make([]FolderStats, len(plans))
	conc := c.concurrency()
	memory := c.memoryBudget()
	if rtt := max(s.srcInfo.rtt, s.dstInfo.rtt); rtt >= WANRoundTrip {
		if c.Concurrency == 0 {
			conc = WANConcurrency
		}
		if c.MemoryBudget == 0 {
			// More messages are in flight over a slow link: without the
			// room, they would go through temporary files.
			memory = WANMemoryBudget
			s.mem = newMemBudget(memory)
		}
		c.log().Debug("round trip over a WAN: more folders in parallel", "rtt", rtt, "folders", conc, "memory", memory)
	}
	if c.Concurrency == 0 {
		// Other accounts copying against the same servers already run in
		// parallel with this one: the default is the folders in flight
		// per server, shared among them. On two cores four accounts at
		// one folder each beat three folders each (bench/domainwan.sh).
		if n := max(budget.sessionsOf(s.src.key), budget.sessionsOf(s.dst.key)); n > 1 {
			conc = max(1, conc/n)
		}
	}
	// Each folder holds a connection to each side and, on the
	// destination, one to append: half of this Copy's share of the budget
	// (the whole of it, or its part when other accounts' Copy calls share
	// it), so that folders seldom wait for each other's connections.
	if n := min(budget.share(s.src.key), budget.share(s.dst.key)) / 2; conc > n {
		conc = max(n, 1)
	}
	stats.FolderConcurrency = conc
	stats.RoundTripMillis = float64(max(s.srcInfo.rtt, s.dstInfo.rtt).Microseconds()) / 1000
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	// A writer's commands in flight hold their messages in memory: each
	// folder gets a share of the memory budget for them, so that they do
	// not push message bodies into temporary files.
	s.windowBytes = min(maxWindowBytes, max(minWindowBytes, memory/int64(4*conc)))
	// Largest folders first so that the long ones start early.
	order := largestFirst(plans)
	for _, i := range order {
		p := plans[i]
		fs := &stats.Folders[i]
		fs.Source, fs.Destination, fs.Renamed, fs.Skipped, fs.NoSelect = p.Src.Name, p.Dst, p.Renamed, p.Skip, p.NoSelect
		if p.Err != "" {
			fs.Err = p.Err
			c.emit(FolderDone{Stats: *fs})
			if abort := c.itemError("folder "+p.Display, errors.New(p.Err)); abort != nil {
				return stats, abort
			}
			continue
		}
		if p.Skip != "" || p.NoSelect {
			if p.Skip != "" {
				c.emit(FolderDone{Stats: *fs})
			}
			continue
		}
		if gctx.Err() != nil {
			// The run stops: no new folder starts. Not started folders are
			// marked, not reported one by one.
			fs.Cancelled = true
			continue
		}
		g.Go(func() (gerr error) {
			defer func() {
				// A panic in the bookkeeping below (an OnEvent or OnError
				// hook) fails this folder too, not the process.
				if v := recover(); v != nil {
					fs.Err = (&PanicError{Value: v}).Error()
					gerr = nil
				}
			}()
			if gctx.Err() != nil {
				fs.Cancelled = true
				return nil
			}
			err := func() (err error) {
				defer recoverTo(&err)
				return s.folderWithRetry(gctx, p, fs, verifyOnly)
			}()
			if pe := (*PanicError)(nil); errors.As(err, &pe) {
				c.log().Error("panic in a folder pass", "folder", p.Display, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
			}
			if err != nil && gctx.Err() != nil && ctx.Err() != nil {
				// Stopped by the caller: counted among the cancelled.
				fs.Cancelled = true
				return err
			}
			if err != nil {
				fs.Err = err.Error()
				if retry.Classify(err) == retry.Fatal || gctx.Err() != nil {
					c.emit(FolderDone{Stats: *fs})
					return err
				}
				if abort := c.itemError("folder "+p.Display, err); abort != nil {
					return abort
				}
			}
			c.emit(FolderDone{Stats: *fs})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return stats, errors.Join(err, ctx.Err())
		}
		return stats, err
	}
	return stats, ctx.Err()
}

func largestFirst(plans []folderPlan) []int {
	idx := make([]int, len(plans))
	for i := range idx {
		idx[i] = i
	}
	size := func(p folderPlan) uint32 {
		if p.Src.Status != nil && p.Src.Status.NumMessages != nil {
			return *p.Src.Status.NumMessages
		}
		return 0
	}
	// O(n log n): an account may hold 100,000 folders.
	sort.SliceStable(idx, func(a, b int) bool { return size(plans[idx[a]]) > size(plans[idx[b]]) })
	return idx
}

// folderWithRetry runs folder passes until one succeeds, a non-transient
// error occurs or the attempts run out. Counters survive the attempts.
func (s *session) folderWithRetry(ctx context.Context, p folderPlan, fs *FolderStats, verifyOnly bool) error {
	copied := map[imap.UID]bool{}
	// A round of attempts that moved the folder forward (messages copied,
	// refused or set to go without keywords) earns a new round: a folder
	// whose destination drops the connection after every few refusals
	// (Zimbra's 5 errors in a row) gets through, a folder that fails the
	// same way every time does not.
	for {
		before := len(copied) + s.memo.size(p.Src.Name)
		err := s.folderAttempts(ctx, p, fs, verifyOnly, copied)
		if err == nil || ctx.Err() != nil || retry.Classify(err) != retry.Transient ||
			len(copied)+s.memo.size(p.Src.Name) == before {
			return err
		}
		s.c.log().Warn("folder passes failed after progress; trying again", "folder", p.Display, "err", err)
	}
}

// folderAttempts is one round of RetryAttempts folder passes.
func (s *session) folderAttempts(ctx context.Context, p folderPlan, fs *FolderStats, verifyOnly bool, copied map[imap.UID]bool) error {
	return retry.Do(ctx, retry.Policy{Attempts: s.c.RetryAttempts}, func(attempt int) error {
		keepCopied, keepBytes, keepDeleted := fs.Copied, fs.Bytes, fs.Deleted
		*fs = FolderStats{Source: fs.Source, Destination: fs.Destination, Renamed: fs.Renamed,
			Copied: keepCopied, Bytes: keepBytes, Deleted: keepDeleted}
		var err error
		if verifyOnly {
			err = s.verifyOnly(ctx, p, fs)
		} else {
			err = s.copyFolder(ctx, p, fs, copied)
		}
		// A failure that is not a server's answer (a closed or broken
		// connection, a parse error) is worth a new pass; a panic is not.
		if _, refused := errIsIMAPNo(err); err != nil && !refused && !isPanic(err) && retry.Classify(err) == retry.Permanent {
			err = connError{err}
		}
		return err
	}, func(attempt int, err error, wait time.Duration) {
		s.c.log().Warn("folder pass failed; retrying", "folder", p.Display, "attempt", attempt, "wait", wait, "err", err)
	})
}

func errIsIMAPNo(err error) (*imap.Error, bool) {
	var ie *imap.Error
	if errors.As(err, &ie) && (ie.Type == imap.StatusResponseTypeNo || ie.Type == imap.StatusResponseTypeBad) {
		return ie, true
	}
	return nil, false
}

func itemName(folder string, uid imap.UID) string {
	return fmt.Sprintf("%s uid %d", folder, uid)
}

func isTransientOrFatal(err error) bool {
	cl := retry.Classify(err)
	return cl == retry.Transient || cl == retry.Fatal
}

func joinLines(l []string) string { return strings.Join(l, "; ") }
