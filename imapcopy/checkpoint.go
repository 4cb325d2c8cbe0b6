package imapcopy

import (
	"context"
	"slices"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// FolderStatus is a snapshot of a mailbox's STATUS. Two equal snapshots with
// a HighestModSeq mean nothing changed in between.
type FolderStatus struct {
	UIDValidity   uint32 `json:"uid_validity"`             // UIDVALIDITY
	UIDNext       uint32 `json:"uid_next"`                 // UIDNEXT
	Messages      uint32 `json:"messages"`                 // MESSAGES
	HighestModSeq uint64 `json:"highest_modseq,omitempty"` // HIGHESTMODSEQ; 0 without CONDSTORE
}

// FolderState is what a Checkpoint keeps per source folder.
type FolderState struct {
	// Source is the source folder's server name; it keys the state.
	Source string
	// Destination is the destination server name it was copied to.
	Destination string
	// SourceUIDValidity and DestUIDValidity are the UIDVALIDITYs the UID
	// map refers to. When either changes the map is void.
	SourceUIDValidity uint32
	DestUIDValidity   uint32 // see SourceUIDValidity
	// SourceStatus and DestStatus are the snapshots taken at the end of the
	// last pass that copied and verified everything; zero otherwise.
	SourceStatus FolderStatus
	DestStatus   FolderStatus // see SourceStatus
	// KeywordIssues counts the messages whose flags were sanitised in that
	// pass, so that a skipped unchanged folder still reports them.
	KeywordIssues int
}

// Mapping pairs a source UID with the destination UID its copy got
// (APPENDUID). Dst is 0 when the destination did not say (no UIDPLUS).
type Mapping struct {
	Src imap.UID // the source UID
	Dst imap.UID // the destination UID; 0 when unknown
}

// Checkpoint remembers what was copied so that a re-run or a resumed run
// neither loses nor duplicates a message. Source folders are keyed by their
// server name. Implementations must be safe for concurrent use, and every
// write must be durable when the method returns: MarkInFlight in particular
// is called before the APPENDs it covers are sent.
type Checkpoint interface {
	// Folder returns the saved state of a folder; ok is false when none.
	Folder(ctx context.Context, source string) (st FolderState, ok bool, err error)
	// SaveFolder stores the folder state.
	SaveFolder(ctx context.Context, st FolderState) error
	// ResetFolder forgets the folder's UID map and in-flight marks (a
	// UIDVALIDITY changed); the folder state itself is kept.
	ResetFolder(ctx context.Context, source string) error
	// Mappings returns the folder's UID map and in-flight source UIDs.
	Mappings(ctx context.Context, source string) (done []Mapping, inFlight []imap.UID, err error)
	// MarkInFlight records, before they are sent, that these source UIDs
	// are about to be appended.
	MarkInFlight(ctx context.Context, source string, uids []imap.UID) error
	// Done records finished copies (or copies found already present) and
	// clears their in-flight marks.
	Done(ctx context.Context, source string, m []Mapping) error
	// ClearInFlight drops in-flight marks of messages that were not
	// appended (refused or skipped).
	ClearInFlight(ctx context.Context, source string, uids []imap.UID) error
}

// MemoryCheckpoint is a Checkpoint in memory: it makes re-runs within one
// process cheap but does not survive the process.
//
// A *MemoryCheckpoint is safe for concurrent use.
type MemoryCheckpoint struct {
	mu      sync.Mutex
	folders map[string]*memFolder
}

type memFolder struct {
	st       FolderState
	hasState bool
	done     map[imap.UID]imap.UID
	inFlight map[imap.UID]bool
}

// NewMemoryCheckpoint returns an empty in-memory checkpoint.
func NewMemoryCheckpoint() *MemoryCheckpoint {
	return &MemoryCheckpoint{folders: map[string]*memFolder{}}
}

func (m *MemoryCheckpoint) folder(name string) *memFolder {
	f, ok := m.folders[name]
	if !ok {
		f = &memFolder{done: map[imap.UID]imap.UID{}, inFlight: map[imap.UID]bool{}}
		m.folders[name] = f
	}
	return f
}

// Folder implements Checkpoint.
func (m *MemoryCheckpoint) Folder(_ context.Context, source string) (FolderState, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.folders[source]
	if !ok || !f.hasState {
		return FolderState{}, false, nil
	}
	return f.st, true, nil
}

// SaveFolder implements Checkpoint.
func (m *MemoryCheckpoint) SaveFolder(_ context.Context, st FolderState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(st.Source)
	f.st, f.hasState = st, true
	return nil
}

// ResetFolder implements Checkpoint.
func (m *MemoryCheckpoint) ResetFolder(_ context.Context, source string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(source)
	f.done = map[imap.UID]imap.UID{}
	f.inFlight = map[imap.UID]bool{}
	return nil
}

// Mappings implements Checkpoint.
func (m *MemoryCheckpoint) Mappings(_ context.Context, source string) ([]Mapping, []imap.UID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(source)
	done := make([]Mapping, 0, len(f.done))
	for s, d := range f.done {
		done = append(done, Mapping{Src: s, Dst: d})
	}
	slices.SortFunc(done, func(a, b Mapping) int { return int(a.Src) - int(b.Src) })
	var inFlight []imap.UID
	for u := range f.inFlight {
		inFlight = append(inFlight, u)
	}
	slices.Sort(inFlight)
	return done, inFlight, nil
}

// MarkInFlight implements Checkpoint.
func (m *MemoryCheckpoint) MarkInFlight(_ context.Context, source string, uids []imap.UID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(source)
	for _, u := range uids {
		f.inFlight[u] = true
	}
	return nil
}

// Done implements Checkpoint.
func (m *MemoryCheckpoint) Done(_ context.Context, source string, ms []Mapping) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(source)
	for _, x := range ms {
		f.done[x.Src] = x.Dst
		delete(f.inFlight, x.Src)
	}
	return nil
}

// ClearInFlight implements Checkpoint.
func (m *MemoryCheckpoint) ClearInFlight(_ context.Context, source string, uids []imap.UID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(source)
	for _, u := range uids {
		delete(f.inFlight, u)
	}
	return nil
}
