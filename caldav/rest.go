package caldav

import (
	"fmt"
	"strings"

	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// NewZimbraREST returns a dav.Source that exports the calendar folders of
// e.Account through Zimbra's (or Carbonio's) REST UserServlet at e.URL,
// e.g. https://zimbra:7071/home/alice@example.com/Calendar?fmt=ics&icalAttach=inline,
// and cuts each export into one object per UID with the VTIMEZONEs of the
// export placed first (SplitExport). On the admin port a global admin's
// Basic credentials (or admin token) may read any account, so no user
// password is needed. No folders means "Calendar"; nested folders
// ("Work/Team") are flattened to one collection named "Work-Team".
// e.Limits.MaxExport bounds one folder export.
func NewZimbraREST(e dav.Endpoint, folders ...string) (*dav.REST, error) {
	return zimbraREST(e, folders, false)
}

// NewZimbraRESTDestination returns the documented fallback
// dav.Destination for Carbonio: objects are POSTed one UID at a time to
// /home/<account>/<folder>?fmt=ics, VTIMEZONEs first, which Carbonio
// imports updating by UID. It cannot create folders and has no conditional
// write: every source calendar goes to folder. Prefer NewDAV with a token.
func NewZimbraRESTDestination(e dav.Endpoint, folder string) (*dav.REST, error) {
	return zimbraREST(e, []string{folder}, true)
}

func zimbraREST(e dav.Endpoint, folders []string, writable bool) (*dav.REST, error) {
	if len(folders) == 0 {
		folders = []string{"Calendar"}
	}
	r, err := dav.NewREST(dav.CalDAV, e, dav.RESTOptions{Folders: folders, Query: "icalAttach=inline", Split: SplitExport, Writable: writable})
	if err != nil {
		return nil, fmt.Errorf("caldav: %w", err)
	}
	return r, nil
}

// SplitExport cuts an .ics export (one or more VCALENDARs) into one raw
// object per UID: calendar properties except METHOD, every VTIMEZONE, then
// the UID's components. Components without UID become objects of their own
// (which Rules then reports).
func SplitExport(data []byte) ([]dav.RawObject, error) {
	cals, _ := davtext.Blocks(davtext.Lines(data))
	if len(cals) == 0 {
		return nil, invalid("export holds no VCALENDAR")
	}
	var (
		header []davtext.Line
		tzs    []davtext.Block
		order  []string
		groups = map[string][]davtext.Block{}
	)
	for ci, cal := range cals {
		props, children, ok := cal.Inner()
		if !ok {
			return nil, invalid("export has unbalanced BEGIN/END")
		}
		if ci == 0 {
			for _, p := range props {
				if p.Name != "METHOD" {
					header = append(header, p)
				}
			}
		}
		for i, ch := range children {
			if ch.Kind == "VTIMEZONE" {
				tzs = append(tzs, ch)
				continue
			}
			u, _ := ch.Top("UID")
			key := strings.TrimSpace(u.Value)
			if key == "" {
				key = fmt.Sprintf("no-uid-%d-%d", ci+1, i+1)
			}
			if _, ok := groups[key]; !ok {
				order = append(order, key)
			}
			groups[key] = append(groups[key], ch)
		}
	}
	out := make([]dav.RawObject, 0, len(order))
	for _, k := range order {
		out = append(out, dav.RawObject{Key: k, Data: assemble(header, tzs, groups[k])})
	}
	return out, nil
}
