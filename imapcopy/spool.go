package imapcopy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/sync/errgroup"
)

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

// headerValue returns the unfolded value of the first header field named
// name in a message head, "" when absent or unparsable.
func headerValue(head []byte, name string) string {
	return headerValues(head, name)[0]
}

// headerValues is headerValue for several names with one parse.
func headerValues(head []byte, names ...string) []string {
	if out, ok := scanHeader(head, names); ok {
		return out
	}
	out := make([]string, len(names))
	// The buffer size does not change the result (long lines are joined),
	// only what is allocated per call.
	r := textproto.NewReader(bufio.NewReaderSize(bytes.NewReader(head), min(len(head), 4096)))
	h, err := r.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return out
	}
	for i, name := range names {
		out[i] = strings.Join(strings.Fields(h.Get(name)), " ")
	}
	return out
}

// headerValuesStrict is headerValues for a head that holds the whole
// header: ok is false when the header does not end within head or does not
// parse cleanly, so that a caller can ask the server instead of guessing.
func headerValuesStrict(head []byte, names ...string) ([]string, bool) {
	end := bytes.Index(head, []byte("\r\n\r\n"))
	if lf := bytes.Index(head, []byte("\n\n")); lf >= 0 && (end < 0 || lf < end) {
		return nil, false // bare LF line ends: leave them to the server
	}
	if end < 0 || bytes.IndexByte(head[:end], 0) >= 0 {
		return nil, false
	}
	if out, ok := scanHeader(head[:end+4], names); ok {
		return out, true
	}
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(head[:end+4])))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return nil, false
	}
	out := make([]string, len(names))
	for i, name := range names {
		out[i] = strings.Join(strings.Fields(h.Get(name)), " ")
	}
	return out, true
}

// scanHeader is the quick path of headerValues for a clean header: field
// lines "Name: value" with token names, continuation lines, and the blank
// line that ends the header. It gives what net/textproto's ReadMIMEHeader
// gives, without building a map of every field (FuzzScanHeader holds it to
// that); ok is false for anything else, and the caller parses with
// textproto.
func scanHeader(head []byte, names []string) (out []string, ok bool) {
	out = make([]string, len(names))
	var found uint64
	cur := -1
	var val []byte
	finish := func() {
		if cur >= 0 {
			out[cur] = strings.Join(strings.Fields(string(val)), " ")
			found |= 1 << cur
			cur = -1
		}
	}
	if len(names) > 64 {
		return nil, false
	}
	for first := true; ; first = false {
		nl := bytes.IndexByte(head, '\n')
		if nl < 0 {
			return nil, false // no blank line: not a whole header
		}
		line := head[:nl]
		head = head[nl+1:]
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			finish()
			return out, true
		}
		for _, c := range line {
			if c < ' ' && c != '\t' || c == 0x7f {
				return nil, false // textproto refuses control bytes
			}
		}
		if line[0] == ' ' || line[0] == '\t' {
			if first {
				return nil, false
			}
			if cur >= 0 {
				val = append(append(val, ' '), line...)
			}
			continue
		}
		finish()
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, false
		}
		key := line[:colon]
		for _, c := range key {
			if !isTokenByte(c) {
				return nil, false
			}
		}
		for k, n := range names {
			if found&(1<<k) == 0 && len(key) == len(n) && strings.EqualFold(string(key), n) {
				cur = k
				val = append(val[:0], line[colon+1:]...)
				break
			}
		}
	}
}

// isTokenByte reports whether c may appear in a header field name (RFC
// 7230 token characters, as net/textproto accepts them).
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

// group is an errgroup whose context ends when one member fails.
func newGroup(ctx context.Context) (*errgroup.Group, context.Context) {
	return errgroup.WithContext(ctx)
}
