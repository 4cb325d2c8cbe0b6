package dav

import (
	"context"
	"sort"
	"sync"
)

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
