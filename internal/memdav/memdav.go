// Package memdav is an in-memory CalDAV and CardDAV server on go-webdav's
// handlers, with Basic auth and several users, for tests and the demo. It
// also serves a fake of Zimbra's REST export and import
// (/home/<user>/<folder>?fmt=ics|vcf) and can require the ZM_AUTH_TOKEN
// cookie instead of Basic auth, as Carbonio's DAV servlet accepts.
//
// Layout per user u: principal /u/, calendar home /u/calendars/, address
// book home /u/contacts/.
//
// A *Server is safe for concurrent use.
package memdav

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	webcaldav "github.com/emersion/go-webdav/caldav"
	webcarddav "github.com/emersion/go-webdav/carddav"
)

// Server is the in-memory server.
type Server struct {
	// RequireToken makes DAV requests need a ZM_AUTH_TOKEN cookie issued by
	// IssueToken; Basic auth is then refused.
	RequireToken bool
	// AdminUser and AdminPassword, when set, may read and write every
	// user's REST export (as a Zimbra admin on port 7071).
	AdminUser, AdminPassword string

	mu     sync.Mutex
	users  map[string]*user
	tokens map[string]string
	// Requests counts requests by method.
	requests map[string]int
	// NoETagOnPut makes PUT answers carry no ETag header (as some servers
	// do); PROPFIND still reports getetag.
	NoETagOnPut bool
	// CarbonioUIDs makes a UID unique across all calendars (and across all
	// address books) of a user, as in a Zimbra mailbox, and answers a PUT
	// of a UID held at another href as Carbonio does: 412 with a
	// no-uid-conflict error naming that href. Without it a UID is unique
	// per collection and a conflict is a plain 409.
	CarbonioUIDs bool
	// FailPut, when set, is asked before each PUT: a non-zero status is
	// returned instead of storing.
	FailPut func(user, p string) int
}

type user struct {
	password string
	cals     map[string]*coll // by path
	books    map[string]*coll
}

type coll struct {
	path        string
	name        string // display name
	description string
	color       string
	comps       []string
	objs        map[string]*obj   // by path
	uids        map[string]string // UID -> path
}

func (c *coll) set(p string, o *obj) {
	if old := c.objs[p]; old != nil && c.uids[old.uid] == p {
		delete(c.uids, old.uid)
	}
	c.objs[p] = o
	if c.uids == nil {
		c.uids = map[string]string{}
	}
	if o.uid != "" {
		c.uids[o.uid] = p
	}
}

func (c *coll) del(p string) {
	if old := c.objs[p]; old != nil && c.uids[old.uid] == p {
		delete(c.uids, old.uid)
	}
	delete(c.objs, p)
}

// obj is a stored object. Only its bytes are kept: the parsed form is
// rebuilt from raw when a request needs it, so that a demo of thousands of
// accounts does not hold every object's tree in memory.
type obj struct {
	raw     []byte
	enc     []byte // encoded form, computed once
	isCal   bool
	etag    string
	modTime time.Time
	uid     string
}

// calendar parses the object again (it parsed when stored).
func (o *obj) calendar() *ical.Calendar {
	cal, err := ical.NewDecoder(bytes.NewReader(o.raw)).Decode()
	if err != nil {
		return ical.NewCalendar()
	}
	return cal
}

// card parses the object again (it parsed when stored).
func (o *obj) card() vcard.Card {
	card, err := vcard.NewDecoder(bytes.NewReader(o.raw)).Decode()
	if err != nil {
		return vcard.Card{}
	}
	return card
}

// New returns an empty server.
func New() *Server {
	return &Server{users: map[string]*user{}, tokens: map[string]string{}, requests: map[string]int{}}
}

// AddUser adds a user without collections; see AddCalendar and
// AddAddressBook.
func (s *Server) AddUser(name, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[name] = &user{password: password, cals: map[string]*coll{}, books: map[string]*coll{}}
}

// IssueToken returns a new token for user, valid for the ZM_AUTH_TOKEN cookie.
func (s *Server) IssueToken(userName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := sha256.Sum256([]byte(fmt.Sprintf("%s-%d-%d", userName, len(s.tokens), time.Now().UnixNano())))
	t := hex.EncodeToString(h[:16])
	s.tokens[t] = userName
	return t
}

// Requests returns how many requests of method were served.
func (s *Server) Requests(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[method]
}

// CalendarHome returns the calendar home path of u.
func CalendarHome(u string) string { return "/" + u + "/calendars/" }

// AddressBookHome returns the address book home path of u.
func AddressBookHome(u string) string { return "/" + u + "/contacts/" }

// AddCalendar creates a calendar named name (path segment) for u.
func (s *Server) AddCalendar(u, name, display string, comps ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := CalendarHome(u) + name + "/"
	if len(comps) == 0 {
		comps = []string{"VEVENT", "VTODO"}
	}
	s.users[u].cals[p] = &coll{path: p, name: display, comps: comps, objs: map[string]*obj{}}
	return p
}

// AddAddressBook creates an address book named name for u.
func (s *Server) AddAddressBook(u, name, display string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := AddressBookHome(u) + name + "/"
	s.users[u].books[p] = &coll{path: p, name: display, objs: map[string]*obj{}}
	return p
}

// Put stores raw data as object name in the collection at collPath of u,
// bypassing HTTP (for seeding). Data must parse with go-ical or go-vcard.
func (s *Server) Put(u, collPath, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	us := s.users[u]
	if us == nil {
		return fmt.Errorf("memdav: no user %q", u)
	}
	if c := us.cals[collPath]; c != nil {
		o, err := newCalObj(data)
		if err != nil {
			return err
		}
		c.set(collPath+name, o)
		return nil
	}
	if c := us.books[collPath]; c != nil {
		o, err := newCardObj(data)
		if err != nil {
			return err
		}
		c.set(collPath+name, o)
		return nil
	}
	return fmt.Errorf("memdav: no collection %s", collPath)
}

// Object is a stored object as Snapshot returns it.
type Object struct {
	Path string
	UID  string
	// Data is the object as the server would send it (re-encoded).
	Data []byte
}

// Snapshot returns the objects of the collection at collPath of u, sorted by path.
func (s *Server) Snapshot(u, collPath string) []Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	us := s.users[u]
	c := us.cals[collPath]
	if c == nil {
		c = us.books[collPath]
	}
	if c == nil {
		return nil
	}
	var out []Object
	for p, o := range c.objs {
		out = append(out, Object{Path: p, UID: o.uid, Data: o.encoded()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Collections lists the collection paths of u (calendars then address books), sorted.
func (s *Server) Collections(u string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for p := range s.users[u].cals {
		out = append(out, p)
	}
	for p := range s.users[u].books {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func newCalObj(data []byte) (*obj, error) {
	cal, err := ical.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return nil, fmt.Errorf("memdav: parse iCalendar: %w", err)
	}
	o := &obj{raw: data, isCal: true, modTime: time.Now()}
	o.enc = encodeCal(cal, data)
	for _, c := range cal.Children {
		if c.Name != "VTIMEZONE" {
			if p := c.Props.Get("UID"); p != nil {
				o.uid = p.Value
				break
			}
		}
	}
	o.etag = etagOf(o.encoded())
	return o, nil
}

func newCardObj(data []byte) (*obj, error) {
	card, err := vcard.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return nil, fmt.Errorf("memdav: parse vCard: %w", err)
	}
	o := &obj{raw: data, modTime: time.Now(), uid: card.Value("UID")}
	o.enc = encodeCard(card, data)
	o.etag = etagOf(o.encoded())
	return o, nil
}

func (o *obj) encoded() []byte { return o.enc }

// encodeCal is the form the server serves; raw when it does not encode.
func encodeCal(cal *ical.Calendar, raw []byte) []byte {
	var b bytes.Buffer
	if err := ical.NewEncoder(&b).Encode(cal); err != nil {
		return raw
	}
	return b.Bytes()
}

// encodeCard is the form the server serves; raw when it does not encode.
func encodeCard(card vcard.Card, raw []byte) []byte {
	var b bytes.Buffer
	if err := vcard.NewEncoder(&b).Encode(card); err != nil {
		return raw
	}
	return b.Bytes()
}

func etagOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

type ctxKey struct{}

func userFrom(ctx context.Context) string { s, _ := ctx.Value(ctxKey{}).(string); return s }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.Method]++
	s.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/home/") || strings.HasPrefix(r.URL.Path, "/service/home/") {
		s.serveREST(w, r)
		return
	}
	u, ok := s.auth(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="memdav"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, u))
	if r.Method == http.MethodDelete {
		r = r.WithContext(context.WithValue(r.Context(), ifMatchKey{}, webdav.ConditionalMatch(r.Header.Get("If-Match"))))
	}
	// Only the user's own tree.
	if !strings.HasPrefix(r.URL.Path, "/.well-known/") && r.URL.Path != "/" && !strings.HasPrefix(r.URL.Path, "/"+u+"/") {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	calH := &webcaldav.Handler{Backend: &calBackend{s}}
	cardH := &webcarddav.Handler{Backend: &cardBackend{s}}
	switch {
	case r.URL.Path == "/.well-known/caldav":
		calH.ServeHTTP(w, r)
	case r.URL.Path == "/.well-known/carddav":
		cardH.ServeHTTP(w, r)
	case r.Method == "MKCALENDAR":
		s.mkcalendar(w, r, u)
	case strings.HasPrefix(r.URL.Path, CalendarHome(u)):
		if r.Method == "MKCOL" {
			s.mkcalendar(w, r, u)
			return
		}
		calH.ServeHTTP(w, r)
	case strings.HasPrefix(r.URL.Path, AddressBookHome(u)):
		cardH.ServeHTTP(w, r)
	default:
		// Principal or root: route by the property asked for.
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte("addressbook-home-set")) {
			cardH.ServeHTTP(w, r)
		} else {
			calH.ServeHTTP(w, r)
		}
	}
}

func (s *Server) auth(r *http.Request) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.RequireToken {
		c, err := r.Cookie("ZM_AUTH_TOKEN")
		if err != nil {
			return "", false
		}
		u, ok := s.tokens[c.Value]
		return u, ok
	}
	name, pw, ok := r.BasicAuth()
	if !ok {
		return "", false
	}
	us := s.users[name]
	if us == nil || us.password != pw {
		return "", false
	}
	return name, true
}

type mkcalReq struct {
	Set struct {
		Prop struct {
			DisplayName string `xml:"DAV: displayname"`
			Description string `xml:"urn:ietf:params:xml:ns:caldav calendar-description"`
			Color       string `xml:"http://apple.com/ns/ical/ calendar-color"`
			Comps       []struct {
				Name string `xml:"name,attr"`
			} `xml:"urn:ietf:params:xml:ns:caldav supported-calendar-component-set>comp"`
		} `xml:"DAV: prop"`
	} `xml:"DAV: set"`
}

func (s *Server) mkcalendar(w http.ResponseWriter, r *http.Request, u string) {
	p := strings.TrimSuffix(r.URL.Path, "/") + "/"
	if path.Dir(strings.TrimSuffix(p, "/"))+"/" != CalendarHome(u) {
		http.Error(w, "calendar creation not allowed here", http.StatusForbidden)
		return
	}
	var m mkcalReq
	body, _ := io.ReadAll(r.Body)
	if len(bytes.TrimSpace(body)) > 0 {
		if err := xml.Unmarshal(body, &m); err != nil {
			http.Error(w, "bad MKCALENDAR body: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	us := s.users[u]
	if us.cals[p] != nil {
		http.Error(w, "exists", http.StatusMethodNotAllowed)
		return
	}
	c := &coll{path: p, name: m.Set.Prop.DisplayName, description: m.Set.Prop.Description, color: m.Set.Prop.Color, objs: map[string]*obj{}}
	for _, x := range m.Set.Prop.Comps {
		c.comps = append(c.comps, x.Name)
	}
	if len(c.comps) == 0 {
		c.comps = []string{"VEVENT", "VTODO"}
	}
	us.cals[p] = c
	w.WriteHeader(http.StatusCreated)
}

// NewTLSServer starts s on a loopback httptest TLS server.
func NewTLSServer(s *Server) *httptest.Server { return httptest.NewTLSServer(s) }

var _ webdav.UserPrincipalBackend = (*calBackend)(nil)

// CollectionProps are the properties a collection was created with.
type CollectionProps struct {
	DisplayName, Description, Color string
	Components                      []string
}

// Props returns the properties of the collection at collPath of u.
func (s *Server) Props(u, collPath string) (CollectionProps, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.users[u].cals[collPath]
	if c == nil {
		c = s.users[u].books[collPath]
	}
	if c == nil {
		return CollectionProps{}, false
	}
	return CollectionProps{DisplayName: c.name, Description: c.description, Color: c.color, Components: c.comps}, true
}

// Delete removes the object at path p of u (for tests that simulate a user
// deleting at the destination).
func (s *Server) Delete(u, p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range []map[string]*coll{s.users[u].cals, s.users[u].books} {
		for _, c := range m {
			if _, ok := c.objs[p]; ok {
				c.del(p)
				return true
			}
		}
	}
	return false
}
