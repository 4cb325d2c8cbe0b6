package transfer

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

// Progress is a transfer's cumulative progress.
type Progress struct {
	// Bytes of the tree done so far (copied, or found already present),
	// and the tree's total when known (0 when not).
	Bytes, TotalBytes int64
	// Files checked so far and the number known so far. rsync counts
	// directories too; LocalCopy counts regular files only.
	Files, TotalFiles int64
}

// parseProgress2 reads one update of rsync's --info=progress2 (with
// --no-human-readable), e.g.
//
//	3000000  99%    2.11MB/s    0:00:01 (xfr#1, to-chk=2/4)
//
// It returns the bytes done, and the files checked and known when the
// line carries to-chk= or ir-chk= (rsync(1), --info=progress2; ir-chk
// while the incremental recursion is still scanning).
func parseProgress2(line string) (p Progress, ok bool) {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasSuffix(f[1], "%") {
		return p, false
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(f[0], ",", ""), 10, 64)
	if err != nil || n < 0 {
		return p, false
	}
	p.Bytes = n
	for _, tok := range f[2:] {
		tok = strings.Trim(tok, "(),")
		var rest string
		switch {
		case strings.HasPrefix(tok, "to-chk="):
			rest = strings.TrimPrefix(tok, "to-chk=")
		case strings.HasPrefix(tok, "ir-chk="):
			rest = strings.TrimPrefix(tok, "ir-chk=")
		default:
			continue
		}
		left, total, found := strings.Cut(rest, "/")
		if !found {
			continue
		}
		l, err1 := strconv.ParseInt(left, 10, 64)
		t, err2 := strconv.ParseInt(total, 10, 64)
		if err1 != nil || err2 != nil || l < 0 || t < l {
			continue
		}
		p.Files, p.TotalFiles = t-l, t
	}
	return p, true
}

// Stats are the numbers rsync prints with --stats.
type Stats struct {
	// Files and Dirs count the source tree; Bytes is its total file size.
	Files, Dirs, Bytes int64
	// Transferred counts the regular files sent in this run.
	Transferred int64
	// TransferredBytes is the size of the files sent in this run.
	TransferredBytes int64
	// Literal is the data sent as is; Matched is the data found already at
	// the destination (a partial file from an interrupted run, or an older
	// copy) and not sent again.
	Literal, Matched int64
}

// parseStats reads the --stats block of rsync's output (rsync(1),
// --stats), with --no-human-readable:
//
//	Number of files: 4 (reg: 2, dir: 2)
//	Number of regular files transferred: 2
//	Total file size: 3000003 bytes
//	Total transferred file size: 3000003 bytes
//	Literal data: 3000003 bytes
//	Matched data: 0 bytes
//
// ok is false when no "Number of files" line was found.
func parseStats(out []byte) (s Stats, ok bool) {
	num := func(v string) int64 {
		v = strings.TrimSpace(v)
		v, _, _ = strings.Cut(v, " ")
		n, err := strconv.ParseInt(strings.ReplaceAll(v, ",", ""), 10, 64)
		if err != nil || n < 0 {
			return 0
		}
		return n
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), ":")
		if !found {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Number of files":
			ok = true
			s.Files, s.Dirs = 0, 0
			if _, paren, found := strings.Cut(v, "("); found {
				paren = strings.TrimSuffix(strings.TrimSpace(paren), ")")
				for _, part := range strings.Split(paren, ",") {
					name, val, _ := strings.Cut(strings.TrimSpace(part), ":")
					switch name {
					case "reg":
						s.Files = num(val)
					case "dir":
						s.Dirs = num(val)
					}
				}
			}
		case "Number of regular files transferred":
			s.Transferred = num(v)
		case "Total file size":
			s.Bytes = num(v)
		case "Total transferred file size":
			s.TransferredBytes = num(v)
		case "Literal data":
			s.Literal = num(v)
		case "Matched data":
			s.Matched = num(v)
		}
	}
	return s, ok
}

// itemized splits the lines of --itemize-changes output (rsync(1),
// --itemize-changes: YXcstpoguax NAME) that precede the --stats block into
// content differences, attribute-only differences and "*deleting" lines
// (files only the destination has, listed with --delete).
func itemized(out []byte) (differ, attrs, extra []string) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Number of files:") {
			break
		}
		if len(line) < 12 || line[11] != ' ' && !strings.HasPrefix(line, "*deleting") {
			continue
		}
		switch {
		case strings.HasPrefix(line, "*deleting"):
			extra = append(extra, strings.TrimSpace(strings.TrimPrefix(line, "*deleting")))
		case line[0] == '.':
			attrs = append(attrs, line[12:])
		case strings.ContainsRune("<>ch", rune(line[0])):
			differ = append(differ, line[12:])
		}
	}
	return differ, attrs, extra
}

// splitCR splits rsync's progress output on '\r' and '\n'.
func splitCR(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	if len(data) > 64*1024 {
		// A runaway line: keep the tail only.
		return len(data) - 1024, nil, nil
	}
	return 0, nil, nil
}

// scanProgress reads rsync's standard output, calls fn for each progress
// update and copies every other line to rest.
func scanProgress(r io.Reader, fn func(Progress), rest io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 128*1024)
	sc.Split(splitCR)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := parseProgress2(line); ok {
			if fn != nil {
				fn(p)
			}
			continue
		}
		if strings.TrimSpace(line) != "" {
			io.WriteString(rest, line+"\n")
		}
	}
	// Drain what the scanner left (a line over the buffer) so that rsync
	// never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}
