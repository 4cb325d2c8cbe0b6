package caldav

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/emersion/go-webdav"
	webcaldav "github.com/emersion/go-webdav/caldav"

	"github.com/zxmigrate/zxmigrate/internal/dav"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TokenSource gives a Carbonio auth token for one user (DelegateAuth), sent as the ZM_AUTH_TOKEN cookie.
// It is called for every request, possibly concurrently: implementations
// cache the token and renew it before it expires. If it also has a method
// ForgetUserToken(account string), a 401 drops the cached token and the
// request is retried once with a new one.
type TokenSource interface {
	UserToken(ctx context.Context, account string) (secret.Secret, error)
}

// Shared types; see internal/dav for their fields.
type (
	// Limits bound what a server may send (answer sizes, XML depth).
	Limits = dav.Limits
	// LimitError is an answer that broke a limit.
	LimitError = dav.LimitError
	// Collection is a calendar or task list.
	Collection = dav.Collection
	// Ref is an object href with its ETag.
	Ref = dav.Ref
	// ReadFunc receives one object read from a source.
	ReadFunc = dav.ReadFunc
	// Cond is the precondition of a write.
	Cond = dav.Cond
	// Source is where calendars come from: a DAV server (NewDAV) or a
	// Zimbra REST export (NewZimbraREST).
	Source = dav.Source
	// Destination is where calendars go: a DAV server (NewDAV) or, as a
	// fallback on Carbonio, the REST import (NewZimbraRESTDestination).
	Destination = dav.Destination
	// Checkpoint maps source href + ETag + hash to destination href + ETag
	// per collection pair. zxmigrate/state implements it over SQLite.
	Checkpoint = dav.Checkpoint
	// Record is one checkpoint entry.
	Record = dav.Record
	// ForgetCheckpoint is a Checkpoint that can drop records and list its
	// collection pairs; Copier.Delete needs it (zxmigrate/state and
	// NewMemoryCheckpoint implement it).
	ForgetCheckpoint = dav.ForgetCheckpoint
	// Deleter is a Destination that can delete objects (DAV can; the REST
	// import cannot).
	Deleter = dav.Deleter
	// ObjectDeleted is sent per destination object deleted by Delete.
	ObjectDeleted = dav.ObjectDeleted
	// Stats is the outcome of Copy.
	Stats = dav.Stats
	// CollectionStats counts one collection.
	CollectionStats = dav.CollectionStats
	// ItemError names a failed object with the reason.
	ItemError = dav.ItemError
	// ItemNote names a repaired object with the repair.
	ItemNote = dav.ItemNote
	// Event is CollectionStarted, ObjectDone, ObjectFailed, ObjectDeleted
	// or CollectionDone.
	Event = dav.Event
	// CollectionStarted is sent when a collection starts.
	CollectionStarted = dav.CollectionStarted
	// ObjectDone is sent per item written or found unchanged.
	ObjectDone = dav.ObjectDone
	// ObjectFailed is sent per item that failed.
	ObjectFailed = dav.ObjectFailed
	// CollectionDone is sent when a collection ends.
	CollectionDone = dav.CollectionDone
	// Action is created, updated or unchanged.
	Action = dav.Action
	// Verification is the outcome of Verify.
	Verification = dav.Verification
	// CollectionCheck compares one collection.
	CollectionCheck = dav.CollectionCheck
)

// Actions.
const (
	Created   = dav.Created
	Updated   = dav.Updated
	Unchanged = dav.Unchanged
)

// DefaultConcurrency is the number of parallel requests per server when
// Copier.Concurrency is 0.
const DefaultConcurrency = dav.DefaultConcurrency

// Endpoint is a CalDAV server and how to log in.
type Endpoint struct {
	// URL is a server, principal, calendar home or calendar URL.
	URL string
	// User and Password are sent as Basic credentials when Token is nil.
	User     string
	Password secret.Secret
	// Token, when not nil, gives the ZM_AUTH_TOKEN cookie for Account
	// (Carbonio: admin DelegateAuth, no user password needed).
	Token   TokenSource
	Account string
	// HTTPClient sends the requests; nil means an http.Client with TLS
	// verification on and idle timeouts (see internal/httpx). Given an
	// *http.Client, credentials are attached per hop by a copy of it, so
	// they reach no origin but URL's and TrustedOrigins, redirects
	// included.
	HTTPClient webdav.HTTPClient
	// TrustedOrigins lists origins besides URL's that hrefs and redirects
	// may point to ("https://dav2.example.com:8443", or a bare host taking
	// URL's scheme). Requests to any other origin are refused and reported
	// as the failure of the object or collection concerned.
	TrustedOrigins []string
	// AllowPlaintext permits plain-http hrefs and redirects from an https
	// URL (credentials then travel in clear).
	AllowPlaintext bool
	// Limits bound what the server may send; the zero value means the
	// defaults (see Limits).
	Limits Limits
	// TLSConfig and IdleTimeout configure the client made when HTTPClient
	// is nil: nil TLSConfig verifies against the system roots; IdleTimeout
	// fails a request on whose connection no byte moved for that long (a
	// slow transfer that progresses is never cut), 0 meaning 2 minutes.
	TLSConfig   *tls.Config
	IdleTimeout time.Duration
}

func (e Endpoint) dav() dav.Endpoint {
	var tok dav.UserTokenSource
	if e.Token != nil {
		tok = e.Token
	}
	return dav.Endpoint{URL: e.URL, User: e.User, Password: e.Password, Token: tok, Account: e.Account, HTTPClient: e.HTTPClient,
		TLSConfig: e.TLSConfig, IdleTimeout: e.IdleTimeout, ClientOptions: dav.ClientOptions{TrustedOrigins: e.TrustedOrigins, AllowPlaintext: e.AllowPlaintext, Limits: e.Limits}}
}

// HTTP returns the endpoint's authenticated HTTP client.
func (e Endpoint) HTTP() webdav.HTTPClient { return e.dav().HTTP() }

// DAV is a CalDAV server used as a Source or a Destination. It is safe for
// concurrent use.
type DAV struct {
	dav.Remote
}

// NewDAV returns the CalDAV server at e. Nothing is sent until first use.
func NewDAV(e Endpoint) (*DAV, error) {
	c, err := e.dav().Client()
	if err != nil {
		return nil, fmt.Errorf("caldav: %w", err)
	}
	return &DAV{Remote: dav.Remote{P: dav.CalDAV, Client: c}}, nil
}

// FindCalendars lists calendars with go-webdav's client (for callers that
// want its view; Copy uses its own discovery, which also reads colours).
func FindCalendars(ctx context.Context, e Endpoint) ([]webcaldav.Calendar, error) {
	c, err := webcaldav.NewClient(dav.GuardXML(e.HTTP(), e.Limits), e.URL)
	if err != nil {
		return nil, fmt.Errorf("caldav: %w", err)
	}
	p, err := c.FindCurrentUserPrincipal(ctx)
	if err != nil {
		return nil, fmt.Errorf("caldav: principal: %w", err)
	}
	home, err := c.FindCalendarHomeSet(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("caldav: home set: %w", err)
	}
	return c.FindCalendars(ctx, home)
}

// Copier copies calendars and task lists. Its fields are its options; the
// zero value works. A Copier is safe for one Copy or Verify at a time.
type Copier struct {
	// Concurrency bounds parallel requests per server; 0 means
	// DefaultConcurrency.
	Concurrency int
	// BatchSize is the number of objects per multiget REPORT; 0 means 50.
	BatchSize int
	// Checkpoint, when not nil, remembers what was copied so that a re-run
	// skips unchanged objects and updates changed ones. Without it objects
	// are matched by UID at the destination. A Checkpoint that also has
	// SaveBatch(ctx, collection string, rs []Record) error gets the records
	// of each multiget batch at once (the state store writes them in one
	// transaction); a crash then loses at most one batch of records, and
	// those objects are matched by UID on the next run.
	Checkpoint Checkpoint
	// DryRun reads and validates everything and reports what would be
	// written, writing nothing.
	DryRun bool
	// Delete, when set, deletes at the destination the objects this tool
	// copied (recorded in Checkpoint, which must then be a
	// ForgetCheckpoint) that the source no longer has, once every
	// collection is copied: with If-Match on the ETag written, so an
	// object changed at the destination since is kept and noted. Nothing
	// is deleted in a collection whose listing failed, whose objects
	// failed, or that lists no objects; nor when dst is not a Deleter;
	// those are counted in HeldBack with the reason. Collections are never
	// deleted. With DryRun it counts what it would delete. The zero value
	// copies only (additive).
	Delete bool
	// OnEvent, when not nil, receives progress events. It may be called
	// concurrently and must return quickly.
	OnEvent func(Event)
	// OnError, when not nil, is called for each failed object: returning
	// nil skips it, an error aborts Copy. By default failures are recorded
	// in the stats and the copy goes on.
	OnError func(item string, err error) error
	// Logger, when not nil, receives debug logs.
	Logger *slog.Logger

	memo *dav.SourceMemo // what the last Copy read, for Verify
}

func (c *Copier) engine() *dav.Engine {
	return &dav.Engine{Protocol: dav.CalDAV, Rules: Rules{}, Concurrency: c.Concurrency, BatchSize: c.BatchSize,
		Checkpoint: c.Checkpoint, DryRun: c.DryRun, Delete: c.Delete, OnEvent: c.OnEvent, OnError: c.OnError, Logger: c.Logger, Memo: c.memo}
}

// Copy copies every calendar of src to the calendar of the same name in dst
// (created with its display name, description, colour and components when
// missing). Each source resource is validated and repaired by Rules, split
// into one resource per UID, and written with a conditional PUT; a component
// the destination calendar does not accept goes to a companion calendar
// ("<name>-tasks" for VTODO). Per-object failures are in the stats; the
// error is non-nil only when the copy could not go on.
func (c *Copier) Copy(ctx context.Context, dst Destination, src Source) (*Stats, error) {
	if dst == nil || src == nil {
		return nil, errors.New("caldav: Copy needs a destination and a source")
	}
	c.memo = dav.NewSourceMemo(src)
	s, err := c.engine().Copy(ctx, dst, src)
	if err != nil {
		return s, fmt.Errorf("caldav: %w", err)
	}
	return s, nil
}

// Verify compares src and dst by UID and semantic fingerprint: every valid
// source object must be at the destination exactly once and equal.
// Source objects the last Copy of this Copier read from the same src, with
// the same ETag since, are not read again; the destination is read in full.
// Objects are compared by meaning, not spelling (semantic.go): an object
// found different is listed with the names of the components and
// properties that differ (Verification.Collections[].Changes).
func (c *Copier) Verify(ctx context.Context, dst Destination, src Source) (*Verification, error) {
	v, err := c.engine().Verify(ctx, dst, src)
	if err != nil {
		return v, fmt.Errorf("caldav: %w", err)
	}
	return v, nil
}

// NewMemoryCheckpoint returns a Checkpoint (and ForgetCheckpoint) held in memory, for tests and
// one-off runs.
func NewMemoryCheckpoint() Checkpoint { return dav.NewMemoryCheckpoint() }
