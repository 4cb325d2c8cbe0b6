package imapcopy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/sync/errgroup"
)

// This file holds the fetch half of a folder's append step: message bodies
// are fetched from the source in chunks, spooled in memory or to a
// temporary file, and queued as jobs for the writers (writer.go).

// fetchTime wraps an INTERNALDATE (zone kept).
type fetchTime struct{ time.Time }

// body is one message's bytes, in memory chunks when they fit the memory
// budget, else in an unlinked temporary file, so memory stays bounded
// whatever the message size.
type body struct {
	chunks [][]byte   // in memory: the message in order, each chunk full but the last
	mem    *memBudget // where the chunks go back on Close
	f      *os.File
	size   int64
	nul    bool // holds a NUL byte (seen while spooling)
}

// Reader returns a reader over the whole body from its start.
func (b *body) Reader() (io.Reader, error) {
	if b.f != nil {
		if _, err := b.f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return bufio.NewReaderSize(b.f, 64<<10), nil
	}
	// net.Buffers consumes its slice: hand it a copy.
	nb := make(net.Buffers, len(b.chunks))
	copy(nb, b.chunks)
	return &nb, nil
}

// head returns up to n leading bytes.
func (b *body) head(n int) []byte {
	if b.f != nil {
		out := make([]byte, n)
		k, _ := b.f.ReadAt(out, 0)
		return out[:k]
	}
	if len(b.chunks) == 1 || (len(b.chunks) > 0 && len(b.chunks[0]) >= n) {
		return b.chunks[0][:min(n, len(b.chunks[0]))]
	}
	var out []byte
	for _, c := range b.chunks {
		if len(out) >= n {
			break
		}
		out = append(out, c[:min(len(c), n-len(out))]...)
	}
	return out
}

// hasNUL reports whether the body holds a NUL byte.
func (b *body) hasNUL() bool { return b.nul }

// Close frees the body; its chunks go back to the budget. Closing twice is
// harmless.
func (b *body) Close() {
	if b.f != nil {
		b.f.Close()
		b.f = nil
	}
	if b.mem != nil && b.chunks != nil {
		b.mem.put(b.chunks)
	}
	b.chunks, b.mem = nil, nil
}

// memChunk is the unit in which message bodies are held in memory: one
// size for every message, so freed chunks always fit the next message. It
// is small enough that a typical message (tens of KB) takes one chunk, so
// the budget holds the MULTIAPPEND batches in flight without spooling.
const memChunk = 64 << 10

// memBudget hands out memory chunks for message bodies, reusing freed ones,
// so that copying allocates (and collects) little while the bytes it holds,
// in use and kept for reuse alike, never exceed its limit.
//
// A *memBudget is safe for concurrent use.
type memBudget struct {
	max int // chunks

	mu   sync.Mutex
	held int // chunks allocated: in use plus free
	free [][]byte
}

func newMemBudget(limit int64) *memBudget {
	return &memBudget{max: int(limit / memChunk)}
}

// get returns chunks holding n bytes (the last one cut to length), or nil
// when they do not fit the limit; the caller then spools to a file.
func (m *memBudget) get(n int64) [][]byte {
	k := int((n + memChunk - 1) / memChunk)
	if k == 0 {
		k = 1
	}
	m.mu.Lock()
	reuse := min(k, len(m.free))
	if m.held+k-reuse > m.max {
		m.mu.Unlock()
		return nil
	}
	out := make([][]byte, 0, k)
	for range reuse {
		last := len(m.free) - 1
		out = append(out, m.free[last])
		m.free[last] = nil
		m.free = m.free[:last]
	}
	m.held += k - reuse
	m.mu.Unlock()
	for len(out) < k {
		out = append(out, make([]byte, memChunk))
	}
	for i := range out {
		out[i] = out[i][:memChunk]
	}
	out[k-1] = out[k-1][:n-int64(k-1)*memChunk]
	return out
}

// put takes back chunks that get returned.
func (m *memBudget) put(chunks [][]byte) {
	m.mu.Lock()
	m.free = append(m.free, chunks...)
	m.mu.Unlock()
}

// spoolLiteral reads a literal of known size into a body: into chunks of
// mem when the message is at most threshold bytes and mem has room, else
// into an unlinked temporary file in dir.
func spoolLiteral(r imap.LiteralReader, threshold int64, mem *memBudget, dir string) (*body, error) {
	size := r.Size()
	if size <= threshold {
		var chunks [][]byte
		if mem != nil {
			chunks = mem.get(size)
		} else {
			chunks = [][]byte{make([]byte, size)}
		}
		if chunks != nil {
			b := &body{chunks: chunks, mem: mem, size: size}
			for _, c := range chunks {
				if _, err := io.ReadFull(r, c); err != nil {
					b.Close()
					return nil, err
				}
				b.nul = b.nul || bytes.IndexByte(c, 0) >= 0
			}
			return b, nil
		}
	}
	f, err := os.CreateTemp(dir, "imapcopy-*.eml")
	if err != nil {
		return nil, err
	}
	// Unlink at once: nothing is left behind if the process dies.
	_ = os.Remove(f.Name())
	w := &nulWriter{w: f}
	n, err := io.Copy(w, r)
	if err != nil {
		f.Close()
		return nil, err
	}
	if n != size {
		f.Close()
		return nil, io.ErrUnexpectedEOF
	}
	return &body{f: f, size: size, nul: w.nul}, nil
}

// nulWriter notes whether a NUL byte went through it.
type nulWriter struct {
	w   io.Writer
	nul bool
}

func (n *nulWriter) Write(p []byte) (int, error) {
	n.nul = n.nul || bytes.IndexByte(p, 0) >= 0
	return n.w.Write(p)
}

// job is one message on its way from the source to the destination.
type job struct {
	uid  imap.UID
	info msgInfo
	body *body
}

func (j *job) messageID() string {
	return headerValue(j.body.head(64<<10), "Message-Id")
}

// bodyLimitError is a message literal larger than the message's announced
// RFC822.SIZE (plus a margin) or than Copier.MaxSize: the message is
// refused before any byte of it is read or stored, and the connection is
// dropped.
type bodyLimitError struct {
	UID   imap.UID // 0 when the server sent the body before the UID
	Size  int64
	Limit int64
	Why   string
}

func (e *bodyLimitError) Error() string {
	return fmt.Sprintf("imapcopy: the server announced a body literal of %d bytes, over %s (%d bytes); message refused", e.Size, e.Why, e.Limit)
}

// readJob reads one FETCH (UID BODY[]) response. allow returns, for a UID
// (0 when not yet known), the largest literal accepted and why; a larger
// literal is refused unread after abort closed the connection (go-imap's
// reader waits until a literal it handed out ends: closing the network
// connection is what ends it).
func readJob(m *imapclient.FetchMessageData, threshold int64, mem *memBudget, dir string, allow func(imap.UID) (int64, string), abort func()) (*job, error) {
	j := &job{}
	for {
		it := m.Next()
		if it == nil {
			break
		}
		switch it := it.(type) {
		case imapclient.FetchItemDataUID:
			j.uid = it.UID
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil {
				continue
			}
			if allow != nil {
				if lim, why := allow(j.uid); it.Literal.Size() > lim {
					if j.body != nil {
						j.body.Close()
					}
					if abort == nil {
						// No way to close the connection under go-imap:
						// skip the literal (nothing of it is stored).
						_, _ = io.Copy(io.Discard, it.Literal)
					} else {
						abort()
						// What go-imap had buffered, then the error of
						// the closed connection.
						var buf [4096]byte
						for n := int64(0); n < 1<<20; {
							k, err := it.Literal.Read(buf[:])
							n += int64(k)
							if err != nil {
								break
							}
						}
					}
					return nil, &bodyLimitError{UID: j.uid, Size: it.Literal.Size(), Limit: lim, Why: why}
				}
			}
			b, err := spoolLiteral(it.Literal, threshold, mem, dir)
			if err != nil {
				if j.body != nil {
					j.body.Close()
				}
				return nil, err
			}
			if j.body != nil {
				j.body.Close() // a second body section: keep the last
			}
			j.body = b
		}
	}
	if j.uid == 0 || j.body == nil {
		if j.body != nil {
			j.body.Close()
		}
		return nil, nil
	}
	return j, nil
}

// group is an errgroup whose context ends when one member fails.
func newGroup(ctx context.Context) (*errgroup.Group, context.Context) {
	return errgroup.WithContext(ctx)
}

// fetchBodies is the fetch half of the append step: it fetches the todo
// messages chunk by chunk into a queue of queue jobs that the writers in
// run consume, and notes their fingerprints for the proof. In-flight marks
// are written per chunk before the chunk is fetched.
func (f *folderRun) fetchBodies(ctx context.Context, queue int, run []func(context.Context, <-chan *job) error) error {
	s, c, srcConn, p, todo, sp := f.s, f.c, f.src, f.p, f.todo, f.prints
	info := make(map[imap.UID]msgInfo, len(todo))
	for _, m := range todo {
		info[m.UID] = m
	}

	jobs := make(chan *job, queue)
	g, gctx := newGroup(ctx)

	// Reader: fetch bodies chunk by chunk.
	g.Go(func() (err error) {
		defer recoverTo(&err)
		defer close(jobs)
		for start := 0; start < len(todo); start += fetchChunk {
			chunk := todo[start:min(start+fetchChunk, len(todo))]
			uids := make([]imap.UID, len(chunk))
			for i, m := range chunk {
				uids[i] = m.UID
			}
			if err := s.cp.MarkInFlight(gctx, p.Src.Name, uids); err != nil {
				return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
			}
			var set imap.UIDSet
			set.AddNum(uids...)
			// Each literal may be as large as its message's announced size
			// plus a margin, and never over MaxSize: a server announcing
			// more is refused before a byte is stored.
			var largest int64
			for _, m := range chunk {
				largest = max(largest, m.Size)
			}
			allow := func(u imap.UID) (int64, string) {
				size, why := largest, "the largest RFC822.SIZE of the batch plus a margin"
				if mi, ok := info[u]; ok {
					size, why = mi.Size, fmt.Sprintf("its RFC822.SIZE %d plus a margin", mi.Size)
				}
				lim := bodyAllowance(size)
				if c.MaxSize > 0 && c.MaxSize < lim {
					return c.MaxSize, "the --max-size limit"
				}
				return lim, why
			}
			srcConn.guard.raiseBodies(bodyAllowance(largest))
			var abort func()
			if srcConn.guard != nil {
				abort = func() { srcConn.guard.Close() }
			}
			srcConn.tick("FETCH")
			cmd := srcConn.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
			seen := map[imap.UID]bool{}
			for {
				m := cmd.Next()
				if m == nil {
					break
				}
				j, err := readJob(m, c.spill(), s.mem, c.TempDir, allow, abort)
				if err != nil {
					srcConn.Client.Close() // never discard after a read error (go-imap races)
					var ble *bodyLimitError
					if errors.As(err, &ble) && ble.UID != 0 {
						// That message's failure: remembered, so the next
						// pass (started at once, the connection is gone)
						// reports it without fetching it again.
						it := ItemIssue{UID: ble.UID, Reason: ble.Error()}
						s.memo.markRefused(p.Src.Name, it)
						c.emit(MessageFailed{Folder: p.Display, UID: ble.UID, Err: ble})
						if aerr := c.itemError(itemName(p.Display, ble.UID), ble); aerr != nil {
							return aerr
						}
					}
					return connError{fmt.Errorf("imapcopy: read source message in %q: %w", p.Src.Name, err)}
				}
				if j == nil {
					continue
				}
				mi, ok := info[j.uid]
				if !ok {
					j.body.Close()
					continue
				}
				j.info = mi
				seen[j.uid] = true
				if !c.DeepVerify {
					sp.add(j.uid, j.body.head(64<<10))
				}
				select {
				case jobs <- j:
				case <-gctx.Done():
					j.body.Close()
					_ = cmd.Close() // drains pending literals so that go-imap's reader can stop
					return gctx.Err()
				}
			}
			if err := cmd.Close(); err != nil {
				return fmt.Errorf("imapcopy: fetch from source %q: %w", p.Src.Name, err)
			}
			var gone []imap.UID
			for _, u := range uids {
				if !seen[u] {
					gone = append(gone, u) // expunged meanwhile
				}
			}
			if len(gone) > 0 {
				if err := s.cp.ClearInFlight(gctx, p.Src.Name, gone); err != nil {
					return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
				}
			}
		}
		return nil
	})

	for _, w := range run {
		g.Go(func() (err error) {
			defer recoverTo(&err)
			return w(gctx, jobs)
		})
	}
	err := g.Wait()
	// Drain jobs left behind by an error.
	for j := range jobs {
		j.body.Close()
	}
	return err
}

// recorder batches Done records.
type recorder struct {
	s      *session
	ctx    context.Context
	folder string
	mu     sync.Mutex
	buf    []Mapping
}

func (r *recorder) add(m Mapping) error {
	r.mu.Lock()
	r.buf = append(r.buf, m)
	full := len(r.buf) >= 64
	r.mu.Unlock()
	if full {
		return r.flush()
	}
	return nil
}

func (r *recorder) flush() error {
	r.mu.Lock()
	buf := r.buf
	r.buf = nil
	r.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	// Record even when the copy is being cancelled: these APPENDs happened.
	if err := r.s.cp.Done(context.WithoutCancel(r.ctx), r.folder, buf); err != nil {
		return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
	}
	return nil
}
