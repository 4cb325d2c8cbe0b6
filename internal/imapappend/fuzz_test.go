package imapappend

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzAppendResponse feeds server output to the response reader of the
// append connection: it must never panic nor loop, every tagged response
// has a tag and a status, and an APPENDUID code expands to exactly the
// number of messages or to nothing.
func FuzzAppendResponse(f *testing.F) {
	for _, s := range []string{
		"* OK [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND BINARY UIDPLUS APPENDLIMIT=35651584] ready\r\n",
		"+ go ahead\r\n",
		"+\r\n",
		"Z1 OK [APPENDUID 38505 3955:3957,4000] APPEND completed\r\n",
		"Z2 NO [TOOBIG] too big\r\nZ3 BAD [CLIENTBUG] what\r\n",
		"Z4 NO [TRYCREATE] Mailbox doesn't exist: Nowhere\r\n",
		"* 3 EXISTS\r\n* 1 FETCH (BODY[] {5}\r\nhello)\r\nZ5 OK done\r\n",
		"* 1 FETCH (BINARY[] ~{3}\r\na\x00b UID 4)\r\n",
		"* BYE [UNAVAILABLE] service busy\r\n",
		"* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n",
		"Z6 OK [APPENDUID 1 1:4294967295] huge\r\n",
		"Z7 OK [APPENDUID 0 1] zero\r\n",
		"* OK [ALERT no close bracket\r\n",
		"* 1 FETCH {99999999999999999}\r\n",
		"\r\n",
		"Z8\r\n",
		"\x00\xff\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, want uint8) {
		rr := respReader{br: bufio.NewReaderSize(bytes.NewReader(data), 64)}
		for range 1000 {
			r, err := rr.read(0)
			if err != nil {
				break
			}
			if r.kind == respTagged && (r.tag == "" || r.status == "") {
				t.Fatalf("tagged response without tag or status: %+v", r)
			}
			if r.code == "APPENDUID" {
				if v, uids := parseAppendUID(r.arg, int(want)); uids != nil && (len(uids) != int(want) || v == 0) {
					t.Fatalf("APPENDUID %q, %d messages: validity %d, %d uids", r.arg, want, v, len(uids))
				}
			}
			if r.isCaps {
				parseCaps(r.caps)
			}
		}
		// The set parser alone, on any text.
		if uids := expandUIDSet(string(data), int(want)); uids != nil {
			if len(uids) != int(want) {
				t.Fatalf("expandUIDSet(%q, %d) gave %d uids", data, want, len(uids))
			}
			for _, u := range uids {
				if u == 0 {
					t.Fatalf("expandUIDSet(%q) gave UID 0", data)
				}
			}
		}
		// The LIST parser on the first line.
		line, _, _ := bytes.Cut(data, []byte("\n"))
		if m, ok := parseListLine([][]byte{bytes.TrimSuffix(line, []byte("\r"))}, [][]byte{data}); ok && len(m.Raw) > len(data) {
			t.Fatalf("raw LIST name longer than the input")
		}
		if n, ok := literalAtEnd(data); ok && (n > appendMaxLiteral || (n < 0 && n != -1)) {
			t.Fatalf("literalAtEnd(%q) = %d", data, n)
		}
	})
}
