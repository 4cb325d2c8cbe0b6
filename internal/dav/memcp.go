package dav

import (
	"context"
	"sync"
)

// MemoryCheckpoint is a Checkpoint in memory. It is safe for concurrent use.
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
