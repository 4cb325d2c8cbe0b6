// Package memimap runs an in-memory IMAP server on a 127.0.0.1 listener for
// unit tests and demos, on go-imap's imapserver with its own byte-exact
// store (imapmemserver re-serialises headers in BODY[] and so alters
// malformed messages). It offers what the copy engine needs to be tested
// without Dovecot: several users, admin login by SASL PLAIN authzid
// (authzid = mailbox, authcid = admin), \Noselect parents, SPECIAL-USE
// attributes (CREATE-SPECIAL-USE), subscriptions, LIST-STATUS, UIDPLUS, an
// optional APPENDLIMIT, and a hook that refuses or drops an APPEND.
//
// Limits: the hierarchy separator is always '/', there is no namespace
// prefix, no CONDSTORE (HIGHESTMODSEQ is never reported), no TLS, no quota,
// no SEARCH, COPY or MOVE, no unilateral updates (sessions see other
// sessions' changes at their next command, and sequence numbers are not
// kept stable against another session's EXPUNGE). FETCH BODY[] never sets
// \Seen. Messages live in memory unless Options.Bodies keeps their bodies
// on disk.
//
// A *Server is safe for concurrent use.
package memimap

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
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
	// Bodies, when set, stores message bodies on disk (shared by servers
	// that use the same Bodies); nil keeps them in memory.
	Bodies *Bodies
}

// Server is a running in-memory IMAP server.
type Server struct {
	opts  Options
	imap  *imapserver.Server
	ln    net.Listener
	done  chan struct{}
	mu    sync.Mutex
	users map[string]*user
}

type user struct {
	name, password string

	mu        sync.Mutex
	mailboxes map[string]*mailbox
	noSelect  map[string]bool // \Noselect parents
	subs      map[string]bool
	nextValid uint32
}

type mailbox struct {
	name        string
	uidValidity uint32
	uidNext     imap.UID
	specialUse  imap.MailboxAttr
	msgs        []*message
}

type message struct {
	uid   imap.UID
	raw   []byte // nil when the body is in Options.Bodies
	blob  blob
	size  int64
	date  time.Time
	flags []imap.Flag
}

// Start listens on a free 127.0.0.1 port and serves until Close.
func Start(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("memimap: listen: %w", err)
	}
	s := &Server{opts: opts, ln: ln, done: make(chan struct{}), users: map[string]*user{}}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {},
			imap.CapListExtended: {}, imap.CapListStatus: {}, imap.CapStatusSize: {},
			imap.CapSpecialUse: {}, imap.CapCreateSpecialUse: {}, imap.CapLiteralPlus: {},
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

// AddUser creates a user with an empty, subscribed INBOX.
func (s *Server) AddUser(name, password string) {
	u := &user{name: name, password: password, mailboxes: map[string]*mailbox{},
		noSelect: map[string]bool{}, subs: map[string]bool{"INBOX": true}, nextValid: 1000}
	u.create("INBOX", "")
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
// INTERNALDATE, byte for byte.
func (s *Server) Seed(name string, m corpus.Mailbox) error {
	u := s.user(name)
	if u == nil {
		return fmt.Errorf("memimap: no user %q", name)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, f := range m.Folders {
		n := canonName(f.Name)
		if f.NoSelect {
			u.noSelect[n] = true
		} else if u.mailboxes[n] == nil {
			u.create(n, imap.MailboxAttr(f.SpecialUse))
		} else if f.SpecialUse != "" {
			u.mailboxes[n].specialUse = imap.MailboxAttr(f.SpecialUse)
		}
		u.subs[n] = f.Subscribed
	}
	for i, msg := range m.Messages {
		mb := u.mailboxes[canonName(msg.Folder)]
		if mb == nil {
			return fmt.Errorf("memimap: message %d: no folder %q", i, msg.Folder)
		}
		flags := make([]imap.Flag, len(msg.Flags))
		for j, f := range msg.Flags {
			flags[j] = imap.Flag(f)
		}
		m, err := s.newMessage(msg.Raw, true)
		if err != nil {
			return err
		}
		mb.add(m, msg.InternalDate, flags)
	}
	return nil
}

// newMessage holds raw in Options.Bodies, or in memory (a copy when
// copyRaw is set).
func (s *Server) newMessage(raw []byte, copyRaw bool) (*message, error) {
	m := &message{size: int64(len(raw))}
	if s.opts.Bodies != nil {
		bl, err := s.opts.Bodies.put(raw)
		if err != nil {
			return nil, err
		}
		m.blob = bl
		return m, nil
	}
	if copyRaw {
		raw = append([]byte(nil), raw...)
	}
	m.raw = raw
	return m, nil
}

// body returns the message's bytes.
func (s *Server) body(m *message) ([]byte, error) {
	if m.raw != nil || s.opts.Bodies == nil {
		return m.raw, nil
	}
	return s.opts.Bodies.get(m.blob)
}

func canonName(name string) string {
	name = strings.TrimRight(name, string(Delim))
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// create adds a mailbox; u.mu must be held.
func (u *user) create(name string, use imap.MailboxAttr) *mailbox {
	u.nextValid++
	mb := &mailbox{name: name, uidValidity: u.nextValid, uidNext: 1, specialUse: use}
	u.mailboxes[name] = mb
	delete(u.noSelect, name)
	return mb
}

func (mb *mailbox) add(m *message, date time.Time, flags []imap.Flag) imap.UID {
	if date.IsZero() {
		date = time.Now()
	}
	m.uid, m.date = mb.uidNext, date
	m.setFlags(flags)
	mb.uidNext++
	mb.msgs = append(mb.msgs, m)
	return m.uid
}

func (m *message) setFlags(flags []imap.Flag) {
	m.flags = nil
	seen := map[string]bool{}
	for _, f := range flags {
		k := strings.ToLower(string(f))
		if k == `\recent` || seen[k] {
			continue
		}
		seen[k] = true
		m.flags = append(m.flags, f)
	}
}

func (m *message) hasFlag(f imap.Flag) bool {
	for _, x := range m.flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

func (mb *mailbox) status(o *imap.StatusOptions) *imap.StatusData {
	d := &imap.StatusData{Mailbox: mb.name}
	if o.NumMessages {
		n := uint32(len(mb.msgs))
		d.NumMessages = &n
	}
	if o.UIDNext {
		d.UIDNext = mb.uidNext
	}
	if o.UIDValidity {
		d.UIDValidity = mb.uidValidity
	}
	if o.NumUnseen {
		var n uint32
		for _, m := range mb.msgs {
			if !m.hasFlag(imap.FlagSeen) {
				n++
			}
		}
		d.NumUnseen = &n
	}
	if o.NumDeleted {
		var n uint32
		for _, m := range mb.msgs {
			if m.hasFlag(imap.FlagDeleted) {
				n++
			}
		}
		d.NumDeleted = &n
	}
	if o.Size {
		var n int64
		for _, m := range mb.msgs {
			n += m.size
		}
		d.Size = &n
	}
	return d
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	sess := &session{srv: s, conn: c}
	if s.opts.AppendLimit > 0 {
		return &limitSession{sess}, nil, nil
	}
	return sess, nil, nil
}

// session is one connection's state.
type session struct {
	srv      *Server
	conn     *imapserver.Conn
	u        *user
	selected string
	readOnly bool
}

type limitSession struct{ *session }

// AppendLimit implements imapserver.SessionAppendLimit.
func (s *limitSession) AppendLimit() uint32 { return s.srv.opts.AppendLimit }

var (
	_ imapserver.SessionSASL      = (*session)(nil)
	_ imapserver.SessionNamespace = (*session)(nil)
)

func noMailbox() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
}

func (s *session) Close() error { return nil }

func (s *session) Login(username, password string) error {
	u := s.srv.user(username)
	if u == nil || subtle.ConstantTimeCompare([]byte(password), []byte(u.password)) != 1 {
		return imapserver.ErrAuthFailed
	}
	s.u = u
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
		if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 {
			return imapserver.ErrAuthFailed
		}
		u := s.srv.user(identity)
		if u == nil {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "no such user"}
		}
		s.u = u
		return nil
	}), nil
}

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Delim: Delim}}}, nil
}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	name = canonName(name)
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	mb := s.u.mailboxes[name]
	if mb == nil {
		return nil, noMailbox()
	}
	s.selected, s.readOnly = name, options != nil && options.ReadOnly
	set := map[string]imap.Flag{}
	for _, m := range mb.msgs {
		for _, f := range m.flags {
			set[strings.ToLower(string(f))] = f
		}
	}
	var flags []imap.Flag
	for _, f := range set {
		flags = append(flags, f)
	}
	sort.Slice(flags, func(i, j int) bool { return flags[i] < flags[j] })
	perm := append(append([]imap.Flag(nil), flags...), imap.FlagWildcard)
	return &imap.SelectData{Flags: flags, PermanentFlags: perm, NumMessages: uint32(len(mb.msgs)),
		UIDNext: mb.uidNext, UIDValidity: mb.uidValidity}, nil
}

func (s *session) Unselect() error {
	s.selected = ""
	return nil
}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	name = canonName(name)
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	if s.u.mailboxes[name] != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	}
	var use imap.MailboxAttr
	if options != nil && len(options.SpecialUse) > 0 {
		use = options.SpecialUse[0]
	}
	s.u.create(name, use)
	// Parents appear as \Noselect, as on Dovecot's fs layout.
	parts := strings.Split(name, string(Delim))
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], string(Delim))
		if s.u.mailboxes[p] == nil {
			s.u.noSelect[p] = true
		}
	}
	return nil
}

func (s *session) Delete(name string) error {
	name = canonName(name)
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	if s.u.noSelect[name] {
		delete(s.u.noSelect, name)
		return nil
	}
	if s.u.mailboxes[name] == nil {
		return noMailbox()
	}
	delete(s.u.mailboxes, name)
	return nil
}

func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	oldName, newName = canonName(oldName), canonName(newName)
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	mb := s.u.mailboxes[oldName]
	if mb == nil {
		return noMailbox()
	}
	if s.u.mailboxes[newName] != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	}
	delete(s.u.mailboxes, oldName)
	mb.name = newName
	s.u.mailboxes[newName] = mb
	return nil
}

func (s *session) Subscribe(name string) error {
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	s.u.subs[canonName(name)] = true
	return nil
}

func (s *session) Unsubscribe(name string) error {
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	s.u.subs[canonName(name)] = false
	return nil
}

// List writes the real mailboxes and the \Noselect parents, with
// SPECIAL-USE, \Subscribed and STATUS as asked.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: Delim})
	}
	s.u.mu.Lock()
	var l []imap.ListData
	names := map[string]bool{}
	for n := range s.u.mailboxes {
		names[n] = true
	}
	for n := range s.u.noSelect {
		names[n] = true
	}
	for name := range names {
		if !matchAny(name, ref, patterns) {
			continue
		}
		d := imap.ListData{Mailbox: name, Delim: Delim}
		mb := s.u.mailboxes[name]
		if mb == nil {
			d.Attrs = append(d.Attrs, imap.MailboxAttrNoSelect)
		}
		sub := s.u.subs[name]
		if options.SelectSubscribed && !sub {
			continue
		}
		if sub && (options.ReturnSubscribed || options.SelectSubscribed) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		hasUse := mb != nil && mb.specialUse != ""
		if options.SelectSpecialUse && !hasUse {
			continue
		}
		if hasUse && (options.ReturnSpecialUse || options.SelectSpecialUse) {
			d.Attrs = append(d.Attrs, mb.specialUse)
		}
		if options.ReturnStatus != nil && mb != nil {
			d.Status = mb.status(options.ReturnStatus)
		}
		l = append(l, d)
	}
	s.u.mu.Unlock()
	sort.Slice(l, func(i, j int) bool { return l[i].Mailbox < l[j].Mailbox })
	for i := range l {
		if err := w.WriteList(&l[i]); err != nil {
			return err
		}
	}
	return nil
}

func matchAny(name, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, Delim, ref, p) {
			return true
		}
	}
	return false
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	mb := s.u.mailboxes[canonName(name)]
	if mb == nil {
		return nil, noMailbox()
	}
	return mb.status(options), nil
}

func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) != r.Size() {
		// The client went away mid-literal: store nothing.
		return nil, io.ErrUnexpectedEOF
	}
	if lim := s.srv.opts.AppendLimit; lim > 0 && int64(len(raw)) > int64(lim) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "message too big"}
	}
	var flags []imap.Flag
	var date time.Time
	if options != nil {
		flags, date = options.Flags, options.Time
	}
	if h := s.srv.opts.AppendHook; h != nil {
		if err := h(s.u.name, name, flags, int64(len(raw))); err != nil {
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
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	mb := s.u.mailboxes[canonName(name)]
	if mb == nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}
	}
	m, err := s.srv.newMessage(raw, false)
	if err != nil {
		return nil, err
	}
	uid := mb.add(m, date, flags)
	return &imap.AppendData{UID: uid, UIDValidity: mb.uidValidity}, nil
}

func (s *session) Poll(*imapserver.UpdateWriter, bool) error { return nil }

func (s *session) Idle(_ *imapserver.UpdateWriter, stop <-chan struct{}) error {
	<-stop
	return nil
}

// selectedLocked returns the selected mailbox; s.u.mu must be held.
func (s *session) selectedLocked() (*mailbox, error) {
	mb := s.u.mailboxes[s.selected]
	if mb == nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "selected mailbox is gone"}
	}
	return mb, nil
}

// each calls f for the messages of numSet in sequence order.
func each(mb *mailbox, numSet imap.NumSet, f func(seq uint32, m *message) error) error {
	switch set := numSet.(type) {
	case imap.SeqSet:
		max := uint32(len(mb.msgs))
		for i, m := range mb.msgs {
			seq := uint32(i) + 1
			if containsSeq(set, seq, max) {
				if err := f(seq, m); err != nil {
					return err
				}
			}
		}
	case imap.UIDSet:
		max := mb.uidNext - 1
		for i, m := range mb.msgs {
			if containsUID(set, m.uid, max) {
				if err := f(uint32(i)+1, m); err != nil {
					return err
				}
			}
		}
	default:
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "unsupported number set"}
	}
	return nil
}

func containsSeq(set imap.SeqSet, n, max uint32) bool {
	for _, r := range set {
		a, b := r.Start, r.Stop
		if a == 0 {
			a = max
		}
		if b == 0 {
			b = max
		}
		if a > b {
			a, b = b, a
		}
		if n >= a && n <= b {
			return true
		}
	}
	return false
}

func containsUID(set imap.UIDSet, n, max imap.UID) bool {
	for _, r := range set {
		a, b := r.Start, r.Stop
		if a == 0 {
			a = max
		}
		if b == 0 {
			b = max
		}
		if a > b {
			a, b = b, a
		}
		if n >= a && n <= b {
			return true
		}
	}
	return false
}

// Fetch answers from the stored bytes: BODY[] is the message exactly as
// appended; other sections use imapserver's extraction.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	mb, err := s.selectedLocked()
	if err != nil {
		return err
	}
	return each(mb, numSet, func(seq uint32, m *message) error {
		return s.srv.fetchOne(w.CreateMessage(seq), m, options)
	})
}

func (s *Server) fetchOne(rw *imapserver.FetchResponseWriter, m *message, o *imap.FetchOptions) error {
	var raw []byte
	if o.Envelope || o.BodyStructure != nil || len(o.BodySection) > 0 {
		b, err := s.body(m)
		if err != nil {
			return err
		}
		raw = b
	}
	rw.WriteUID(m.uid)
	if o.Flags {
		rw.WriteFlags(m.flags)
	}
	if o.InternalDate {
		rw.WriteInternalDate(m.date)
	}
	if o.RFC822Size {
		rw.WriteRFC822Size(m.size)
	}
	if o.Envelope {
		if h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw))); err == nil {
			rw.WriteEnvelope(imapserver.ExtractEnvelope(h))
		}
	}
	if o.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(raw)))
	}
	for _, bs := range o.BodySection {
		var buf []byte
		if bs.Specifier == imap.PartSpecifierNone && len(bs.Part) == 0 && len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0 {
			buf = raw
		} else {
			buf = imapserver.ExtractBodySection(bytes.NewReader(raw), bs)
		}
		if bs.Partial != nil {
			off := min(int64(len(buf)), bs.Partial.Offset)
			end := int64(len(buf))
			if bs.Partial.Size > 0 {
				end = min(end, off+bs.Partial.Size)
			}
			buf = buf[off:end]
		}
		wc := rw.WriteBodySection(bs, int64(len(buf)))
		_, werr := wc.Write(buf)
		if cerr := wc.Close(); werr != nil || cerr != nil {
			return errors.Join(werr, cerr)
		}
	}
	return rw.Close()
}

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	mb, err := s.selectedLocked()
	if err != nil {
		return err
	}
	if s.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "mailbox is read-only"}
	}
	return each(mb, numSet, func(seq uint32, m *message) error {
		switch flags.Op {
		case imap.StoreFlagsSet:
			m.setFlags(flags.Flags)
		case imap.StoreFlagsAdd:
			m.setFlags(append(append([]imap.Flag(nil), m.flags...), flags.Flags...))
		case imap.StoreFlagsDel:
			var keep []imap.Flag
			for _, f := range m.flags {
				drop := false
				for _, d := range flags.Flags {
					if strings.EqualFold(string(f), string(d)) {
						drop = true
					}
				}
				if !drop {
					keep = append(keep, f)
				}
			}
			m.setFlags(keep)
		}
		if flags.Silent {
			return nil
		}
		rw := w.CreateMessage(seq)
		rw.WriteUID(m.uid)
		rw.WriteFlags(m.flags)
		return rw.Close()
	})
}

func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	mb, err := s.selectedLocked()
	if err != nil {
		return err
	}
	var keep []*message
	var gone []uint32
	for i, m := range mb.msgs {
		if m.hasFlag(imap.FlagDeleted) && (uids == nil || containsUID(*uids, m.uid, mb.uidNext-1)) {
			gone = append(gone, uint32(i)+1)
			continue
		}
		keep = append(keep, m)
	}
	mb.msgs = keep
	for i := len(gone) - 1; i >= 0; i-- {
		if err := w.WriteExpunge(gone[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) Search(imapserver.NumKind, *imap.SearchCriteria, *imap.SearchOptions) (*imap.SearchData, error) {
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "memimap: SEARCH not supported"}
}

func (s *session) Copy(imap.NumSet, string) (*imap.CopyData, error) {
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "memimap: COPY not supported"}
}
