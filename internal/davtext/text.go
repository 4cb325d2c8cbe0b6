package davtext

import (
	"bytes"
	"strings"
)

// Line is one logical content line of an iCalendar or vCard text (RFC 5545
// §3.1, RFC 6350 §3.2) with the raw bytes it came from, so that objects can
// be split without re-encoding a single byte.
type Line struct {
	// Raw holds the physical lines, folds and line ends included.
	Raw []byte
	// Name is the upper-cased property name, without a group prefix.
	Name string
	// Params is the raw parameter text after the first ';' (may be empty).
	Params string
	// Value is the unfolded value.
	Value string
}

// Param returns the value of the parameter name (case-insensitive) with
// quotes removed, or "".
func (l Line) Param(name string) string {
	for _, p := range splitOutsideQuotes(l.Params, ';') {
		k, v, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	q := false
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			q = !q
		case sep:
			if !q {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// Lines splits data into logical lines. Line ends may be CRLF or LF; a line
// starting with a space or tab continues the previous one.
func Lines(data []byte) []Line {
	var out []Line
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var phys []byte
		if i < 0 {
			phys, data = data, nil
		} else {
			phys, data = data[:i+1], data[i+1:]
		}
		content := bytes.TrimRight(phys, "\r\n")
		if len(content) > 0 && (content[0] == ' ' || content[0] == '\t') && len(out) > 0 {
			last := &out[len(out)-1]
			last.Raw = append(last.Raw, phys...)
			last.Value += string(content[1:])
			continue
		}
		if len(content) == 0 {
			continue
		}
		l := Line{Raw: append([]byte(nil), phys...)}
		s := string(content)
		// Name ends at the first ';' or ':'; params end at the first ':'
		// outside quotes.
		end := strings.IndexAny(s, ";:")
		if end < 0 {
			l.Name = strings.ToUpper(s)
			out = append(out, l)
			continue
		}
		l.Name = strings.ToUpper(s[:end])
		if dot := strings.LastIndexByte(l.Name, '.'); dot >= 0 {
			l.Name = l.Name[dot+1:]
		}
		rest := s[end:]
		if rest[0] == ';' {
			q := false
			j := 1
			for ; j < len(rest); j++ {
				if rest[j] == '"' {
					q = !q
				} else if rest[j] == ':' && !q {
					break
				}
			}
			l.Params = rest[1:min(j, len(rest))]
			if j < len(rest) {
				l.Value = rest[j+1:]
			}
		} else {
			l.Value = rest[1:]
		}
		out = append(out, l)
	}
	return out
}

// Block is a BEGIN:X ... END:X range of lines.
type Block struct {
	Kind  string
	Lines []Line
}

// Raw returns the block's bytes.
func (b Block) Raw() []byte {
	var out []byte
	for _, l := range b.Lines {
		out = append(out, l.Raw...)
		if n := len(out); n > 0 && out[n-1] != '\n' {
			out = append(out, '\r', '\n')
		}
	}
	return out
}

// Top returns the value of the first property name at the block's own level
// (not inside nested components), or "".
func (b Block) Top(name string) (Line, bool) {
	depth := 0
	for i, l := range b.Lines {
		switch {
		case l.Name == "BEGIN":
			if i > 0 {
				depth++
			}
		case l.Name == "END":
			depth--
		case depth == 0 && l.Name == name:
			return l, true
		}
	}
	return Line{}, false
}

// Blocks splits lines into the top-level BEGIN/END blocks of kind (e.g.
// "VCALENDAR", "VCARD"); lines outside any block are dropped. It returns
// false when a block is not closed.
func Blocks(lines []Line) ([]Block, bool) {
	var out []Block
	var cur *Block
	depth := 0
	for _, l := range lines {
		switch l.Name {
		case "BEGIN":
			if depth == 0 {
				out = append(out, Block{Kind: strings.ToUpper(strings.TrimSpace(l.Value))})
				cur = &out[len(out)-1]
			}
			depth++
		case "END":
			if depth == 0 {
				return out, false
			}
			depth--
		}
		if cur != nil {
			cur.Lines = append(cur.Lines, l)
		}
		if depth == 0 {
			cur = nil
		}
	}
	return out, depth == 0
}

// Inner splits the lines inside a block (without its own BEGIN/END) into
// properties at its level and child blocks, in order.
func (b Block) Inner() (props []Line, children []Block, ok bool) {
	if len(b.Lines) < 2 {
		return nil, nil, false
	}
	inner := b.Lines[1 : len(b.Lines)-1]
	var cur *Block
	depth := 0
	for _, l := range inner {
		switch l.Name {
		case "BEGIN":
			if depth == 0 {
				children = append(children, Block{Kind: strings.ToUpper(strings.TrimSpace(l.Value))})
				cur = &children[len(children)-1]
			}
			depth++
		case "END":
			if depth == 0 {
				return nil, nil, false
			}
			depth--
			cur.Lines = append(cur.Lines, l)
			if depth == 0 {
				cur = nil
			}
			continue
		}
		if cur != nil {
			cur.Lines = append(cur.Lines, l)
		} else {
			props = append(props, l)
		}
	}
	return props, children, depth == 0
}

// CRLF returns data with every line ending as CRLF (XML transport turns
// CRLF into LF).
func CRLF(data []byte) []byte {
	n := 0
	for i, b := range data {
		if b == '\n' && (i == 0 || data[i-1] != '\r') {
			n++
		}
	}
	if n == 0 {
		return data
	}
	out := make([]byte, 0, len(data)+n)
	for i, b := range data {
		if b == '\n' && (i == 0 || data[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b)
	}
	return out
}
