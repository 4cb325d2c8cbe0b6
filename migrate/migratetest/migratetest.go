// Package migratetest starts a whole migration environment in process: a
// Zextras Suite-like source and a Carbonio-like destination, each with an
// IMAP server (memimap), a CalDAV/CardDAV server (memdav, per-user tokens)
// and an admin API (carboniotest), seeded with a generated domain. It
// returns a ready migrate.Plan. `migrate demo` runs on it, and so can
// programs that embed the SDK in their own tests.
//
// Everything listens on 127.0.0.1; message bodies are kept on disk in Dir
// (once per content, shared by both IMAP servers), the rest in memory.
// Call Close.
package migratetest

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
)

// Defaults for zero Options fields.
const (
	DefaultAccounts = 20
	DefaultDomain   = "example.com"
	DefaultEvents   = 12
	DefaultContacts = 12
	// BackupPath is where the fake destination finds the source export
	// when the plan does not transfer it (Env.Plan transfers it into
	// Dir/destination-export).
	BackupPath = "/opt/zextras/migration/export"
	// ExportBlobBytes is the item data the fake source exports per
	// account, so that the transfer moves real bytes.
	ExportBlobBytes = 64 << 10
)

// MinMessages is the fewest messages an account gets: the generated corpus
// needs that many to cover every folder and edge case, so a smaller
// Options.Messages is raised to it.
var MinMessages = corpus.MinMessages

// Options shape the generated domain. Zero values mean the defaults.
type Options struct {
	// Accounts is the number of accounts (DefaultAccounts).
	Accounts int
	// Domain is the source domain (DefaultDomain).
	Domain string
	// Messages per account; the corpus raises small values to its minimum
	// (about 190 messages covering every folder and edge case).
	Messages int
	// Events and Contacts per account (DefaultEvents, DefaultContacts).
	Events, Contacts int
	// Seed varies the generated data.
	Seed int64
	// Dir holds the state file, the report and the CA files; "" means a
	// new temporary directory, removed by Close.
	Dir string
	// AppendLimit, when not zero, makes the destination IMAP server refuse
	// larger messages (advertised as APPENDLIMIT).
	AppendLimit uint32
	// VirtualEvery gives every n-th account a mountpoint and a saved
	// search (seen as IMAP folders on the source, to be skipped) and a
	// Briefcase item; 0 means 5, negative none.
	VirtualEvery int
	// Faults seeds trouble, so that a run ends partial: the first account
	// gets a message with a keyword the destination refuses (FaultKeyword),
	// a message over the destination's APPENDLIMIT (FaultAppendLimit unless
	// AppendLimit is set) and a broken vCard; the destination IMAP server
	// resets the connection once, at the tenth APPEND of the second account
	// (the first when there is one).
	Faults bool
}

// The faults Options.Faults seeds.
const (
	// FaultKeyword is the keyword the destination refuses.
	FaultKeyword = "Refused"
	// FaultAppendLimit is the destination's APPENDLIMIT with faults.
	FaultAppendLimit = 20 << 20
)

// Env is a running environment.
type Env struct {
	// Plan migrates the whole domain through every phase. Its secrets are
	// set; programs may change fields before running it.
	Plan *migrate.Plan
	// Hooks must be given to the migrate.Runner: they connect the demo's
	// DAV tokens and the destination's command line.
	Hooks migrate.Hooks
	// Accounts lists the source addresses.
	Accounts []string
	// Dir holds the state file and the report.
	Dir string
	// Messages, Objects and Bytes count what the source holds (copyable
	// mail, calendar objects and vCards).
	Messages, Objects int
	// Bytes is the size of the source's copyable mail.
	Bytes int64

	srcIMAP, dstIMAP *memimap.Server
	srcDAV, dstDAV   *memdav.Server
	srcHTTP, dstHTTP *httptest.Server
	briefcase        *carboniotest.Briefcase
	files            *carboniotest.Files
	filesHTTP        []*httptest.Server
	srcAdmin         *carboniotest.Server
	dstAdmin         *carboniotest.Server
	bodies           *memimap.Bodies
	tempDir          bool
	// gen holds each account's corpus options: SourceMail generates the
	// mailbox again rather than keeping it in memory.
	gen    map[string]corpus.Options
	resets atomic.Int64
}

const (
	imapAdmin  = "admin"
	adminPass  = "demo-admin-password"
	srcSOAPAdm = "admin@example.com"
	dstSOAPAdm = "admin@carbonio.local"
)

type tokens struct{ s *memdav.Server }

func (t tokens) UserToken(_ context.Context, account string) (secret.Secret, error) {
	return secret.New(t.s.IssueToken(account)), nil
}

// Start builds and seeds the environment.
func Start(o Options) (*Env, error) { return StartContext(context.Background(), o) }

// StartContext builds and seeds the environment; cancelling ctx stops the
// seeding between two accounts and returns ctx's error.
func StartContext(ctx context.Context, o Options) (env *Env, err error) {
	if o.Accounts <= 0 {
		o.Accounts = DefaultAccounts
	}
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.Events == 0 {
		o.Events = DefaultEvents
	}
	if o.Contacts == 0 {
		o.Contacts = DefaultContacts
	}
	if o.VirtualEvery == 0 {
		o.VirtualEvery = 5
	}
	e := &Env{Dir: o.Dir, gen: map[string]corpus.Options{}}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Dir == "" {
		d, err := os.MkdirTemp("", "zxmigrate-demo-")
		if err != nil {
			return nil, fmt.Errorf("migratetest: %w", err)
		}
		e.Dir, e.tempDir = d, true
	} else if err := os.MkdirAll(e.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("migratetest: %w", err)
	}
	if e.bodies, err = memimap.NewBodies(e.Dir); err != nil {
		return nil, fmt.Errorf("migratetest: %w", err)
	}
	admins := map[string]string{imapAdmin: adminPass}
	if e.srcIMAP, err = memimap.Start(memimap.Options{Admins: admins, Bodies: e.bodies}); err != nil {
		return nil, fmt.Errorf("migratetest: source imap: %w", err)
	}
	dstOpts := memimap.Options{Admins: admins, AppendLimit: o.AppendLimit, Bodies: e.bodies}
	if o.Faults {
		if dstOpts.AppendLimit == 0 {
			dstOpts.AppendLimit = FaultAppendLimit
		}
		resetUser := fmt.Sprintf("user%02d@%s", min(2, o.Accounts), o.Domain)
		var appends atomic.Int64
		dstOpts.AppendHook = func(user, _ string, flags []imap.Flag, _ int64) error {
			if slices.Contains(flags, imap.Flag(FaultKeyword)) {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "keyword " + FaultKeyword + " is not allowed here"}
			}
			if user == resetUser && appends.Add(1) == 10 {
				e.resets.Add(1)
				return memimap.ErrDrop
			}
			return nil
		}
	}
	if e.dstIMAP, err = memimap.Start(dstOpts); err != nil {
		return nil, fmt.Errorf("migratetest: destination imap: %w", err)
	}
	e.srcDAV, e.dstDAV = memdav.New(), memdav.New()
	e.srcDAV.RequireToken, e.dstDAV.RequireToken = true, true
	e.srcHTTP, e.dstHTTP = httptest.NewServer(e.srcDAV), httptest.NewServer(e.dstDAV)
	// The source's Briefcase over REST and the destination's Carbonio
	// Files, both accepting the user tokens their admin API hands out.
	e.briefcase, e.files = carboniotest.NewBriefcase(""), carboniotest.NewFiles()
	bcHTTP, filesHTTP := httptest.NewServer(e.briefcase), httptest.NewServer(e.files)
	e.filesHTTP = []*httptest.Server{bcHTTP, filesHTTP}

	srcFx := &carboniotest.Fixture{Domains: []string{o.Domain},
		Servers: []carboniotest.FixtureServer{{Name: "zimbra." + o.Domain, Services: []string{"mailbox", "mta", "proxy"}}}}
	for i := 1; i <= o.Accounts; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		user := fmt.Sprintf("user%02d@%s", i, o.Domain)
		e.Accounts = append(e.Accounts, user)
		msgs := o.Messages
		if msgs <= 0 {
			msgs = 1
		}
		// Vary sizes so that the pool's largest-first order shows.
		gen := corpus.Options{Seed: o.Seed + int64(i), Messages: msgs + (i%4)*60, Events: o.Events, Contacts: o.Contacts}
		e.gen[user] = gen
		faults := o.Faults && i == 1
		acct := corpus.Generate(user, gen)
		virtual := o.VirtualEvery > 0 && i%o.VirtualEvery == 0
		fa, err := e.seed(user, acct, virtual, e.Accounts[0], faults)
		if err != nil {
			return nil, err
		}
		srcFx.Accounts = append(srcFx.Accounts, fa)
	}
	srcFx.Accounts = append(srcFx.Accounts, carboniotest.FixtureAccount{Name: "galsync@" + o.Domain, System: true})
	srcFx.Aliases = []carboniotest.FixtureAlias{{Name: "postmaster@" + o.Domain, Target: e.Accounts[0]}}
	srcFx.DistributionLists = []carboniotest.FixtureList{{Name: "all@" + o.Domain, Members: e.Accounts}}
	e.srcAdmin = carboniotest.New(carboniotest.Options{Admin: srcSOAPAdm, Password: adminPass, Fixture: srcFx})
	e.briefcase.TokenCheck = e.srcAdmin.ValidUserToken
	// The export phase writes a fake export into srcExport on this host
	// (the source's zxsuite), the transfer phase copies it into dstExport
	// (mode local: rsync, or the built-in copier without rsync), and the
	// destination then reads what arrived there; a plan without those
	// phases finds the backup preloaded.
	srcExport, dstExport := filepath.Join(e.Dir, "source-export"), filepath.Join(e.Dir, "destination-export")
	e.dstAdmin = carboniotest.New(carboniotest.Options{Admin: dstSOAPAdm, Password: adminPass,
		Fixture: carboniotest.DestinationFixture(), Backups: map[string]*carboniotest.Fixture{BackupPath: srcFx, dstExport: srcFx}, OperationSteps: 1})
	e.files.TokenCheck = e.dstAdmin.ValidUserToken

	srcCA, dstCA := filepath.Join(e.Dir, "source-ca.pem"), filepath.Join(e.Dir, "destination-ca.pem")
	if err := os.WriteFile(srcCA, e.srcAdmin.CertPEM(), 0o600); err != nil {
		return nil, fmt.Errorf("migratetest: %w", err)
	}
	if err := os.WriteFile(dstCA, e.dstAdmin.CertPEM(), 0o600); err != nil {
		return nil, fmt.Errorf("migratetest: %w", err)
	}
	pw := migrate.Credential{Password: secret.New(adminPass)}
	e.Plan = &migrate.Plan{
		Name: "demo: " + o.Domain + " from Zextras Suite to Carbonio",
		Source: migrate.Endpoint{
			Kind:  "zimbra",
			Admin: migrate.AdminEndpoint{URL: e.srcAdmin.URL, User: srcSOAPAdm, Credential: pw, CAFile: srcCA},
			IMAP:  migrate.IMAPEndpoint{Address: e.srcIMAP.Addr(), Security: "none", Admin: imapAdmin, Credential: pw},
			DAV:   migrate.DAVEndpoint{URL: e.srcHTTP.URL + "/", Auth: "token"},
			Files: migrate.FilesEndpoint{URL: bcHTTP.URL},
		},
		Destination: migrate.Endpoint{
			Admin: migrate.AdminEndpoint{URL: e.dstAdmin.URL, User: dstSOAPAdm, Credential: pw, CAFile: dstCA},
			IMAP:  migrate.IMAPEndpoint{Address: e.dstIMAP.Addr(), Security: "none", Admin: imapAdmin, Credential: pw},
			DAV:   migrate.DAVEndpoint{URL: e.dstHTTP.URL + "/", Auth: "token"},
			Files: migrate.FilesEndpoint{URL: filesHTTP.URL},
		},
		Domains:      []string{o.Domain},
		Phases:       migrate.AllPhases,
		Export:       migrate.ExportPlan{Path: srcExport},
		Transfer:     migrate.TransferPlan{Mode: migrate.TransferLocal},
		Provisioning: migrate.Provisioning{BackupPath: dstExport, ConcurrentAccounts: 5},
		Concurrency:  migrate.Concurrency{ConcurrentAccounts: 8, FoldersPerAccount: 8, ConnectionsPerServer: 128},
		State:        filepath.Join(e.Dir, "state.db"),
		Report:       filepath.Join(e.Dir, "report"),
	}
	e.Hooks = migrate.Hooks{
		SourceTokens:      tokens{e.srcDAV},
		DestinationTokens: tokens{e.dstDAV},
		DestinationCLI:    e.dstAdmin.ExportRunner(0),
		SourceCLI:         e.srcAdmin.ExportRunner(ExportBlobBytes),
		PollInterval:      20e6, // 20ms: the fake's operations finish in one poll
	}
	return e, nil
}

// ownerInboxID is the id of every source account's Inbox (the first id of
// a user folder in Zimbra).
const ownerInboxID = "257"

// seed loads one account into the source servers and prepares its
// destination mailboxes (the IMAP and DAV users; the admin API's account is
// created by the provisioning phase).
//
// A virtual account (every VirtualEvery-th) shares its calendar with owner
// (the first account), the public, a guest and a key holder, mounts
// owner's Inbox and has a saved search: the shares phase re-creates all
// but the guest and key grants, which it reports as needing an invitation.
//
// With faults, the account also gets Options.Faults' faulty message and
// vCard.
func (e *Env) seed(user string, acct *corpus.Account, virtual bool, owner string, faults bool) (carboniotest.FixtureAccount, error) {
	e.srcIMAP.AddUser(user, "user-password-unused")
	e.dstIMAP.AddUser(user, "user-password-unused")
	mb := acct.Mail
	if faults {
		mb.Messages = append(slices.Clip(mb.Messages), faultMessages(user)...)
	}
	fa := carboniotest.FixtureAccount{Name: user, Attrs: map[string][]string{"displayName": {user}}}
	type agg struct{ n, size int64 }
	byFolder := map[string]*agg{}
	for _, m := range mb.Messages {
		a := byFolder[m.Folder]
		if a == nil {
			a = &agg{}
			byFolder[m.Folder] = a
		}
		a.n++
		a.size += int64(len(m.Raw))
	}
	var names []string
	for _, f := range mb.Folders {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		a := byFolder[n]
		if a == nil {
			a = &agg{}
		}
		zname := n
		if strings.EqualFold(n, "INBOX") || strings.HasPrefix(strings.ToUpper(n), "INBOX/") {
			zname = "Inbox" + n[len("INBOX"):]
		}
		ff := carboniotest.FixtureFolder{Name: zname, View: "message", Count: a.n, Size: a.size, UIDNext: a.n + 1}
		if zname == "Inbox" {
			ff.ID = ownerInboxID // the mountpoints below point at it
		}
		fa.Folders = append(fa.Folders, ff)
	}
	cal := carboniotest.FixtureFolder{Name: "Calendar", View: "appointment"}
	if virtual {
		cal.Grants = []carboniotest.FixtureGrant{{Type: "usr", Grantee: owner, Perm: "rwidx"}, {Type: "pub", Perm: "r"},
			{Type: "guest", Grantee: "partner@example.org", Perm: "r"}, {Type: "key", Grantee: "auditor", Perm: "r"}}
	}
	fa.Folders = append(fa.Folders, cal, carboniotest.FixtureFolder{Name: "Contacts", View: "contact"})
	if virtual {
		// Zimbra shows mountpoints and saved searches as IMAP folders; the
		// runner must skip them using the admin API's folder tree.
		shared := "Shared by boss"
		search := "Unread mail"
		fa.Folders = append(fa.Folders,
			carboniotest.FixtureFolder{Name: shared, View: "message", Kind: "link", Owner: owner, RemoteID: ownerInboxID},
			carboniotest.FixtureFolder{Name: search, View: "message", Kind: "search", Query: "is:unread", Types: "message"},
			carboniotest.FixtureFolder{Name: "Briefcase", View: "document", Count: 3, Size: 123456})
		// Its Briefcase: a report with 3 revisions, a picture and a
		// spreadsheet, moved into Carbonio Files by the files phase.
		e.briefcase.AddDocument(user, "Briefcase", "report.txt", "text/plain",
			[]byte("Quarterly report\n"), []byte("Quarterly report\nfigures\n"), []byte("Quarterly report\nfigures\nsigned\n"))
		e.briefcase.AddDocument(user, "Briefcase", "logo.png", "image/png", []byte("\x89PNG\r\n\x1a\ndemo"))
		e.briefcase.AddDocument(user, "Briefcase", "budget.ods", "application/vnd.oasis.opendocument.spreadsheet", []byte("PK\x03\x04demo"))
		var extra []corpus.Message
		for i, m := range mb.Messages {
			if i >= 3 {
				break
			}
			c := m
			c.Folder = shared
			extra = append(extra, c)
			c2 := m
			c2.Folder = search
			extra = append(extra, c2)
		}
		mb.Folders = append(append([]corpus.Folder(nil), mb.Folders...),
			corpus.Folder{Name: shared, Subscribed: true}, corpus.Folder{Name: search, Subscribed: true})
		mb.Messages = append(append([]corpus.Message(nil), mb.Messages...), extra...)
	}
	if err := e.srcIMAP.Seed(user, mb); err != nil {
		return fa, fmt.Errorf("migratetest: seed %s: %w", user, err)
	}
	n := len(acct.Mail.Messages)
	if faults {
		n += 2
	}
	for _, m := range mb.Messages[:n] {
		e.Messages++
		e.Bytes += int64(len(m.Raw))
	}
	e.srcDAV.AddUser(user, "unused")
	e.dstDAV.AddUser(user, "unused")
	e.files.AddUser(user, "")
	for _, c := range acct.Calendars {
		p := e.srcDAV.AddCalendar(user, c.Name, c.DisplayName, c.Components...)
		for _, o := range c.Objects {
			if o.Broken {
				continue
			}
			if err := e.srcDAV.Put(user, p, o.Name, o.Data); err != nil {
				return fa, fmt.Errorf("migratetest: seed %s calendar %s: %w", user, c.Name, err)
			}
			e.Objects++
		}
	}
	for _, c := range acct.AddressBooks {
		p := e.srcDAV.AddAddressBook(user, c.Name, c.DisplayName)
		objs := c.Objects
		if faults && c.Name == corpus.BookDefault {
			// A card with nothing but its UID: nothing to copy, reported
			// as invalid at the source.
			uid := "fault-empty-card"
			objs = append(slices.Clip(objs), corpus.Object{UID: uid, Name: uid + ".vcf",
				Data: []byte("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + uid + "\r\nEND:VCARD\r\n")})
		}
		for _, o := range objs {
			if o.Broken {
				continue
			}
			if err := e.srcDAV.Put(user, p, o.Name, o.Data); err != nil {
				return fa, fmt.Errorf("migratetest: seed %s address book %s: %w", user, c.Name, err)
			}
			e.Objects++
		}
	}
	return fa, nil
}

// Runner returns a Runner for the environment's plan with its hooks.
func (e *Env) Runner() *migrate.Runner {
	return &migrate.Runner{Plan: e.Plan, Hooks: e.Hooks}
}

// SourceMessages returns how many messages the generated mailbox of a
// source account holds (without the virtual folders and the faults), for
// comparisons; 0 for an unknown account. The mailbox is generated again on
// each call.
func (e *Env) SourceMessages(user string) int {
	o, ok := e.gen[user]
	if !ok {
		return 0
	}
	o.Events, o.Contacts = -1, -1
	return len(corpus.Generate(user, o).Mail.Messages)
}

// Resets returns how many times the destination IMAP server reset a
// connection (Options.Faults).
func (e *Env) Resets() int { return int(e.resets.Load()) }

// faultMessages are the first account's faulty messages: one with a
// keyword the destination refuses, one over its APPENDLIMIT.
func faultMessages(user string) []corpus.Message {
	msg := func(id, subject string, body []byte, flags ...string) corpus.Message {
		var b bytes.Buffer
		fmt.Fprintf(&b, "From: Faults <faults@example.net>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@faults.example.net>\r\n"+
			"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", user, subject, id)
		b.Write(body)
		return corpus.Message{Folder: "INBOX", Raw: b.Bytes(), Flags: flags, InternalDate: time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC), Kind: "fault"}
	}
	line := bytes.Repeat([]byte("0123456789"), 7)
	line = append(line, '\r', '\n')
	big := bytes.Repeat(line, (FaultAppendLimit+1<<20)/len(line))
	return []corpus.Message{
		msg("refused-keyword", "This message carries a keyword the destination refuses", []byte("The keyword "+FaultKeyword+" is dropped; the copy is reported as changed.\r\n"), `\Seen`, FaultKeyword),
		msg("oversize", "This message is larger than the destination accepts", big, `\Seen`),
	}
}

// DestinationIMAP returns the address of the destination IMAP server (admin
// "admin", password as in the plan).
func (e *Env) DestinationIMAP() string { return e.dstIMAP.Addr() }

// DestinationObjects counts the calendar objects and vCards the destination
// holds for user.
func (e *Env) DestinationObjects(user string) int {
	n := 0
	for _, p := range e.dstDAV.Collections(user) {
		n += len(e.dstDAV.Snapshot(user, p))
	}
	return n
}

// DestinationFiles lists the files user holds in the destination's
// Carbonio Files, with their versions.
func (e *Env) DestinationFiles(user string) []carboniotest.File { return e.files.Tree(user) }

// Close stops every server and removes a temporary Dir.
func (e *Env) Close() {
	for _, s := range []*memimap.Server{e.srcIMAP, e.dstIMAP} {
		if s != nil {
			s.Close()
		}
	}
	for _, h := range append([]*httptest.Server{e.srcHTTP, e.dstHTTP}, e.filesHTTP...) {
		if h != nil {
			h.Close()
		}
	}
	for _, a := range []*carboniotest.Server{e.srcAdmin, e.dstAdmin} {
		if a != nil {
			a.Close()
		}
	}
	if e.bodies != nil {
		e.bodies.Close()
	}
	if e.tempDir {
		os.RemoveAll(e.Dir)
	}
}

// DestinationAdmin returns the destination's fake admin API and command
// line, which records the MTA's state (MTARunning) and the commands run.
func (e *Env) DestinationAdmin() *carboniotest.Server { return e.dstAdmin }
