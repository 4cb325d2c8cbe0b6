package imapcopy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/sync/errgroup"
)

// fetchTime wraps an INTERNALDATE (zone kept).
type fetchTime struct{ time.Time }

// body is one message's bytes, in memory when small, else in an unlinked
// temporary file, so memory stays bounded whatever the message size.
type body struct {
	buf  []byte
	f    *os.File
	size int64
}

// Reader returns a reader over the whole body from its start.
func (b *body) Reader() (io.Reader, error) {
	if b.f != nil {
		if _, err := b.f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return bufio.NewReaderSize(b.f, 64<<10), nil
	}
	return bytes.NewReader(b.buf), nil
}

// head returns up to n leading bytes.
func (b *body) head(n int) []byte {
	if b.f == nil {
		return b.buf[:min(n, len(b.buf))]
	}
	out := make([]byte, n)
	k, _ := b.f.ReadAt(out, 0)
	return out[:k]
}

// Close frees the body.
func (b *body) Close() {
	if b.f != nil {
		b.f.Close()
		b.f = nil
	}
	b.buf = nil
}

// spoolLiteral reads a literal of known size into a body.
func spoolLiteral(r imap.LiteralReader, threshold int64, dir string) (*body, error) {
	size := r.Size()
	if size <= threshold {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return &body{buf: buf, size: size}, nil
	}
	f, err := os.CreateTemp(dir, "imapcopy-*.eml")
	if err != nil {
		return nil, err
	}
	// Unlink at once: nothing is left behind if the process dies.
	_ = os.Remove(f.Name())
	n, err := io.Copy(f, r)
	if err != nil {
		f.Close()
		return nil, err
	}
	if n != size {
		f.Close()
		return nil, io.ErrUnexpectedEOF
	}
	return &body{f: f, size: size}, nil
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

// readJob reads one FETCH (UID BODY[]) response.
func readJob(m *imapclient.FetchMessageData, threshold int64, dir string) (*job, error) {
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
			b, err := spoolLiteral(it.Literal, threshold, dir)
			if err != nil {
				if j.body != nil {
					j.body.Close()
				}
				return nil, err
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
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
	h, err := r.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	return strings.Join(strings.Fields(h.Get(name)), " ")
}

func equalFold(a, b string) bool { return strings.EqualFold(a, b) }

// group is an errgroup whose context ends when one member fails.
func newGroup(ctx context.Context) (*errgroup.Group, context.Context) {
	return errgroup.WithContext(ctx)
}

// tryAcquireFor takes a connection slot for p's server without waiting.
func (b *ConnBudget) tryAcquireFor(p *pool) bool {
	select {
	case b.sem(p.key) <- struct{}{}:
		return true
	default:
		return false
	}
}
