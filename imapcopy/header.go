package imapcopy

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
)

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
