package imapappend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// waitTagged reads responses until the tagged answer to tag, which it
// returns whatever its status. Untagged data is skipped (CAPABILITY is
// kept); the answers of other commands in flight are kept for their own
// waits (see stashed); a BYE or an unknown tag closes the connection.
func (c *Conn) waitTagged(ctx context.Context, tag string, timeout time.Duration) (response, error) {
	if r, ok := c.stashed(tag); ok {
		return r, nil
	}
	for {
		r, err := c.rr.read(timeout)
		if err != nil {
			return response{}, c.fail(ctx, err)
		}
		switch {
		case r.kind == respTagged && r.tag == tag:
			if r.code == "CAPABILITY" && r.status == imap.StatusResponseTypeOK {
				c.cs = parseCaps(strings.Fields(r.arg))
			}
			return r, nil
		case r.kind == respTagged && c.stash(r):
		case r.kind == respTagged:
			return response{}, c.fail(ctx, fmt.Errorf("imapappend: unexpected tag %q (waiting for %s)", r.tag, tag))
		case r.kind == respCont:
			return response{}, c.fail(ctx, errors.New("imapappend: unexpected continuation request"))
		case r.status == imap.StatusResponseTypeBye:
			return response{}, c.fail(ctx, &byeError{text: r.text})
		case r.isCaps:
			c.cs = parseCaps(r.caps)
		}
	}
}

// waitCont waits for the continuation request of a synchronising literal.
// done is true when the tagged answer came in its place: the command is
// over and r is that answer.
func (c *Conn) waitCont(ctx context.Context, tag string) (r response, done bool, err error) {
	for {
		r, err := c.rr.read(c.lineTimeout)
		if err != nil {
			return response{}, false, c.fail(ctx, err)
		}
		switch {
		case r.kind == respCont:
			return r, false, nil
		case r.kind == respTagged && r.tag == tag:
			return r, true, nil
		case r.kind == respTagged && c.stash(r):
		case r.kind == respTagged:
			return response{}, false, c.fail(ctx, fmt.Errorf("imapappend: unexpected tag %q (waiting for %s)", r.tag, tag))
		case r.status == imap.StatusResponseTypeBye:
			return response{}, false, c.fail(ctx, &byeError{text: r.text})
		}
	}
}

// stash keeps r, the tagged answer of a command in flight other than the
// one being waited for, and reports whether r was one.
func (c *Conn) stash(r response) bool {
	if !c.inFlight[r.tag] {
		return false
	}
	if c.answers == nil {
		c.answers = map[string]response{}
	}
	c.answers[r.tag] = r
	delete(c.inFlight, r.tag)
	return true
}

// stashed returns the kept answer to tag.
func (c *Conn) stashed(tag string) (response, bool) {
	r, ok := c.answers[tag]
	delete(c.answers, tag)
	return r, ok
}

// literalHeader writes a literal's header ({n}, {n+}, ~{n} or ~{n+}) and,
// for a synchronising literal, flushes and waits for '+'. done is true when
// the tagged answer came in place of '+'; r is that answer.
func (c *Conn) literalHeader(ctx context.Context, tag string, n int64, binary bool) (r response, done bool, err error) {
	nonSync := c.cs.LiteralPlus || (c.cs.LiteralMinus && n <= literalMinusMax)
	if binary {
		c.bw.WriteByte('~')
	}
	c.bw.WriteByte('{')
	c.bw.Write(strconv.AppendInt(c.bw.AvailableBuffer(), n, 10))
	if nonSync {
		c.bw.WriteString("+}\r\n")
		return response{}, false, nil
	}
	c.bw.WriteString("}\r\n")
	if err := c.bw.Flush(); err != nil {
		return response{}, false, c.failWrite(ctx, "literal", err)
	}
	return c.waitCont(ctx, tag)
}

// parseAppendUID parses the arguments of an APPENDUID code, "v uid-set",
// and expands the set in order. uids is nil unless the set holds exactly
// want UIDs.
func parseAppendUID(arg string, want int) (uint32, []imap.UID) {
	vs, set, ok := strings.Cut(strings.TrimSpace(arg), " ")
	if !ok {
		return 0, nil
	}
	v, err := strconv.ParseUint(vs, 10, 32)
	if err != nil || v == 0 {
		return 0, nil
	}
	return uint32(v), expandUIDSet(strings.TrimSpace(set), want)
}

// expandUIDSet expands "5:9,12" in order; nil when the set is malformed or
// does not hold exactly want UIDs. It counts before it allocates.
func expandUIDSet(set string, want int) []imap.UID {
	if set == "" || want <= 0 {
		return nil
	}
	type span struct{ lo, hi uint32 }
	var spans []span
	count := 0
	for part := range strings.SplitSeq(set, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err := parseNZ(a)
		if err != nil {
			return nil
		}
		hi := lo
		if isRange {
			if hi, err = parseNZ(b); err != nil {
				return nil
			}
			if lo > hi {
				lo, hi = hi, lo
			}
		}
		if n := int64(hi-lo) + 1; n > int64(want-count) {
			return nil
		} else {
			count += int(n)
		}
		spans = append(spans, span{lo, hi})
	}
	if count != want {
		return nil
	}
	uids := make([]imap.UID, 0, want)
	for _, s := range spans {
		for u := uint64(s.lo); u <= uint64(s.hi); u++ {
			uids = append(uids, imap.UID(u))
		}
	}
	return uids
}

func parseNZ(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err == nil && v == 0 {
		err = errors.New("zero")
	}
	return uint32(v), err
}

// respKind tells continuation requests, untagged and tagged responses
// apart.
type respKind uint8

const (
	respUntagged respKind = iota
	respCont
	respTagged
)

// response is the first line of one server response, parsed as far as an
// append connection needs.
type response struct {
	kind   respKind
	tag    string                  // respTagged
	status imap.StatusResponseType // OK, NO, BAD, BYE, PREAUTH; "" for untagged data
	code   imap.ResponseCode       // upper case
	arg    string                  // the code's arguments
	text   string
	isCaps bool     // untagged CAPABILITY data
	caps   []string // its list
}

// err returns the response as an *imap.Error.
func (r response) err() *imap.Error {
	return &imap.Error{Type: r.status, Code: r.code, Text: r.text}
}

// errProtocol marks responses that are not IMAP.
var errProtocol = errors.New("imapappend: protocol error")

// parseResponse parses the first line of a response (CRLF removed). It
// never panics and allocates only the strings it returns.
func parseResponse(line []byte) (response, error) {
	var r response
	if len(line) == 0 {
		return r, fmt.Errorf("%w: empty response line", errProtocol)
	}
	if line[0] == '+' {
		r.kind = respCont
		r.text = string(bytes.TrimPrefix(line[1:], []byte(" ")))
		return r, nil
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return r, fmt.Errorf("%w: %q", errProtocol, clip(line))
	}
	tag, rest := line[:sp], line[sp+1:]
	if len(tag) == 1 && tag[0] == '*' {
		r.kind = respUntagged
	} else {
		for _, ch := range tag {
			if ch <= 0x20 || ch >= 0x7f || ch == '+' || ch == '(' || ch == ')' || ch == '{' || ch == '%' || ch == '*' || ch == '"' || ch == '\\' {
				return r, fmt.Errorf("%w: bad tag in %q", errProtocol, clip(line))
			}
		}
		r.kind = respTagged
		r.tag = string(tag)
	}
	word, after, _ := bytes.Cut(rest, []byte(" "))
	switch st := imap.StatusResponseType(strings.ToUpper(string(word))); st {
	case imap.StatusResponseTypeOK, imap.StatusResponseTypeNo, imap.StatusResponseTypeBad,
		imap.StatusResponseTypeBye, imap.StatusResponseTypePreAuth:
		r.status = st
		parseRespText(&r, after)
		return r, nil
	}
	if r.kind == respTagged {
		return r, fmt.Errorf("%w: tagged response without status: %q", errProtocol, clip(line))
	}
	if strings.EqualFold(string(word), "CAPABILITY") {
		r.isCaps = true
		r.caps = strings.Fields(string(after))
	}
	return r, nil
}

// parseRespText fills code, arg and text from resp-text: ["[" code [SP
// arg] "]" SP] text. A code without its "]" is kept as text.
func parseRespText(r *response, b []byte) {
	if len(b) > 0 && b[0] == '[' {
		if end := bytes.IndexByte(b, ']'); end > 0 {
			code, arg, _ := bytes.Cut(b[1:end], []byte(" "))
			r.code = imap.ResponseCode(strings.ToUpper(string(code)))
			r.arg = string(arg)
			b = bytes.TrimPrefix(b[end+1:], []byte(" "))
		}
	}
	r.text = string(b)
}

func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// respReader reads responses: lines, with the literals of untagged data
// skipped.
type respReader struct {
	br       *bufio.Reader
	deadline func(time.Time) error // may be nil
	line     []byte
}

// read reads one whole response and returns its first line parsed; the
// wait for each line is bounded by timeout, each skipped literal by
// literalTimeout.
func (rr *respReader) read(timeout time.Duration) (response, error) {
	line, err := rr.readLine(timeout)
	if err != nil {
		return response{}, err
	}
	r, err := parseResponse(line)
	if err != nil {
		return r, err
	}
	// Only untagged data may carry literals ({n}, ~{n} at a line end);
	// status responses and continuation requests end at CRLF.
	for r.kind == respUntagged && r.status == "" {
		n, ok := literalAtEnd(line)
		if !ok {
			break
		}
		if n < 0 {
			return r, fmt.Errorf("%w: bad literal in %q", errProtocol, clip(line))
		}
		if rr.deadline != nil {
			_ = rr.deadline(time.Now().Add(literalTimeout(n)))
		}
		if _, err := rr.br.Discard(int(n)); err != nil {
			return r, fmt.Errorf("imapappend: read literal: %w", err)
		}
		if line, err = rr.readLine(timeout); err != nil {
			return r, err
		}
	}
	return r, nil
}

// readLine reads one line without its CRLF (a bare LF is accepted).
func (rr *respReader) readLine(timeout time.Duration) ([]byte, error) {
	if rr.deadline != nil {
		_ = rr.deadline(time.Now().Add(timeout))
	}
	rr.line = rr.line[:0]
	for {
		frag, err := rr.br.ReadSlice('\n')
		if len(rr.line)+len(frag) > appendMaxLine {
			return nil, fmt.Errorf("%w: response line longer than %d bytes", errProtocol, appendMaxLine)
		}
		rr.line = append(rr.line, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("imapappend: read response: %w", err)
		}
	}
	line := bytes.TrimSuffix(rr.line[:len(rr.line)-1], []byte("\r"))
	return line, nil
}

// literalAtEnd reports whether line ends with a literal announcement
// ({n}, {n+}, ~{n}) and its size; n is -1 for a malformed or too large one.
func literalAtEnd(line []byte) (n int64, ok bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	digits := bytes.TrimSuffix(line[open+1:len(line)-1], []byte("+"))
	if len(digits) == 0 || len(digits) > 13 {
		return -1, true
	}
	for _, d := range digits {
		if d < '0' || d > '9' {
			return -1, true
		}
		n = n*10 + int64(d-'0')
	}
	if n > appendMaxLiteral {
		return -1, true
	}
	return n, true
}
