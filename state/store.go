package state

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio/files"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/imapcopy"
)

// Store is the state of one migration: its runs, accounts, phase statuses,
// the copy engines' checkpoints and the coordination of the runners that
// share it. *SQLite (one machine, a file) and *Postgres (any number of
// runners on any number of hosts) implement it, and both pass the same
// conformance suite (package state/statetest).
//
// A Store is safe for concurrent use.
type Store interface {
	// Checkpoints are the store's per-account writers, without fencing.
	// One process alone on a store uses them as they are; a runner that
	// shares the store writes an account's data through Fenced(lease).
	Checkpoints

	// Backend names the implementation: "sqlite" or "postgres".
	Backend() string
	// Path returns the state file, or the database URL without its
	// password.
	Path() string
	// ReadOnly reports whether the store refuses writes.
	ReadOnly() bool
	// Close releases the store (and, for OpenLocked, the state's lock).
	Close() error

	// StartRun records a new run and returns its id.
	StartRun(ctx context.Context, planHash string) (int64, error)
	// FinishRun records the end of run id with its outcome.
	FinishRun(ctx context.Context, id int64, outcome string) error
	// Runs lists the runs, oldest first.
	Runs(ctx context.Context) ([]RunInfo, error)

	// PutAccount inserts the account or updates its destination and size
	// (a size of 0 keeps the recorded one), keeping its status, phases and
	// claim.
	PutAccount(ctx context.Context, source, destination string, size int64) error
	// Account returns one account, or ok=false.
	Account(ctx context.Context, source string) (AccountRow, bool, error)
	// Accounts lists all accounts, by source address, with their leases
	// and progress: the status view across runners.
	Accounts(ctx context.Context) ([]AccountRow, error)
	// Phase returns one phase row, or ok=false.
	Phase(ctx context.Context, account, phase string) (PhaseRow, bool, error)
	// Phases lists every phase row, by account then phase name.
	Phases(ctx context.Context) ([]PhaseRow, error)
	// ResetPhases sets every phase whose status is one of from back to
	// "pending" and returns how many it changed (--retry-failed).
	ResetPhases(ctx context.Context, from ...string) (int64, error)
	// SaveReport stores the latest report (JSON).
	SaveReport(ctx context.Context, report []byte) error
	// LastReport returns the report stored by SaveReport, or ok=false.
	LastReport(ctx context.Context) ([]byte, bool, error)

	// Fenced returns the checkpoint writers of lease l's account: every
	// write checks, in its own transaction, that l is still the account's
	// live lease, and fails with an error matching ErrLeaseLost when it is
	// not (expired, released or taken over). Reads are not fenced.
	Fenced(l Lease) Checkpoints

	Coordinator
}

// Checkpoints are the writers of per-account data: the copy engines'
// checkpoints, phase statuses and progress. Store's own are not fenced;
// those of Store.Fenced refuse writes once their lease is lost.
type Checkpoints interface {
	// Mail returns the imapcopy checkpoint of one account pair, keyed
	// e.g. by "SRC -> DST". Every method commits before it returns.
	Mail(key string) imapcopy.Checkpoint
	// Calendars returns the calendar checkpoint of one account, a
	// dav.BatchCheckpoint and dav.ForgetCheckpoint.
	Calendars(account string) dav.Checkpoint
	// Contacts returns the contacts checkpoint of one account, a
	// dav.BatchCheckpoint and dav.ForgetCheckpoint.
	Contacts(account string) dav.Checkpoint
	// Files returns the files phase's store.
	Files() files.Store
	// SetPhase records the status and detail of one phase of an account
	// (or of GlobalAccount).
	SetPhase(ctx context.Context, account, phase, status, detail string) error
	// SetAccountStatus records an account's status, current phase and
	// error. The account must have been put.
	SetAccountStatus(ctx context.Context, source, phase, status, errText string) error
	// SetProgress records how many messages and bytes of the account are
	// copied so far, for the status view.
	SetProgress(ctx context.Context, source string, messages, bytes int64) error
}

// Coordinator holds the primitives that let many runners share one store:
// account leases, run-once global jobs and per-server slots. Times come
// from the store's clock (the database server's for PostgreSQL), so that
// the runners' clocks need not agree. On SQLite the same calls work inside
// one process.
type Coordinator interface {
	// ClaimAccount leases the largest open account (by size, then source)
	// that has no live lease to runner for ttl. ok is false when none is
	// left to claim: every open account is leased, or all are finished.
	// A claim of an account whose previous lease ran out unreleased is a
	// takeover: Lease.PrevRunner names the runner that lost it.
	// PostgreSQL claims with SELECT ... FOR UPDATE SKIP LOCKED, so
	// concurrent claims never wait for each other.
	ClaimAccount(ctx context.Context, runner string, ttl time.Duration) (l Lease, ok bool, err error)
	// Renew extends lease l to ttl from now (the heartbeat). It fails with
	// ErrLeaseLost when l is no longer live: a runner that gets it must
	// stop working on l.Key.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// Heartbeat extends every live lease and slot of runner to ttl from
	// now, in one round trip per kind, and returns how many it extended.
	Heartbeat(ctx context.Context, runner string, ttl time.Duration) (int, error)
	// Release ends lease l. For an account lease, finished=true closes the
	// account (it is never claimed again until ReopenAccounts);
	// finished=false leaves it open for the next claim. ErrLeaseLost when
	// l was no longer live (nothing changes then).
	Release(ctx context.Context, l Lease, finished bool) error
	// ReopenAccounts opens again the finished accounts whose status is one
	// of statuses (all finished accounts when none is given) and returns
	// how many.
	ReopenAccounts(ctx context.Context, statuses ...string) (int64, error)

	// ClaimGlobal tries to take the run-once job name (a global phase such
	// as "mta_stop") for runner. The answer is GlobalClaimed with the lease
	// (run the job, renew the lease, then FinishGlobal), GlobalRunning
	// while another runner holds a live lease on it, or GlobalDone /
	// GlobalFailed once it was finished. A job whose holder died (lease
	// ran out) is claimed again by the next caller.
	ClaimGlobal(ctx context.Context, name, runner string, ttl time.Duration) (Lease, GlobalStatus, error)
	// FinishGlobal records the end of global job l, ok or failed, with a
	// detail, and releases its lease. ErrLeaseLost when l was no longer
	// live: the job's result is then not recorded.
	FinishGlobal(ctx context.Context, l Lease, ok bool, detail string) error
	// Globals lists the global jobs, by name.
	Globals(ctx context.Context) ([]GlobalJob, error)
	// ReopenGlobal makes global job name claimable again (for a retry of a
	// failed job).
	ReopenGlobal(ctx context.Context, name string) error

	// AcquireSlot takes one slot of the budget key (e.g. "imap-src:
	// host:993") for runner, for ttl, when fewer than the key's limit are
	// held; ok is false when the budget is full. Without a limit for key
	// every request gets a slot. Slots of a dead runner run out with their
	// lease; Heartbeat keeps a live runner's.
	AcquireSlot(ctx context.Context, key, runner string, ttl time.Duration) (s Slot, ok bool, err error)
	// ReleaseSlot gives slot s back. Releasing a slot that already ran
	// out is not an error.
	ReleaseSlot(ctx context.Context, s Slot) error
	// SetLimit sets the budget of key to max concurrent slots; max <= 0
	// removes the budget. Slots held beyond a lowered budget stay until
	// released; no new slot is granted until the use is below it.
	SetLimit(ctx context.Context, key string, max int) error
	// Limits lists every budget and every key with live slots, by key.
	Limits(ctx context.Context) ([]Limit, error)
	// Now returns the store's clock, which leases are measured against.
	Now(ctx context.Context) (time.Time, error)
}

// ErrLeaseLost is returned (wrapped) by a fenced write, Renew, Release or
// FinishGlobal whose lease is no longer live: it ran out, was released, or
// another runner took it over. Test it with errors.Is.
var ErrLeaseLost = errors.New("state: lease lost")

// ErrReadOnly is returned (wrapped) by a write to a read-only store.
var ErrReadOnly = errors.New("state: store is read-only")

// LeaseKind tells an account lease from a global job's.
type LeaseKind string

// Lease kinds.
const (
	LeaseAccount LeaseKind = "account"
	LeaseGlobal  LeaseKind = "global"
)

// Lease is a runner's exclusive, expiring right to work on an account or a
// global job. Token is unique per claim: writes fenced by the lease carry
// it, so that a runner that lost the lease cannot write any more.
type Lease struct {
	Kind LeaseKind // an account lease or a global job's
	// Key is the account's source address or the global job's name.
	Key     string
	Runner  string    // the holder
	Token   int64     // unique per claim; fenced writes carry it
	Expires time.Time // on the store's clock; Renew and Heartbeat move it
	// PrevRunner is, for a takeover, the runner whose lease ran out.
	PrevRunner string
	// Size is the account's size as put (account leases).
	Size int64
	// Destination is the account's destination (account leases).
	Destination string
}

// GlobalStatus is the answer of ClaimGlobal.
type GlobalStatus string

// Global job states.
const (
	GlobalClaimed GlobalStatus = "claimed"
	GlobalRunning GlobalStatus = "running"
	GlobalDone    GlobalStatus = "done"
	GlobalFailed  GlobalStatus = "failed"
)

// GlobalJob is one run-once job as recorded.
type GlobalJob struct {
	Name   string       // the job's name, e.g. "provisioning"
	Status GlobalStatus // GlobalRunning, GlobalDone, GlobalFailed, or "" (open)
	Runner string       // the holder, or the runner that finished it
	// Expires is the holder's lease expiry while running.
	Expires time.Time
	Detail  string    // what FinishGlobal recorded
	Updated time.Time // the last change
	// Claims counts the claims of the job (more than one after a holder
	// died).
	Claims int
}

// Slot is one held unit of a budget.
type Slot struct {
	Key     string    // the budget's key, e.g. "source.imap"
	Runner  string    // the holder
	Token   int64     // unique per acquisition
	Expires time.Time // the slot dies with its holder after this unless renewed
}

// Limit is one budget and its live use.
type Limit struct {
	Key string // the budget's key, e.g. "source.imap"
	// Max is the budget; 0 when key has live slots but no budget.
	Max int
	// InUse counts live slots; ByRunner splits them per runner.
	InUse    int
	ByRunner map[string]int
}

// NewRunnerID returns an identifier for one runner process: its host name,
// pid and a random suffix, so that a restarted process is a new runner.
func NewRunnerID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "runner"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), b)
}

// newToken returns a random positive lease token. 63 random bits make a
// collision between two claims of one account practically impossible.
func newToken() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	t := int64(binary.BigEndian.Uint64(b[:]) >> 1)
	if t == 0 {
		t = 1
	}
	return t
}

// WaitSlot acquires a slot of key, polling every poll (1 s when 0) while the
// budget is full, until ctx ends.
func WaitSlot(ctx context.Context, c Coordinator, key, runner string, ttl, poll time.Duration) (Slot, error) {
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return Slot{}, ctx.Err()
		case <-t.C:
		}
		s, ok, err := c.AcquireSlot(ctx, key, runner, ttl)
		if err != nil || ok {
			return s, err
		}
		t.Reset(poll)
	}
}

var (
	_ Store = (*SQLite)(nil)
	_ Store = (*Postgres)(nil)
)
