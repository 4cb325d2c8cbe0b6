package dav

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// nestedServer serves a read-only CalDAV tree where calendar Work holds a
// nested calendar Team (as Zimbra allows and Carbonio does not):
// home /u/cal/, /u/cal/Work/{a.ics, Team/}, /u/cal/Work/Team/b.ics.
func nestedServer(t *testing.T) *httptest.Server {
	ev := func(uid string) string {
		return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250101T100000Z\r\nSUMMARY:" + uid + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	}
	objs := map[string]string{"/u/cal/Work/a.ics": ev("a"), "/u/cal/Work/Team/b.ics": ev("b")}
	cal := func(href, name string) string {
		return fmt.Sprintf(`<D:response><D:href>%s</D:href><D:propstat><D:prop><D:resourcetype><D:collection/><C:calendar/></D:resourcetype><D:displayname>%s</D:displayname></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`, href, name)
	}
	obj := func(href string) string {
		return fmt.Sprintf(`<D:response><D:href>%s</D:href><D:propstat><D:prop><D:getetag>"e-%s"</D:getetag><D:resourcetype/></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`, href, href)
	}
	ms := func(rs ...string) string {
		return `<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">` + strings.Join(rs, "") + `</D:multistatus>`
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		depth := r.Header.Get("Depth")
		var body string
		switch {
		case r.Method == http.MethodGet && objs[r.URL.Path] != "":
			w.Header().Set("ETag", `"e-`+r.URL.Path+`"`)
			fmt.Fprint(w, objs[r.URL.Path])
			return
		case r.Method == "REPORT":
			http.Error(w, "no REPORT here", http.StatusNotImplemented) // forces the GET fallback
			return
		case r.Method != "PROPFIND":
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		case r.URL.Path == "/u/":
			body = ms(`<D:response><D:href>/u/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype><D:current-user-principal><D:href>/u/</D:href></D:current-user-principal><C:calendar-home-set><D:href>/u/cal/</D:href></C:calendar-home-set></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`)
		case r.URL.Path == "/u/cal/":
			body = ms(`<D:response><D:href>/u/cal/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`, cal("/u/cal/Work/", "Work"))
		case r.URL.Path == "/u/cal/Work/" && depth == "0":
			body = ms(cal("/u/cal/Work/", "Work"))
		case r.URL.Path == "/u/cal/Work/":
			body = ms(cal("/u/cal/Work/", "Work"), obj("/u/cal/Work/a.ics"), cal("/u/cal/Work/Team/", "Team"))
		case r.URL.Path == "/u/cal/Work/Team/" && depth == "0":
			body = ms(cal("/u/cal/Work/Team/", "Team"))
		case r.URL.Path == "/u/cal/Work/Team/":
			body = ms(cal("/u/cal/Work/Team/", "Team"), obj("/u/cal/Work/Team/b.ics"))
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusMultiStatus)
		fmt.Fprint(w, body)
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// memDest is a Destination in memory.
type memDest struct {
	cols []Collection
	objs map[string]map[string][]byte // collection href -> href -> data
}

func (m *memDest) Collections(context.Context) ([]Collection, error) { return m.cols, nil }
func (m *memDest) List(_ context.Context, c Collection) ([]Ref, error) {
	var out []Ref
	for h := range m.objs[c.Href] {
		out = append(out, Ref{Href: h, ETag: "x"})
	}
	return out, nil
}
func (m *memDest) Read(_ context.Context, c Collection, refs []Ref, fn ReadFunc) error {
	for _, r := range refs {
		fn(r, m.objs[c.Href][r.Href], nil)
	}
	return nil
}
func (m *memDest) CreateCollection(_ context.Context, c Collection) (Collection, error) {
	c.Href = "/d/" + c.Name + "/"
	m.cols = append(m.cols, c)
	m.objs[c.Href] = map[string][]byte{}
	return c, nil
}
func (m *memDest) Put(_ context.Context, c Collection, href string, data []byte, _ Cond) (string, error) {
	m.objs[c.Href][href] = data
	return "x", nil
}

// uidRules is a minimal Rules: UID line, whole data as hash.
type uidRules struct{}

func (uidRules) Protocol() *Protocol { return CalDAV }

func (uidRules) Split(data []byte) ([]Item, error) {
	uid, h, err := uidRules{}.Fingerprint(data)
	return []Item{{UID: uid, Component: "VEVENT", Data: data, Hash: h}}, err
}
func (uidRules) Fingerprint(data []byte) (string, string, error) {
	for _, l := range davtext.Lines(data) {
		if l.Name == "UID" {
			return l.Value, string(data), nil
		}
	}
	return "", "", fmt.Errorf("no UID")
}

// TestNestedCollectionsFlattened: a calendar nested in another is found,
// copied to a collection named by its flattened path and reported.
func TestNestedCollectionsFlattened(t *testing.T) {
	ts := nestedServer(t)
	src, err := NewRemote(CalDAV, Endpoint{URL: ts.URL + "/u/", HTTPClient: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	dst := &memDest{objs: map[string]map[string][]byte{}}
	e := &Copier{Rules: uidRules{}}
	st, err := e.Copy(context.Background(), dst, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Collections) != 2 {
		t.Fatalf("%d collections, want 2: %+v", len(st.Collections), st.Collections)
	}
	n := st.Collections[1]
	if n.Name != "Work-Team" || n.Nested != "Work/Team" || n.Created != 1 {
		t.Errorf("nested collection stats %+v", n)
	}
	if len(dst.objs["/d/Work-Team/"]) != 1 || len(dst.objs["/d/Work/"]) != 1 {
		t.Errorf("destination %v", dst.objs)
	}
	v, err := e.Verify(context.Background(), dst, src)
	if err != nil || !v.OK() || len(v.Collections) != 2 {
		t.Errorf("verify %v %+v", err, v)
	}
}
