// Package hostiledav holds hostile and broken fake HTTP/DAV servers, one
// behaviour each, and a Recorder that notes what reaches a second listener.
// The tests of this package drive the real caldav and carddav copiers
// against them; the bodies they send are generated while streaming, so
// that a test serving 500 MB allocates nothing of that size itself.
package hostiledav

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Seen is one request a Recorder received.
type Seen struct {
	Method        string
	Path          string
	Authorization string
	Cookie        string
}

// Recorder is a handler that records every request and answers GET with a
// valid calendar object, so that a client which did send it something
// would succeed. It is safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	seen []Seen
}

// ServeHTTP implements http.Handler.
func (rec *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.seen = append(rec.seen, Seen{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Cookie: r.Header.Get("Cookie")})
	rec.mu.Unlock()
	io.Copy(io.Discard, r.Body)
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Type", "text/calendar")
		w.Header().Set("ETag", `"leak"`)
		io.WriteString(w, Event("leaked-"+strings.Trim(strings.ReplaceAll(r.URL.Path, "/", "-"), "-")))
	case "PROPFIND", "REPORT":
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusMultiStatus)
		io.WriteString(w, `<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"/>`)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// Seen returns the requests received so far.
func (rec *Recorder) Seen() []Seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Seen(nil), rec.seen...)
}

// Credentialed returns the received requests that carried an Authorization
// header or a cookie.
func (rec *Recorder) Credentialed() []Seen {
	var out []Seen
	for _, s := range rec.Seen() {
		if s.Authorization != "" || s.Cookie != "" {
			out = append(out, s)
		}
	}
	return out
}

// Event returns a minimal VEVENT calendar object with uid.
func Event(uid string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:20240102T100000Z\r\nDTEND:20240102T110000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
}

const (
	msHead   = `<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">`
	msTail   = `</d:multistatus>`
	calProps = `<d:resourcetype><d:collection/><c:calendar/></d:resourcetype><d:displayname>Hostile</d:displayname>`
)

func response(href, props string) string {
	return `<d:response><d:href>` + href + `</d:href><d:propstat><d:prop>` + props +
		`</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>`
}

func multistatus(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusMultiStatus)
	io.WriteString(w, msHead+body+msTail)
}

// ForeignHrefs is a calendar collection at /cal/ (the URL to configure)
// whose PROPFIND listing names its objects by the given hrefs, typically
// absolute URLs on another origin. Its multiget REPORT returns none of
// them, so that a client falls back to a GET per href.
func ForeignHrefs(hrefs ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch {
		case r.Method == "PROPFIND" && r.Header.Get("Depth") == "1":
			var b strings.Builder
			b.WriteString(response("/cal/", calProps))
			for i, h := range hrefs {
				b.WriteString(response(h, fmt.Sprintf(`<d:getetag>"e%d"</d:getetag><d:resourcetype/>`, i)))
			}
			multistatus(w, b.String())
		case r.Method == "PROPFIND":
			multistatus(w, response("/cal/", calProps))
		case r.Method == "REPORT":
			multistatus(w, "")
		default:
			http.NotFound(w, r)
		}
	})
}

// ForeignDiscovery answers PROPFIND at any path with a DAV:
// current-user-principal of principal and, when home is not empty, a
// calendar-home-set of home: both may point to another origin.
func ForeignDiscovery(principal, home string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method != "PROPFIND" {
			http.NotFound(w, r)
			return
		}
		props := `<d:resourcetype><d:collection/></d:resourcetype><d:current-user-principal><d:href>` + principal + `</d:href></d:current-user-principal>`
		if home != "" {
			props += `<c:calendar-home-set><d:href>` + home + `</d:href></c:calendar-home-set>`
		}
		multistatus(w, response(r.URL.Path, props))
	})
}

// Redirect answers every request with a redirect of the given code to
// target plus the request path.
func Redirect(target string, code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Location", strings.TrimSuffix(target, "/")+r.URL.Path)
		w.WriteHeader(code)
	})
}

// DeepXML is a calendar collection at /cal/ whose PROPFIND answers carry
// a property nested depth elements deep, streamed.
func DeepXML(depth int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method != "PROPFIND" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusMultiStatus)
		bw := bufio.NewWriterSize(w, 64<<10)
		defer bw.Flush()
		bw.WriteString(msHead + `<d:response><d:href>/cal/</d:href><d:propstat><d:prop>` + calProps + `<d:x>`)
		for range depth {
			if _, err := bw.WriteString("<d:a>"); err != nil {
				return
			}
		}
		for range depth {
			if _, err := bw.WriteString("</d:a>"); err != nil {
				return
			}
		}
		bw.WriteString(`</d:x></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>` + msTail)
	})
}

// HugeMultistatus is a calendar collection at /cal/ whose depth-1 listing
// runs to about size bytes of object responses, streamed.
func HugeMultistatus(size int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method != "PROPFIND" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusMultiStatus)
		bw := bufio.NewWriterSize(w, 64<<10)
		defer bw.Flush()
		bw.WriteString(msHead + response("/cal/", calProps))
		if r.Header.Get("Depth") == "1" {
			var n int64
			for i := 0; n < size; i++ {
				k, err := bw.WriteString(response(fmt.Sprintf("/cal/object-%09d.ics", i), fmt.Sprintf(`<d:getetag>"%d"</d:getetag><d:resourcetype/>`, i)))
				if err != nil {
					return
				}
				n += int64(k)
			}
		}
		bw.WriteString(msTail)
	})
}

// HugeExport is a Zimbra REST export (/home/<account>/<folder>?fmt=ics)
// of about size bytes of events, streamed without Content-Length.
func HugeExport(size int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/home/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/calendar")
		bw := bufio.NewWriterSize(w, 64<<10)
		defer bw.Flush()
		bw.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile//EN\r\n")
		var n int64
		for i := 0; n < size; i++ {
			k, err := fmt.Fprintf(bw, "BEGIN:VEVENT\r\nUID:event-%09d\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:20240102T100000Z\r\nSUMMARY:%s\r\nEND:VEVENT\r\n", i, strings.Repeat("x", 200))
			if err != nil {
				return
			}
			n += int64(k)
		}
		bw.WriteString("END:VCALENDAR\r\n")
	})
}

// Silent accepts requests and never answers; it returns when the client
// goes away or release is closed.
func Silent(release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
}

// Stalling is a calendar collection at /cal/ that answers PROPFIND with
// its status line, headers and the first bytes of a multistatus, then
// sends nothing more until the client goes away or release is closed.
func Stalling(release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(http.StatusMultiStatus)
		io.WriteString(w, msHead+`<d:response><d:href>/cal/</d:href>`)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
}

// Trickle is a calendar collection at /cal/ holding one event, every
// answer of which is sent in pieces of 16 bytes with a pause of every
// between them: slow, but never idle for long.
func Trickle(every time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		var body, ctype string
		code := http.StatusMultiStatus
		switch {
		case r.Method == "PROPFIND" && r.Header.Get("Depth") == "1":
			body = msHead + response("/cal/", calProps) + response("/cal/one.ics", `<d:getetag>"1"</d:getetag><d:resourcetype/>`) + msTail
		case r.Method == "PROPFIND":
			body = msHead + response("/cal/", calProps) + msTail
		case r.Method == "REPORT":
			body = msHead + msTail
		case r.Method == http.MethodGet && r.URL.Path == "/cal/one.ics":
			body, ctype, code = Event("trickled"), "text/calendar", http.StatusOK
		default:
			http.NotFound(w, r)
			return
		}
		if ctype == "" {
			ctype = "application/xml; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("ETag", `"1"`)
		w.WriteHeader(code)
		f, _ := w.(http.Flusher)
		for len(body) > 0 {
			n := min(16, len(body))
			if _, err := io.WriteString(w, body[:n]); err != nil {
				return
			}
			body = body[n:]
			if f != nil {
				f.Flush()
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(every):
			}
		}
	})
}

// Counting counts the requests h serves.
type Counting struct {
	H http.Handler
	n atomic.Int64
}

// ServeHTTP implements http.Handler.
func (c *Counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.H.ServeHTTP(w, r)
}

// N returns the number of requests received.
func (c *Counting) N() int64 { return c.n.Load() }
