package memimap

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Bodies keeps message bodies in one append-only file instead of the heap,
// stored once per content (SHA-256): a source and a destination server
// sharing a Bodies hold one copy of a faithfully copied message. Memory per
// distinct body is a few dozen bytes, so a demo of thousands of accounts
// stays bounded by its message count, not its size.
//
// A *Bodies is safe for concurrent use.
type Bodies struct {
	mu    sync.Mutex
	f     *os.File
	size  int64
	index map[[sha256.Size]byte]blob
}

// blob locates one body in the file.
type blob struct{ off, n int64 }

// NewBodies creates the file "bodies" in dir (0600) for message bodies.
func NewBodies(dir string) (*Bodies, error) {
	f, err := os.OpenFile(filepath.Join(dir, "bodies"), os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("memimap: %w", err)
	}
	return &Bodies{f: f, index: map[[sha256.Size]byte]blob{}}, nil
}

// put stores raw unless the same content is stored already.
func (b *Bodies) put(raw []byte) (blob, error) {
	sum := sha256.Sum256(raw)
	b.mu.Lock()
	defer b.mu.Unlock()
	if bl, ok := b.index[sum]; ok {
		return bl, nil
	}
	bl := blob{off: b.size, n: int64(len(raw))}
	if _, err := b.f.WriteAt(raw, bl.off); err != nil {
		return blob{}, fmt.Errorf("memimap: store body: %w", err)
	}
	b.size += bl.n
	b.index[sum] = bl
	return bl, nil
}

// get reads a body back.
func (b *Bodies) get(bl blob) ([]byte, error) {
	buf := make([]byte, bl.n)
	if _, err := b.f.ReadAt(buf, bl.off); err != nil {
		return nil, fmt.Errorf("memimap: read body: %w", err)
	}
	return buf, nil
}

// Size returns the bytes stored on disk.
func (b *Bodies) Size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size
}

// Close closes and removes the file.
func (b *Bodies) Close() error {
	err := b.f.Close()
	if rerr := os.Remove(b.f.Name()); err == nil {
		err = rerr
	}
	return err
}
