package dav

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// refMultistatus is the reflection-based decoder decodeMultistatus
// replaced; the hand-written one must agree with it.
type refMultistatus struct {
	Responses []struct {
		Hrefs    []string `xml:"DAV: href"`
		Status   string   `xml:"DAV: status"`
		Propstat []struct {
			Prop struct {
				Props []xmlProp `xml:",any"`
			} `xml:"DAV: prop"`
			Status string `xml:"DAV: status"`
		} `xml:"DAV: propstat"`
	} `xml:"DAV: response"`
}

func refDecode(s string) ([]msResponse, error) {
	var ms refMultistatus
	if err := xml.NewDecoder(strings.NewReader(s)).Decode(&ms); err != nil {
		return nil, err
	}
	out := make([]msResponse, 0, len(ms.Responses))
	for _, r := range ms.Responses {
		if len(r.Hrefs) == 0 {
			continue
		}
		resp := msResponse{Href: strings.TrimSpace(r.Hrefs[0]), Status: parseStatus(r.Status)}
		for _, ps := range r.Propstat {
			code := parseStatus(ps.Status)
			for _, p := range ps.Prop.Props {
				if code == 0 || (code >= 200 && code < 300) {
					resp.Props = append(resp.Props, p)
				} else {
					resp.Missing = append(resp.Missing, p.XMLName)
				}
			}
		}
		out = append(out, resp)
	}
	return out, nil
}

var multistatusSeeds = []string{
	`<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:response><D:href>/u/cal/a.ics</D:href><D:propstat><D:prop><D:getetag>"1"</D:getetag>
<C:calendar-data>BEGIN:VCALENDAR&#13;
UID:a &amp; b
END:VCALENDAR</C:calendar-data></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
<D:propstat><D:prop><D:displayname/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>
<D:response><D:href>/u/cal/gone.ics</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>
<D:response><D:status>HTTP/1.1 200 OK</D:status></D:response>
<D:sync-token>x</D:sync-token></D:multistatus>`,
	`<multistatus xmlns="DAV:"><response><href> /a/ </href><href>/b/</href><propstat><prop><resourcetype><collection/><C:calendar xmlns:C="urn:ietf:params:xml:ns:caldav"/></resourcetype>
<C:supported-calendar-component-set xmlns:C="urn:ietf:params:xml:ns:caldav"><C:comp name="VEVENT"/><C:comp name="VTODO"/></C:supported-calendar-component-set>
<current-user-principal><href>/p/</href></current-user-principal><x:odd xmlns:x="urn:x"><![CDATA[<raw>]]> text <!-- c --> more</x:odd></prop></propstat></response></multistatus>`,
	`<D:multistatus xmlns:D="DAV:"></D:multistatus>`,
	`<other xmlns="DAV:"><response><href>/x</href></response></other>`,
	`<D:multistatus xmlns:D="DAV:"><D:response><D:href>/x</D:href>`,
	``,
	`not xml`,
}

func TestDecodeMultistatusMatchesReflection(t *testing.T) {
	for i, s := range multistatusSeeds {
		checkMultistatus(t, i, s)
	}
}

func checkMultistatus(t *testing.T, i int, s string) {
	t.Helper()
	want, werr := refDecode(s)
	got, gerr := decodeMultistatus(strings.NewReader(s), "", Limits{})
	var le *LimitError
	if errors.As(gerr, &le) {
		// The reference has no depth bound: check that the input does
		// nest deeper than the limit.
		if d := xmlDepth(s); d <= DefaultMaxXMLDepth {
			t.Fatalf("seed %d: %v, but the input nests only %d deep", i, gerr, d)
		}
		return
	}
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("seed %d: error %v, reference error %v", i, gerr, werr)
	}
	if werr != nil {
		return
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("seed %d: decoded (-reference +got):\n%s", i, diff)
	}
}

func FuzzDecodeMultistatus(f *testing.F) {
	for _, s := range multistatusSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkMultistatus(t, 0, s)
	})
}

func TestUIDConflictHref(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"carbonio caldav", `<?xml version="1.0" encoding="UTF-8"?><D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><C:no-uid-conflict><D:href>/dav/u@example.com/Calendar/x%40y.ics</D:href></C:no-uid-conflict></D:error>`, "/dav/u@example.com/Calendar/x%40y.ics"},
		{"carbonio carddav", `<error xmlns="DAV:"><C:no-uid-conflict xmlns:C="urn:ietf:params:xml:ns:carddav"><href> /dav/u/Contacts/1.vcf </href></C:no-uid-conflict></error>`, "/dav/u/Contacts/1.vcf"},
		{"radicale, no href", `<?xml version='1.0' encoding='utf-8'?><D:error xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><C:no-uid-conflict /></D:error>`, ""},
		{"href elsewhere", `<D:error xmlns:D="DAV:"><D:href>/a</D:href><C:no-uid-conflict xmlns:C="urn:ietf:params:xml:ns:caldav"/></D:error>`, ""},
		{"wrong namespace", `<D:error xmlns:D="DAV:"><X:no-uid-conflict xmlns:X="urn:x"><D:href>/a</D:href></X:no-uid-conflict></D:error>`, ""},
		{"text", "no-uid-conflict at /a", ""},
	}
	for _, tt := range tests {
		if got := uidConflictHref([]byte(tt.body)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
