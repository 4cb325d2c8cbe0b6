package dav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/emersion/go-webdav"

	"github.com/zxmigrate/zxmigrate/retry"
)

// Default limits on what a server may send. Real servers stay far below
// them: a PROPFIND listing of 100,000 objects is about 25 MiB, a multiget
// batch of 50 objects rarely passes a few MiB, DAV answers nest about ten
// elements deep.
const (
	// DefaultMaxMultistatus bounds one multistatus answer (a PROPFIND
	// listing or a multiget REPORT). A multiget batch over the limit falls
	// back to one GET per object.
	DefaultMaxMultistatus = 64 << 20
	// DefaultMaxObject bounds one object read by GET (an .ics or .vcf
	// resource, attachments inline).
	DefaultMaxObject = 64 << 20
	// DefaultMaxExport bounds one REST folder export (?fmt=ics or vcf),
	// which holds a whole folder in one answer.
	DefaultMaxExport = 128 << 20
	// DefaultMaxXMLDepth bounds the element nesting of an XML answer.
	DefaultMaxXMLDepth = 64
)

// Limits bound what a server may send. Each zero field means its default.
type Limits struct {
	// MaxMultistatus bounds a multistatus answer in bytes; 0 means
	// DefaultMaxMultistatus.
	MaxMultistatus int64
	// MaxObject bounds one object read by GET in bytes; 0 means
	// DefaultMaxObject.
	MaxObject int64
	// MaxExport bounds a REST folder export in bytes; 0 means
	// DefaultMaxExport.
	MaxExport int64
	// MaxXMLDepth bounds XML element nesting; 0 means DefaultMaxXMLDepth.
	MaxXMLDepth int
}

func (l Limits) multistatus() int64 { return or64(l.MaxMultistatus, DefaultMaxMultistatus) }
func (l Limits) object() int64      { return or64(l.MaxObject, DefaultMaxObject) }
func (l Limits) export() int64      { return or64(l.MaxExport, DefaultMaxExport) }

func (l Limits) depth() int {
	if l.MaxXMLDepth <= 0 {
		return DefaultMaxXMLDepth
	}
	return l.MaxXMLDepth
}

func or64(v, def int64) int64 {
	if v <= 0 {
		return def
	}
	return v
}

// LimitError is an answer that broke one of the Limits. Its retry class is
// Permanent: the server would send the same again.
type LimitError struct {
	// What is the kind of answer: "multistatus", "object", "export" or
	// "XML depth".
	What string
	// URL is the request's URL.
	URL string
	// Limit is the bound that was passed (bytes, or elements for depth).
	Limit int64
	// Field is the Limits field that sets it.
	Field string
}

// flags maps a Limits field to the flag of `migrate calendars` and
// `migrate contacts` that sets it.
var flags = map[string]string{
	"MaxMultistatus": "--max-multistatus-mib",
	"MaxObject":      "--max-object-mib",
	"MaxExport":      "--max-export-mib",
}

// Error implements error.
func (e *LimitError) Error() string {
	if e.What == "XML depth" {
		return fmt.Sprintf("dav: %s: answer nests XML elements deeper than %d (a broken or hostile server; Limits.%s raises the bound)", e.URL, e.Limit, e.Field)
	}
	return fmt.Sprintf("dav: %s: %s answer larger than %s (a broken or hostile server, or a very large %s; if the server is trusted, raise Limits.%s, flag %s)", e.URL, e.What, sizeText(e.Limit), e.What, e.Field, flags[e.Field])
}

// RetryClass implements retry.Classifier.
func (e *LimitError) RetryClass() retry.Class { return retry.Permanent }

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// limitReader reads at most n bytes from r and then fails with err, so
// that an answer over the limit is an error, never silently cut.
type limitReader struct {
	r   io.Reader
	n   int64 // bytes still allowed
	err *LimitError
}

func newLimitReader(r io.Reader, err *LimitError) *limitReader {
	return &limitReader{r: r, n: err.Limit, err: err}
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, l.err
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n - int(-l.n), l.err
	}
	return n, err
}

// readAll reads r to the end under limit e. It reads into chunks and
// joins them once at the end, so that the heap holds about the answer once
// while reading (not the garbage of a slice grown by copying), and an
// answer over the limit is dropped at the limit. hint is a Content-Length
// (-1 when unknown): one above the limit fails before reading.
func readAll(r io.Reader, hint int64, e *LimitError) ([]byte, error) {
	if hint > e.Limit {
		return nil, e
	}
	lr := newLimitReader(r, e)
	if hint >= 0 && hint < 1<<20 {
		// Small and announced: one buffer.
		buf := make([]byte, 0, hint+1)
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := lr.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				return buf, nil
			}
			if err != nil {
				return nil, err
			}
		}
	}
	var (
		chunks [][]byte
		total  int
		size   = 4 << 10
	)
	for {
		c := make([]byte, size)
		n, err := io.ReadFull(lr, c)
		if n > 0 {
			chunks = append(chunks, c[:n])
			total += n
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
		size = min(size*2, 1<<20)
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	out := make([]byte, 0, total)
	for i, c := range chunks {
		out = append(out, c...)
		chunks[i] = nil
	}
	return out, nil
}

// xmlReader walks XML tokens under a nesting bound: every decoder here
// reads through it, so that no answer can recurse the decoder (or the
// stack) without bound.
type xmlReader struct {
	d     *xml.Decoder
	depth int
	limit *LimitError
}

func newXMLReader(r io.Reader, url string, l Limits) *xmlReader {
	return &xmlReader{d: xml.NewDecoder(r), limit: &LimitError{What: "XML depth", URL: url, Limit: int64(l.depth()), Field: "MaxXMLDepth"}}
}

// Token returns the next token, failing with a *LimitError when elements
// nest deeper than the limit.
func (x *xmlReader) Token() (xml.Token, error) {
	tok, err := x.d.Token()
	if err != nil {
		return nil, err
	}
	switch tok.(type) {
	case xml.StartElement:
		x.depth++
		if int64(x.depth) > x.limit.Limit {
			return nil, x.limit
		}
	case xml.EndElement:
		x.depth--
	}
	return tok, nil
}

// Skip reads up to the end of the current element.
func (x *xmlReader) Skip() error {
	depth := 0
	for {
		tok, err := x.Token()
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			if depth == 0 {
				return nil
			}
			depth--
		}
	}
}

// isLimit reports whether err is a *LimitError.
func isLimit(err error) bool {
	var le *LimitError
	return errors.As(err, &le)
}

// guardXML returns a client for code that decodes answers itself with a
// recursive decoder (go-webdav's client unmarshals properties into
// internal.RawXMLValue, one call frame per element): every XML answer is
// read under l's multistatus limit and walked once with the depth bound
// before the caller sees it, from memory.
func guardXML(hc webdav.HTTPClient, l Limits) webdav.HTTPClient {
	return &xmlGuard{hc: hc, l: l}
}

type xmlGuard struct {
	hc webdav.HTTPClient
	l  Limits
}

func (g *xmlGuard) Do(req *http.Request) (*http.Response, error) {
	resp, err := g.hc.Do(req)
	if err != nil {
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode != http.StatusMultiStatus && !strings.Contains(ct, "xml") {
		return resp, nil
	}
	u := req.URL.Redacted()
	b, err := readAll(resp.Body, resp.ContentLength, &LimitError{What: "multistatus", URL: u, Limit: g.l.multistatus(), Field: "MaxMultistatus"})
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	x := newXMLReader(bytes.NewReader(b), u, g.l)
	for {
		if _, err := x.Token(); err == io.EOF {
			break
		} else if err != nil {
			if isLimit(err) {
				return nil, err
			}
			break // a syntax error is the decoder's to report
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}
