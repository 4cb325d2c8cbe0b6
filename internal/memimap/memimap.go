// Package memimap runs an in-memory IMAP server on a 127.0.0.1 listener for
// unit tests and demos. It wraps go-imap's imapmemserver and adds what the
// copy engine needs to be tested without Dovecot: several users, admin login
// by SASL PLAIN authzid (authzid = mailbox, authcid = admin), \Noselect
// parents, SPECIAL-USE attributes (CREATE-SPECIAL-USE), subscriptions on
// LIST, an optional APPENDLIMIT, and fault hooks that refuse or drop an APPEND.
//
// Limits: the hierarchy separator is always '/', there is no NAMESPACE prefix,
// no CONDSTORE (HIGHESTMODSEQ is never reported), no TLS, no quota. Messages
// live in memory; keep corpora small. LIST ignores RETURN (CHILDREN).
//
// A *Server is safe for concurrent use.
package memimap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sort"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
)

// Delim is the hierarchy separator of every memimap server.
const Delim = '/'

// ErrDrop, returned by an AppendHook, makes the server close the connection
// abruptly instead of answering, as a crashed or throttling server would.
var ErrDrop = errors.New("memimap: drop connection")

// Options configures a Server. The zero value is a plain server.
type Options struct {
	// AppendLimit, when not zero, is advertised as APPENDLIMIT and enforced:
	// larger APPENDs fail with NO [TOOBIG].
	AppendLimit uint32
	// AppendHook, when set, is called before each APPEND is stored. A non-nil
	// error refuses the APPEND with that error (an *imap.Error is sent as is,
	// anything else as NO); ErrDrop closes the connection instead.
	AppendHook func(user, mailbox string, flags []imap.Flag, size int64) error
	// Admins maps admin names to passwords; an admin may log in as any user
	// with SASL PLAIN authzid.
	Admins map[string]string
}

// Server is a running in-memory IMAP server.
type Server struct {
	opts  Options
	mem   *imapmemserver.Server
	imap  *imapserver.Server
	ln    net.Listener
	done  chan struct{}
	mu    sync.Mutex
	users map[string]*user
}

type user struct {
	name, password string
	mem            *imapmemserver.User

	mu         sync.Mutex
	names      map[string]bool // real (selectable) mailboxes
	noSelect   map[string]bool // \Noselect names (not in mem)
	specialUse map[string]imap.MailboxAttr
	subscribed map[string]bool
}

func (u *user) realNames() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := make([]string, 0, len(u.names))
	for n := range u.names {
		l = append(l, n)
	}
	return l
}

func (u *user) isSubscribed(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.subscribed[name]
}

func (u *user) setSubscribed(name string, on bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.subscribed[name] = on
}

// Start listens on a free 127.0.0.1 port and serves until Close.
func Start(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("memimap: listen: %w", err)
	}
	s := &Server{opts: opts, mem: imapmemserver.New(), ln: ln, done: make(chan struct{}), users: map[string]*user{}}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}, imap.CapMove: {},
			imap.CapListExtended: {}, imap.CapListStatus: {}, imap.CapStatusSize: {},
			imap.CapSpecialUse: {}, imap.CapCreateSpecialUse: {}, imap.CapLiteralPlus: {},
			imap.CapChildren: {}, imap.CapESearch: {},
		},
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	go func() {
		defer close(s.done)
		_ = s.imap.Serve(ln)
	}()
	return s, nil
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and closes every connection.
func (s *Server) Close() error {
	err := s.imap.Close()
	<-s.done
	return err
}

// AddUser creates a user with an empty INBOX.
func (s *Server) AddUser(name, password string) {
	u := &user{name: name, password: password, mem: imapmemserver.NewUser(name, password),
		names: map[string]bool{"INBOX": true}, noSelect: map[string]bool{}, specialUse: map[string]imap.MailboxAttr{}, subscribed: map[string]bool{}}
	_ = u.mem.Create("INBOX", nil)
	s.mem.AddUser(u.mem)
	s.mu.Lock()
	s.users[name] = u
	s.mu.Unlock()
}

func (s *Server) user(name string) *user {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[name]
}

// Seed stores m into the mailbox of an existing user: folders (with their
// \Noselect, SPECIAL-USE and subscription state) and messages with flags and
// INTERNALDATE.
func (s *Server) Seed(name string, m corpus.Mailbox) error {
	u := s.user(name)
	if u == nil {
		return fmt.Errorf("memimap: no user %q", name)
	}
	for _, f := range m.Folders {
		if f.NoSelect {
			u.mu.Lock()
			u.noSelect[f.Name] = true
			u.subscribed[f.Name] = f.Subscribed
			u.mu.Unlock()
			continue
		}
		if !strings.EqualFold(f.Name, "INBOX") {
			if err := u.mem.Create(f.Name, nil); err != nil {
				return fmt.Errorf("memimap: create %q: %w", f.Name, err)
			}
			u.mu.Lock()
			u.names[f.Name] = true
			u.mu.Unlock()
		}
		if f.SpecialUse != "" {
			u.mu.Lock()
			u.specialUse[f.Name] = imap.MailboxAttr(f.SpecialUse)
			u.mu.Unlock()
		}
		u.setSubscribed(folderName(f.Name), f.Subscribed)
	}
	for i, msg := range m.Messages {
		flags := make([]imap.Flag, len(msg.Flags))
		for j, f := range msg.Flags {
			flags[j] = imap.Flag(f)
		}
		if _, err := u.mem.Append(folderName(msg.Folder), bytes.NewReader(msg.Raw), &imap.AppendOptions{Flags: flags, Time: msg.InternalDate}); err != nil {
			return fmt.Errorf("memimap: append message %d to %q: %w", i, msg.Folder, err)
		}
	}
	return nil
}

func folderName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	sess := &session{srv: s, conn: c}
	if s.opts.AppendLimit > 0 {
		return &limitSession{sess}, nil, nil
	}
	return sess, nil, nil
}

// session wraps an imapmemserver user session with the extras.
type session struct {
	*imapmemserver.UserSession // nil until authenticated
	srv                        *Server
	conn                       *imapserver.Conn
	u                          *user
}

type limitSession struct{ *session }

// AppendLimit implements imapserver.SessionAppendLimit.
func (s *limitSession) AppendLimit() uint32 { return s.srv.opts.AppendLimit }

var (
	_ imapserver.SessionSASL      = (*session)(nil)
	_ imapserver.SessionNamespace = (*session)(nil)
	_ imapserver.SessionMove      = (*session)(nil)
)

func (s *session) Close() error {
	if s.UserSession != nil {
		return s.UserSession.Close()
	}
	return nil
}

func (s *session) Login(username, password string) error {
	u := s.srv.user(username)
	if u == nil {
		return imapserver.ErrAuthFailed
	}
	if err := u.mem.Login(username, password); err != nil {
		return err
	}
	s.u = u
	s.UserSession = imapmemserver.NewUserSession(u.mem)
	return nil
}

// AuthenticateMechanisms implements imapserver.SessionSASL.
func (s *session) AuthenticateMechanisms() []string { return []string{"PLAIN"} }

// Authenticate implements imapserver.SessionSASL: PLAIN with an optional
// authzid that an admin may use to open another user's mailbox.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	if mech != "PLAIN" {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity == "" || identity == username {
			return s.Login(username, password)
		}
		want, ok := s.srv.opts.Admins[username]
		if !ok || want != password {
			return imapserver.ErrAuthFailed
		}
		u := s.srv.user(identity)
		if u == nil {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "no such user"}
		}
		s.u = u
		s.UserSession = imapmemserver.NewUserSession(u.mem)
		return nil
	}), nil
}

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Delim: Delim}}}, nil
}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	if s.isNoSelect(name) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "\\Noselect mailbox"}
	}
	return s.UserSession.Select(name, options)
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	if s.isNoSelect(name) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "\\Noselect mailbox"}
	}
	return s.UserSession.Status(name, options)
}

func (s *session) isNoSelect(name string) bool {
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	return s.u.noSelect[name]
}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	name = strings.TrimRight(name, string(Delim))
	s.u.mu.Lock()
	wasNoSelect := s.u.noSelect[name]
	s.u.mu.Unlock()
	if err := s.UserSession.Create(name, options); err != nil {
		return err
	}
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	s.u.names[name] = true
	if wasNoSelect {
		delete(s.u.noSelect, name)
	}
	if options != nil && len(options.SpecialUse) > 0 {
		s.u.specialUse[name] = options.SpecialUse[0]
	}
	return nil
}

func (s *session) Delete(name string) error {
	s.u.mu.Lock()
	if s.u.noSelect[name] {
		delete(s.u.noSelect, name)
		s.u.mu.Unlock()
		return nil
	}
	s.u.mu.Unlock()
	if err := s.UserSession.Delete(name); err != nil {
		return err
	}
	s.u.mu.Lock()
	delete(s.u.specialUse, name)
	delete(s.u.names, name)
	delete(s.u.subscribed, name)
	s.u.mu.Unlock()
	return nil
}

func (s *session) Rename(oldName, newName string, options *imap.RenameOptions) error {
	newName = strings.TrimRight(newName, string(Delim))
	if err := s.UserSession.Rename(oldName, newName, options); err != nil {
		return err
	}
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	delete(s.u.names, oldName)
	s.u.names[newName] = true
	if su, ok := s.u.specialUse[oldName]; ok {
		delete(s.u.specialUse, oldName)
		s.u.specialUse[newName] = su
	}
	s.u.subscribed[newName] = s.u.subscribed[oldName]
	delete(s.u.subscribed, oldName)
	return nil
}

func (s *session) Subscribe(name string) error {
	if !s.isNoSelect(name) {
		if err := s.UserSession.Subscribe(name); err != nil {
			return err
		}
	}
	s.u.setSubscribed(name, true)
	return nil
}

func (s *session) Unsubscribe(name string) error {
	if !s.isNoSelect(name) {
		if err := s.UserSession.Unsubscribe(name); err != nil {
			return err
		}
	}
	s.u.setSubscribed(name, false)
	return nil
}

// List answers from the real mailboxes plus the \Noselect names, adding
// SPECIAL-USE attributes, \Subscribed and STATUS as asked.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: Delim})
	}
	// Collect the real mailboxes through the inner server's List.
	var real []imap.ListData
	collector := &listCollector{}
	if err := s.collect(collector, ref, patterns); err != nil {
		return err
	}
	real = collector.l

	s.u.mu.Lock()
	var l []imap.ListData
	for _, d := range real {
		su, hasSU := s.u.specialUse[d.Mailbox]
		if options.SelectSpecialUse && !hasSU {
			continue
		}
		if hasSU && (options.ReturnSpecialUse || options.SelectSpecialUse) {
			d.Attrs = append(d.Attrs, su)
		}
		if options.SelectSubscribed && !hasAttr(d.Attrs, imap.MailboxAttrSubscribed) {
			continue
		}
		if !options.ReturnSubscribed && !options.SelectSubscribed {
			d.Attrs = dropAttr(d.Attrs, imap.MailboxAttrSubscribed)
		}
		l = append(l, d)
	}
	for name := range s.u.noSelect {
		if !matchAny(name, ref, patterns) || options.SelectSpecialUse {
			continue
		}
		d := imap.ListData{Mailbox: name, Delim: Delim, Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}}
		if s.u.subscribed[name] {
			if options.ReturnSubscribed || options.SelectSubscribed {
				d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
			}
		} else if options.SelectSubscribed {
			continue
		}
		l = append(l, d)
	}
	s.u.mu.Unlock()
	sort.Slice(l, func(i, j int) bool { return l[i].Mailbox < l[j].Mailbox })
	for i := range l {
		d := l[i]
		if options.ReturnStatus != nil && !hasAttr(d.Attrs, imap.MailboxAttrNoSelect) {
			st, err := s.u.mem.Status(d.Mailbox, options.ReturnStatus)
			if err == nil {
				d.Status = st
			}
		}
		if err := w.WriteList(&d); err != nil {
			return err
		}
	}
	return nil
}

// collect lists the real mailboxes with \Subscribed attributes.
func (s *session) collect(c *listCollector, ref string, patterns []string) error {
	// imapmemserver's User.List writes to a concrete *imapserver.ListWriter we
	// cannot build; ask each mailbox by name instead.
	for _, name := range s.u.realNames() {
		if !matchAny(name, ref, patterns) {
			continue
		}
		st, err := s.u.mem.Status(name, &imap.StatusOptions{})
		if err != nil {
			continue
		}
		d := imap.ListData{Mailbox: st.Mailbox, Delim: Delim}
		if s.u.isSubscribed(name) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		c.l = append(c.l, d)
	}
	return nil
}

type listCollector struct{ l []imap.ListData }

func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, Delim, ref, p) {
			return true
		}
	}
	return false
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

func dropAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) []imap.MailboxAttr {
	out := attrs[:0]
	for _, x := range attrs {
		if !strings.EqualFold(string(x), string(a)) {
			out = append(out, x)
		}
	}
	return out
}

func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if lim := s.srv.opts.AppendLimit; lim > 0 && r.Size() > int64(lim) {
		_, _ = io.Copy(io.Discard, r)
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "message too big"}
	}
	if h := s.srv.opts.AppendHook; h != nil {
		var flags []imap.Flag
		if options != nil {
			flags = options.Flags
		}
		if err := h(s.u.name, mailbox, flags, r.Size()); err != nil {
			_, _ = io.Copy(io.Discard, r)
			if errors.Is(err, ErrDrop) {
				_ = s.conn.NetConn().Close()
				return nil, err
			}
			var ie *imap.Error
			if errors.As(err, &ie) {
				return nil, ie
			}
			return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: err.Error()}
		}
	}
	if s.isNoSelect(mailbox) {
		_, _ = io.Copy(io.Discard, r)
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "\\Noselect mailbox"}
	}
	return s.UserSession.Append(mailbox, r, options)
}
