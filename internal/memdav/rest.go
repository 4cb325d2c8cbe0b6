package memdav

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// restAuth accepts the admin's Basic credentials, the owner's, or the
// owner's ZM_AUTH_TOKEN cookie. Caller must not hold s.mu.
func (s *Server) restAuth(r *http.Request, owner string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, err := r.Cookie("ZM_AUTH_TOKEN"); err == nil && s.tokens[c.Value] == owner {
		return true
	}
	name, pw, ok := r.BasicAuth()
	if !ok {
		return false
	}
	if s.AdminUser != "" && name == s.AdminUser && pw == s.AdminPassword {
		return true
	}
	us := s.users[name]
	return us != nil && name == owner && us.password == pw
}

// serveREST is the Zimbra UserServlet fake:
// GET /home/<user>/<folder>?fmt=ics|vcf exports a folder as one file, the way
// Zimbra writes it (one VCALENDAR with METHOD:PUBLISH and every VTIMEZONE
// first; vCards concatenated); POST ...?fmt=ics imports, updating by UID.
func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/service"), "/home/")
	owner, folder, _ := strings.Cut(rest, "/")
	owner = strings.TrimPrefix(owner, "~")
	if uo, err := url.PathUnescape(owner); err == nil {
		owner = uo
	}
	folder = strings.Trim(folder, "/")
	if !s.restAuth(r, owner) {
		w.Header().Set("WWW-Authenticate", `Basic realm="memdav-rest"`)
		http.Error(w, "must authenticate", http.StatusUnauthorized)
		return
	}
	fmtParam := r.URL.Query().Get("fmt")
	s.mu.Lock()
	us := s.users[owner]
	var c *coll
	if us != nil {
		switch fmtParam {
		case "ics":
			c = us.cals[CalendarHome(owner)+folder+"/"]
		case "vcf":
			c = us.books[AddressBookHome(owner)+folder+"/"]
		}
	}
	s.mu.Unlock()
	if c == nil {
		http.Error(w, "no such folder: "+folder, http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.mu.Lock()
		body := export(c, fmtParam, folder)
		s.mu.Unlock()
		if fmtParam == "ics" {
			w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "text/x-vcard; charset=utf-8")
		}
		w.Write(body)
	case http.MethodPost:
		if fmtParam != "ics" {
			http.Error(w, "only ics import is faked", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := s.importICS(c, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func export(c *coll, format, folder string) []byte {
	paths := make([]string, 0, len(c.objs))
	for p := range c.objs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b bytes.Buffer
	if format == "vcf" {
		for _, p := range paths {
			b.Write(davtext.CRLF(c.objs[p].raw))
		}
		return b.Bytes()
	}
	b.WriteString("BEGIN:VCALENDAR\r\nX-WR-CALNAME:" + folder + "\r\nPRODID:Zimbra-Calendar-Provider\r\nVERSION:2.0\r\nMETHOD:PUBLISH\r\n")
	tzDone := map[string]bool{}
	var comps bytes.Buffer
	for _, p := range paths {
		cals, _ := davtext.Blocks(davtext.Lines(davtext.CRLF(c.objs[p].raw)))
		for _, cal := range cals {
			_, children, _ := cal.Inner()
			for _, ch := range children {
				if ch.Kind == "VTIMEZONE" {
					id, _ := ch.Top("TZID")
					if !tzDone[id.Value] {
						tzDone[id.Value] = true
						b.Write(ch.Raw())
					}
					continue
				}
				comps.Write(ch.Raw())
			}
		}
	}
	b.Write(comps.Bytes())
	b.WriteString("END:VCALENDAR\r\n")
	return b.Bytes()
}

// importICS stores each UID of body as one object, replacing the object
// with the same UID (Zimbra's addInvite updates by UID).
func (s *Server) importICS(c *coll, body []byte) error {
	cals, _ := davtext.Blocks(davtext.Lines(davtext.CRLF(body)))
	var tzs []byte
	groups := map[string][]byte{}
	var order []string
	for _, cal := range cals {
		_, children, _ := cal.Inner()
		for _, ch := range children {
			if ch.Kind == "VTIMEZONE" {
				tzs = append(tzs, ch.Raw()...)
				continue
			}
			u, _ := ch.Top("UID")
			if _, ok := groups[u.Value]; !ok {
				order = append(order, u.Value)
			}
			groups[u.Value] = append(groups[u.Value], ch.Raw()...)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, uid := range order {
		data := append(append([]byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:memdav\r\n"), tzs...), groups[uid]...)
		data = append(data, "END:VCALENDAR\r\n"...)
		o, err := newCalObj(data)
		if err != nil {
			return err
		}
		p := c.path + dav.ObjectName(uid, ".ics")
		if q, ok := c.uids[uid]; ok {
			p = q
		}
		c.set(p, o)
	}
	return nil
}
