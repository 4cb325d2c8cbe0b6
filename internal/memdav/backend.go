package memdav

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"
	"github.com/emersion/go-webdav"
	webcaldav "github.com/emersion/go-webdav/caldav"
	webcarddav "github.com/emersion/go-webdav/carddav"
)

var (
	errNotFound = webdav.NewHTTPError(http.StatusNotFound, errors.New("memdav: not found"))
	errPrecond  = webdav.NewHTTPError(http.StatusPreconditionFailed, errors.New("memdav: precondition failed"))
)

func (s *Server) userColls(ctx context.Context, cal bool) (map[string]*coll, error) {
	us := s.users[userFrom(ctx)]
	if us == nil {
		return nil, webdav.NewHTTPError(http.StatusUnauthorized, errors.New("memdav: no user"))
	}
	if cal {
		return us.cals, nil
	}
	return us.books, nil
}

// uidConflict is Carbonio's answer to a PUT of a UID held at another href:
// 412 with a no-uid-conflict precondition naming that href (Zimbra's
// DavException.UidConflict and CardDavUidConflict).
type uidConflict struct {
	ns, href string
}

func (e *uidConflict) Error() string {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><D:error xmlns:D="DAV:" xmlns:X="` + e.ns + `"><X:no-uid-conflict><D:href>`)
	xml.EscapeText(&b, []byte(e.href))
	b.WriteString(`</D:href></X:no-uid-conflict></D:error>`)
	return b.String()
}

// Unwrap gives go-webdav the status.
func (e *uidConflict) Unwrap() error {
	return webdav.NewHTTPError(http.StatusPreconditionFailed, errors.New("memdav: UID conflict"))
}

// carbonioConflict finds uid at another href in any collection of all (a
// Zimbra mailbox holds a UID once) and returns Carbonio's answer.
func carbonioConflict(all map[string]*coll, p, uid, ns string) error {
	if uid == "" {
		return nil
	}
	for _, c := range all {
		if q, ok := c.uids[uid]; ok && q != p {
			return &uidConflict{ns: ns, href: q}
		}
	}
	return nil
}

// checkPut applies If-None-Match / If-Match and the UID rule. Caller holds s.mu.
func checkPut(c *coll, p string, uid string, ifNoneMatch, ifMatch webdav.ConditionalMatch) error {
	old := c.objs[p]
	if ifNoneMatch.IsWildcard() && old != nil {
		return errPrecond
	}
	if ifMatch.IsSet() {
		if old == nil {
			return errPrecond
		}
		if !ifMatch.IsWildcard() {
			e, err := ifMatch.ETag()
			if err != nil || e != old.etag {
				return errPrecond
			}
		}
	}
	if q, ok := c.uids[uid]; ok && uid != "" && q != p {
		return webdav.NewHTTPError(http.StatusConflict, errors.New("memdav: an object with the same UID exists at "+q))
	}
	return nil
}

func collOf(p string) string { return path.Dir(strings.TrimSuffix(p, "/")) + "/" }

type calBackend struct{ s *Server }

func (b *calBackend) CurrentUserPrincipal(ctx context.Context) (string, error) {
	return "/" + userFrom(ctx) + "/", nil
}

func (b *calBackend) CalendarHomeSetPath(ctx context.Context) (string, error) {
	return CalendarHome(userFrom(ctx)), nil
}

func (b *calBackend) CreateCalendar(ctx context.Context, cal *webcaldav.Calendar) error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, true)
	if err != nil {
		return err
	}
	p := strings.TrimSuffix(cal.Path, "/") + "/"
	if cs[p] != nil {
		return webdav.NewHTTPError(http.StatusMethodNotAllowed, errors.New("memdav: exists"))
	}
	comps := cal.SupportedComponentSet
	if len(comps) == 0 {
		comps = []string{"VEVENT", "VTODO"}
	}
	cs[p] = &coll{path: p, name: cal.Name, description: cal.Description, comps: comps, objs: map[string]*obj{}}
	return nil
}

func (c *coll) calendar() webcaldav.Calendar {
	return webcaldav.Calendar{Path: c.path, Name: c.name, Description: c.description, SupportedComponentSet: c.comps}
}

func (b *calBackend) ListCalendars(ctx context.Context) ([]webcaldav.Calendar, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, true)
	if err != nil {
		return nil, err
	}
	var out []webcaldav.Calendar
	for _, c := range cs {
		out = append(out, c.calendar())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (b *calBackend) GetCalendar(ctx context.Context, p string) (*webcaldav.Calendar, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, true)
	if err != nil {
		return nil, err
	}
	c := cs[strings.TrimSuffix(p, "/")+"/"]
	if c == nil {
		return nil, errNotFound
	}
	x := c.calendar()
	return &x, nil
}

func (o *obj) calObject(p string) webcaldav.CalendarObject {
	return webcaldav.CalendarObject{Path: p, ModTime: o.modTime, ETag: o.etag, Data: o.calendar(), ContentLength: int64(len(o.encoded()))}
}

func (b *calBackend) GetCalendarObject(ctx context.Context, p string, _ *webcaldav.CalendarCompRequest) (*webcaldav.CalendarObject, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, true)
	if err != nil {
		return nil, err
	}
	c := cs[collOf(p)]
	if c == nil || c.objs[p] == nil {
		return nil, errNotFound
	}
	x := c.objs[p].calObject(p)
	return &x, nil
}

func (b *calBackend) ListCalendarObjects(ctx context.Context, p string, _ *webcaldav.CalendarCompRequest) ([]webcaldav.CalendarObject, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, true)
	if err != nil {
		return nil, err
	}
	c := cs[strings.TrimSuffix(p, "/")+"/"]
	if c == nil {
		return nil, errNotFound
	}
	var out []webcaldav.CalendarObject
	for q, o := range c.objs {
		out = append(out, o.calObject(q))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (b *calBackend) QueryCalendarObjects(ctx context.Context, p string, q *webcaldav.CalendarQuery) ([]webcaldav.CalendarObject, error) {
	all, err := b.ListCalendarObjects(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	return webcaldav.Filter(q, all)
}

func (b *calBackend) PutCalendarObject(ctx context.Context, p string, cal *ical.Calendar, opts *webcaldav.PutCalendarObjectOptions) (*webcaldav.CalendarObject, error) {
	var buf bytes.Buffer
	if err := ical.NewEncoder(&buf).Encode(cal); err != nil {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, err)
	}
	o, err := newCalObj(buf.Bytes())
	if err != nil {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, err)
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if f := b.s.FailPut; f != nil {
		if code := f(userFrom(ctx), p); code != 0 {
			return nil, webdav.NewHTTPError(code, errors.New("memdav: injected failure"))
		}
	}
	cs, err := b.s.userColls(ctx, true)
	if err != nil {
		return nil, err
	}
	c := cs[collOf(p)]
	if c == nil {
		return nil, webdav.NewHTTPError(http.StatusConflict, errors.New("memdav: no such calendar"))
	}
	comp := ""
	for _, ch := range cal.Children {
		if ch.Name != "VTIMEZONE" {
			comp = ch.Name
		}
	}
	ok := false
	for _, x := range c.comps {
		ok = ok || x == comp
	}
	if !ok {
		return nil, webdav.NewHTTPError(http.StatusForbidden, errors.New("memdav: supported-calendar-component: "+comp))
	}
	if b.s.CarbonioUIDs {
		if err := carbonioConflict(cs, p, o.uid, "urn:ietf:params:xml:ns:caldav"); err != nil {
			return nil, err
		}
	}
	if err := checkPut(c, p, o.uid, opts.IfNoneMatch, opts.IfMatch); err != nil {
		return nil, err
	}
	c.set(p, o)
	x := o.calObject(p)
	if b.s.NoETagOnPut {
		x.ETag = ""
	}
	return &x, nil
}

func (b *calBackend) DeleteCalendarObject(ctx context.Context, p string) error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, true)
	if err != nil {
		return err
	}
	c := cs[collOf(p)]
	if c == nil || c.objs[p] == nil {
		return errNotFound
	}
	if err := checkDelete(ctx, c.objs[p].etag); err != nil {
		return err
	}
	c.del(p)
	return nil
}

type cardBackend struct{ s *Server }

func (b *cardBackend) CurrentUserPrincipal(ctx context.Context) (string, error) {
	return "/" + userFrom(ctx) + "/", nil
}

func (b *cardBackend) AddressBookHomeSetPath(ctx context.Context) (string, error) {
	return AddressBookHome(userFrom(ctx)), nil
}

func (c *coll) addressBook() webcarddav.AddressBook {
	return webcarddav.AddressBook{Path: c.path, Name: c.name, Description: c.description,
		SupportedAddressData: []webcarddav.AddressDataType{{ContentType: "text/vcard", Version: "3.0"}, {ContentType: "text/vcard", Version: "4.0"}}}
}

func (b *cardBackend) ListAddressBooks(ctx context.Context) ([]webcarddav.AddressBook, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, false)
	if err != nil {
		return nil, err
	}
	var out []webcarddav.AddressBook
	for _, c := range cs {
		out = append(out, c.addressBook())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (b *cardBackend) GetAddressBook(ctx context.Context, p string) (*webcarddav.AddressBook, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, false)
	if err != nil {
		return nil, err
	}
	c := cs[strings.TrimSuffix(p, "/")+"/"]
	if c == nil {
		return nil, errNotFound
	}
	x := c.addressBook()
	return &x, nil
}

func (b *cardBackend) CreateAddressBook(ctx context.Context, ab *webcarddav.AddressBook) error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, false)
	if err != nil {
		return err
	}
	p := strings.TrimSuffix(ab.Path, "/") + "/"
	if cs[p] != nil {
		return webdav.NewHTTPError(http.StatusMethodNotAllowed, errors.New("memdav: exists"))
	}
	cs[p] = &coll{path: p, name: ab.Name, description: ab.Description, objs: map[string]*obj{}}
	return nil
}

func (b *cardBackend) DeleteAddressBook(ctx context.Context, p string) error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, false)
	if err != nil {
		return err
	}
	delete(cs, strings.TrimSuffix(p, "/")+"/")
	return nil
}

func (o *obj) addressObject(p string) webcarddav.AddressObject {
	return webcarddav.AddressObject{Path: p, ModTime: o.modTime, ETag: o.etag, Card: o.card(), ContentLength: int64(len(o.encoded()))}
}

func (b *cardBackend) GetAddressObject(ctx context.Context, p string, _ *webcarddav.AddressDataRequest) (*webcarddav.AddressObject, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, false)
	if err != nil {
		return nil, err
	}
	c := cs[collOf(p)]
	if c == nil || c.objs[p] == nil {
		return nil, errNotFound
	}
	x := c.objs[p].addressObject(p)
	return &x, nil
}

func (b *cardBackend) ListAddressObjects(ctx context.Context, p string, _ *webcarddav.AddressDataRequest) ([]webcarddav.AddressObject, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, false)
	if err != nil {
		return nil, err
	}
	c := cs[strings.TrimSuffix(p, "/")+"/"]
	if c == nil {
		return nil, errNotFound
	}
	var out []webcarddav.AddressObject
	for q, o := range c.objs {
		out = append(out, o.addressObject(q))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (b *cardBackend) QueryAddressObjects(ctx context.Context, p string, q *webcarddav.AddressBookQuery) ([]webcarddav.AddressObject, error) {
	all, err := b.ListAddressObjects(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	return webcarddav.Filter(q, all)
}

func (b *cardBackend) PutAddressObject(ctx context.Context, p string, card vcard.Card, opts *webcarddav.PutAddressObjectOptions) (*webcarddav.AddressObject, error) {
	var buf bytes.Buffer
	if err := vcard.NewEncoder(&buf).Encode(card); err != nil {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, err)
	}
	o, err := newCardObj(buf.Bytes())
	if err != nil {
		return nil, webdav.NewHTTPError(http.StatusBadRequest, err)
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if f := b.s.FailPut; f != nil {
		if code := f(userFrom(ctx), p); code != 0 {
			return nil, webdav.NewHTTPError(code, errors.New("memdav: injected failure"))
		}
	}
	cs, err := b.s.userColls(ctx, false)
	if err != nil {
		return nil, err
	}
	c := cs[collOf(p)]
	if c == nil {
		return nil, webdav.NewHTTPError(http.StatusConflict, errors.New("memdav: no such address book"))
	}
	if b.s.CarbonioUIDs {
		if err := carbonioConflict(cs, p, o.uid, "urn:ietf:params:xml:ns:carddav"); err != nil {
			return nil, err
		}
	}
	if err := checkPut(c, p, o.uid, opts.IfNoneMatch, opts.IfMatch); err != nil {
		return nil, err
	}
	c.set(p, o)
	x := o.addressObject(p)
	if b.s.NoETagOnPut {
		x.ETag = ""
	}
	return &x, nil
}

func (b *cardBackend) DeleteAddressObject(ctx context.Context, p string) error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	cs, err := b.s.userColls(ctx, false)
	if err != nil {
		return err
	}
	c := cs[collOf(p)]
	if c == nil || c.objs[p] == nil {
		return errNotFound
	}
	if err := checkDelete(ctx, c.objs[p].etag); err != nil {
		return err
	}
	c.del(p)
	return nil
}

type ifMatchKey struct{}

// checkDelete applies the If-Match of a DELETE (go-webdav's handler does
// not), as real servers do.
func checkDelete(ctx context.Context, etag string) error {
	m, _ := ctx.Value(ifMatchKey{}).(webdav.ConditionalMatch)
	if !m.IsSet() || m.IsWildcard() {
		return nil
	}
	if e, err := m.ETag(); err != nil || e != etag {
		return errPrecond
	}
	return nil
}
