package dav

import (
	"context"
	"sort"
	"sync"
)

// Record is what a checkpoint keeps per copied item.
type Record struct {
	// SrcHref and SrcETag are the source object and its ETag when read.
	SrcHref string
	SrcETag string
	// UID is the item's UID (a source object may hold several).
	UID string
	// Hash is the item's semantic fingerprint when it was written.
	Hash string
	// DstHref and DstETag are the destination object and the ETag it got.
	DstHref string
	DstETag string
}

// Checkpoint remembers copied items per collection pair so that a re-run
// skips unchanged objects, updates changed ones and never duplicates.
// Implementations must be safe for concurrent use.
type Checkpoint interface {
	// Records returns the records of a collection pair.
	Records(ctx context.Context, collection string) ([]Record, error)
	// Save stores r, replacing the record with the same SrcHref and UID.
	Save(ctx context.Context, collection string, r Record) error
}

// BatchCheckpoint is a Checkpoint that stores several records at once (one
// transaction). The engine saves the records of each multiget batch with
// one SaveBatch; a crash loses at most that batch's records, and the next
// run finds those objects by UID at the destination.
type BatchCheckpoint interface {
	Checkpoint
	// SaveBatch stores rs like Save, all or none.
	SaveBatch(ctx context.Context, collection string, rs []Record) error
}

// ForgetCheckpoint is a Checkpoint that can drop records and list its
// collection pairs. Copier.Delete needs it: the record of an object deleted
// at the destination is forgotten.
type ForgetCheckpoint interface {
	Checkpoint
	// Forget drops the records of collection with the SrcHref and UID of
	// each of rs, all or none.
	Forget(ctx context.Context, collection string, rs []Record) error
	// Collections lists the collection pairs that hold records.
	Collections(ctx context.Context) ([]string, error)
}

// MemoryCheckpoint is a Checkpoint in memory; it is also a
// ForgetCheckpoint. It is safe for concurrent use.
type MemoryCheckpoint struct {
	mu sync.Mutex
	m  map[string]map[[2]string]Record
}

// NewMemoryCheckpoint returns an empty MemoryCheckpoint.
func NewMemoryCheckpoint() *MemoryCheckpoint {
	return &MemoryCheckpoint{m: map[string]map[[2]string]Record{}}
}

// Records implements Checkpoint.
func (m *MemoryCheckpoint) Records(_ context.Context, collection string) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, r := range m.m[collection] {
		out = append(out, r)
	}
	return out, nil
}

// Save implements Checkpoint.
func (m *MemoryCheckpoint) Save(_ context.Context, collection string, r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m[collection] == nil {
		m.m[collection] = map[[2]string]Record{}
	}
	m.m[collection][[2]string{r.SrcHref, r.UID}] = r
	return nil
}

// Forget implements ForgetCheckpoint.
func (m *MemoryCheckpoint) Forget(_ context.Context, collection string, rs []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		delete(m.m[collection], [2]string{r.SrcHref, r.UID})
	}
	if len(m.m[collection]) == 0 {
		delete(m.m, collection)
	}
	return nil
}

// Collections implements ForgetCheckpoint.
func (m *MemoryCheckpoint) Collections(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.m))
	for k, rs := range m.m {
		if len(rs) > 0 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}
