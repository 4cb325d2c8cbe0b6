package imapcopy

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// sizedReader is an imap.LiteralReader over a byte slice.
type sizedReader struct {
	*bytes.Reader
	n int64
}

func (r sizedReader) Size() int64 { return r.n }

func literal(b []byte) sizedReader { return sizedReader{bytes.NewReader(b), int64(len(b))} }

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func readAll(t *testing.T, b *body) []byte {
	t.Helper()
	r, err := b.Reader()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, r); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestSpoolRoundTrip: every size, in memory (one chunk, several chunks, an
// exact multiple) or in a file, reads back byte for byte, twice (a retried
// APPEND reads the body again), and head returns the leading bytes.
func TestSpoolRoundTrip(t *testing.T) {
	mem := newMemBudget(4 << 20)
	sizes := []int{0, 1, 4095, memChunk - 1, memChunk, memChunk + 1, 3*memChunk + 17, 4 * memChunk, 5<<20 + 3}
	for i, n := range sizes {
		want := randomBytes(n, uint64(i))
		b, err := spoolLiteral(literal(want), 8<<20, mem, t.TempDir())
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		inFile := b.f != nil
		if wantFile := n > 4<<20; inFile != wantFile {
			t.Errorf("size %d: in file = %v, want %v", n, inFile, wantFile)
		}
		for pass := 0; pass < 2; pass++ {
			if got := readAll(t, b); !bytes.Equal(got, want) {
				t.Fatalf("size %d pass %d: body differs (got %d bytes)", n, pass, len(got))
			}
		}
		for _, h := range []int{0, 10, 64 << 10, memChunk + 5, n + 10} {
			if got, w := b.head(h), want[:min(h, n)]; !bytes.Equal(got, w) {
				t.Errorf("size %d: head(%d) = %d bytes, want %d", n, h, len(got), len(w))
			}
		}
		b.Close()
		b.Close() // twice is harmless
	}
	if mem.held > mem.max || len(mem.free) != mem.held {
		t.Errorf("after closing everything: held %d chunks, %d free, max %d", mem.held, len(mem.free), mem.max)
	}
}

// TestMemBudgetBound: bodies beyond the budget go to files, freed chunks are
// reused, and the chunks held never pass the limit.
func TestMemBudgetBound(t *testing.T) {
	mem := newMemBudget(4 * memChunk)
	dir := t.TempDir()
	msg := randomBytes(3*memChunk, 7)
	a, err := spoolLiteral(literal(msg), 8<<20, mem, dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.f != nil {
		t.Fatal("first body spooled to a file; want memory")
	}
	b, err := spoolLiteral(literal(msg), 8<<20, mem, dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.f == nil {
		t.Fatal("second body held in memory beyond the budget")
	}
	if mem.held > mem.max {
		t.Fatalf("held %d chunks, max %d", mem.held, mem.max)
	}
	if got := readAll(t, b); !bytes.Equal(got, msg) {
		t.Fatal("spooled body differs")
	}
	b.Close()
	a.Close()
	c, err := spoolLiteral(literal(msg[:2*memChunk]), 8<<20, mem, dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.f != nil || mem.held != 3 {
		t.Fatalf("after free: in file %v, held %d chunks; want memory and 3 (reuse)", c.f != nil, mem.held)
	}
	if got := readAll(t, c); !bytes.Equal(got, msg[:2*memChunk]) {
		t.Fatal("reused chunks: body differs")
	}
	c.Close()
}

// TestSpoolShortLiteral: a literal cut short is an error, and the chunks it
// took go back.
func TestSpoolShortLiteral(t *testing.T) {
	mem := newMemBudget(1 << 20)
	msg := randomBytes(memChunk+100, 3)
	short := sizedReader{bytes.NewReader(msg[:memChunk+10]), int64(len(msg))}
	if _, err := spoolLiteral(short, 8<<20, mem, t.TempDir()); err == nil {
		t.Fatal("short literal accepted")
	}
	if len(mem.free) != mem.held {
		t.Fatalf("chunks leaked: held %d, free %d", mem.held, len(mem.free))
	}
	short = sizedReader{bytes.NewReader(msg[:10]), int64(len(msg))}
	if _, err := spoolLiteral(short, 100, mem, t.TempDir()); err == nil {
		t.Fatal("short literal into a file accepted")
	}
}

// TestSpoolSeesNUL: a NUL byte anywhere (first chunk, a later chunk, a
// file) is noted while spooling, so that the message goes as a BINARY
// literal; a body without one is not marked.
func TestSpoolSeesNUL(t *testing.T) {
	mem := newMemBudget(1 << 20)
	for _, tc := range []struct {
		name      string
		size, at  int
		threshold int64
	}{
		{"memory, first chunk", 100, 7, 8 << 20},
		{"memory, third chunk", 3*memChunk + 5, 2*memChunk + 1, 8 << 20},
		{"file", 3*memChunk + 5, 3 * memChunk, 10},
		{"memory, none", 2 * memChunk, -1, 8 << 20},
		{"file, none", 2 * memChunk, -1, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := bytes.Repeat([]byte("x"), tc.size)
			if tc.at >= 0 {
				msg[tc.at] = 0
			}
			b, err := spoolLiteral(literal(msg), tc.threshold, mem, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got, want := b.hasNUL(), tc.at >= 0; got != want {
				t.Errorf("hasNUL() = %v, want %v", got, want)
			}
			if (b.f != nil) != (tc.threshold == 10) {
				t.Errorf("spooled to a file: %v, want %v", b.f != nil, tc.threshold == 10)
			}
		})
	}
}
