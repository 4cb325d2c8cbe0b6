package dav

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// xmlDepth returns the deepest element nesting reached before the end of
// s or its first syntax error.
func xmlDepth(s string) int {
	d := xml.NewDecoder(strings.NewReader(s))
	depth, deepest := 0, 0
	for {
		tok, err := d.Token()
		if err != nil {
			return deepest
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			deepest = max(deepest, depth)
		case xml.EndElement:
			depth--
		}
	}
}

func propDepth(ps []xmlProp) int {
	d := 0
	for _, p := range ps {
		d = max(d, 1+propDepth(p.Children))
	}
	return d
}

// fuzzLimits are small, so that the fuzzer reaches them.
var fuzzLimits = Limits{MaxMultistatus: 4 << 10, MaxXMLDepth: 12}

// readFuzz reads body as the answer to a PROPFIND, through the client's
// own reader.
func readFuzz(t *testing.T, body []byte) ([]msResponse, error) {
	c, err := newClientWith(nil, "https://dav.example.com/", clientOptions{Limits: fuzzLimits})
	if err != nil {
		t.Fatal(err)
	}
	req, err := c.newRequest(t.Context(), "PROPFIND", "/cal/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{StatusCode: http.StatusMultiStatus, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: -1}
	return c.readMultistatus(req, resp)
}

// FuzzMultistatus feeds the client's multistatus reader (byte limit, depth
// limit, hand-written decoder) and the guard placed before go-webdav's
// decoder, with small limits so that they are hit: no input may crash
// them, a size error only comes from an input over the byte limit, a depth
// error only from one nesting deeper than the depth limit, and nothing
// decoded nests deeper than the limit.
func FuzzMultistatus(f *testing.F) {
	for _, s := range multistatusSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`<D:multistatus xmlns:D="DAV:"><D:response><D:href>/a</D:href><D:propstat><D:prop>` + strings.Repeat("<D:x>", 20) + strings.Repeat("</D:x>", 20) + `</D:prop></D:propstat></D:response></D:multistatus>`))
	f.Add([]byte(`<D:multistatus xmlns:D="DAV:">` + strings.Repeat(`<D:response><D:href>/cal/object.ics</D:href><D:propstat><D:prop><D:getetag>"1"</D:getetag></D:prop></D:propstat></D:response>`, 60) + `</D:multistatus>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rs, err := readFuzz(t, body)
		var le *LimitError
		if errors.As(err, &le) {
			switch le.What {
			case "multistatus":
				if int64(len(body)) <= fuzzLimits.MaxMultistatus {
					t.Fatalf("%v for %d bytes", err, len(body))
				}
			case "XML depth":
				if xmlDepth(string(body)) <= fuzzLimits.MaxXMLDepth {
					t.Fatalf("%v, but the input nests %d deep", err, xmlDepth(string(body)))
				}
			default:
				t.Fatalf("unexpected limit %v", err)
			}
		}
		for _, r := range rs {
			// multistatus > response > propstat > prop > property: the
			// properties start at depth 5.
			if d := propDepth(r.Props); d > fuzzLimits.MaxXMLDepth-4 {
				t.Fatalf("decoded properties nest %d deep under a limit of %d", d, fuzzLimits.MaxXMLDepth)
			}
			if r.Href != strings.TrimSpace(r.Href) {
				t.Fatalf("href %q not trimmed", r.Href)
			}
		}

		g := guardXML(doerFunc(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusMultiStatus, Header: http.Header{"Content-Type": {"application/xml"}},
				Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}, nil
		}), fuzzLimits)
		req, _ := http.NewRequest("PROPFIND", "https://dav.example.com/cal/", nil)
		resp, gerr := g.Do(req)
		if gerr == nil {
			b, _ := io.ReadAll(resp.Body)
			if !bytes.Equal(b, body) {
				t.Fatalf("guard changed the body")
			}
			if int64(len(body)) > fuzzLimits.MaxMultistatus {
				t.Fatalf("guard passed %d bytes over a limit of %d", len(body), fuzzLimits.MaxMultistatus)
			}
		} else if !errors.As(gerr, &le) {
			t.Fatalf("guard: %v, want only limit errors", gerr)
		}
	})
}

type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestLimitReader(t *testing.T) {
	e := &LimitError{What: "object", URL: "u", Limit: 10, Field: "MaxObject"}
	for _, tc := range []struct {
		n    int
		hint int64
		ok   bool
	}{{0, -1, true}, {10, -1, true}, {11, -1, false}, {5000, -1, false}, {10, 10, true}, {5, 11, false}, {1 << 20, -1, false}} {
		e.Limit = 10
		b, err := readAll(bytes.NewReader(bytes.Repeat([]byte("x"), tc.n)), tc.hint, e)
		if tc.ok && (err != nil || len(b) != tc.n) {
			t.Errorf("%d bytes (hint %d): %d, %v; want all", tc.n, tc.hint, len(b), err)
		}
		if !tc.ok && !errors.Is(err, error(e)) {
			t.Errorf("%d bytes (hint %d): %v, want the limit error", tc.n, tc.hint, err)
		}
	}
	// Large answers under the limit arrive whole through the chunked path.
	e.Limit = 3 << 20
	data := bytes.Repeat([]byte("0123456789"), 300_000)
	b, err := readAll(bytes.NewReader(data), -1, e)
	if err != nil || !bytes.Equal(b, data) {
		t.Errorf("3 MB under a 3 MiB limit: %d bytes, %v", len(b), err)
	}
}
