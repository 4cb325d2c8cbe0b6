// Package carboniotest is a fake Carbonio admin API for tests: an
// httptest TLS server speaking the JSON SOAP dialect (authentication with
// expiring tokens, faults, a directory loaded from fixtures, folder trees
// with mountpoints and saved searches, asynchronous module operations that
// move Queued → Started and then into the operation log with type
// Finished, Exception or any other, injectable failures), plus a fake
// carbonio command (RunCLI, CLIRunner, and the fakecli program for real
// SSH tests).
//
// What it serves follows the public sources where they exist: the
// per-server answers with and without "nested" and a top-level "ok", the
// flat operation log with serverId, the operation fields of the admin
// console, ZxCore doStopOperation. It decodes module commands with
// carbonio.Commands, the same table the client encodes them with, so it
// accepts the client's guessed SOAP field names for doSmartScan,
// doExternalRestore, doDeduplicate and doExport: passing against it
// proves nothing about those names.
//
// Operations advance one step on every getAllOperations call, so tests
// that poll are deterministic and need no sleeping.
package carboniotest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio"
)

// Options configure New. Zero values mean the documented defaults.
type Options struct {
	// Admin and Password are the admin credentials; "" means
	// "admin@carbonio.local" and "admin-password".
	Admin    string
	Password string // see Admin
	// Fixture is the initial directory; nil means DefaultFixture().
	Fixture *Fixture
	// Backups maps a backup path to its content, for ExternalRestore,
	// getAvailableAccounts and getAvailableDomains. Export adds to it.
	Backups map[string]*Fixture
	// TokenLifetime is the lifetime of admin tokens; 0 means 12h.
	TokenLifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSearchResults is the server's overall cap of SearchDirectory
	// results when the request gives no maxResults (LC
	// zimbra_directory_max_search_result); 0 means 5000.
	MaxSearchResults int
	// OperationSteps is how many getAllOperations polls an operation
	// spends Started before it finishes; 0 means 2.
	OperationSteps int
	// Answers is how per-server module answers are wrapped.
	Answers AnswerStyle
}

// AnswerStyle is how the fake wraps a per-server module answer.
type AnswerStyle int

const (
	// NestedOK is {"response":{"<server>":{"ok":true,"response":…}},
	// "nested":true,"ok":true}: the admin console's own stub
	// (zextras/carbonio-admin-console-ui
	// apps/admin-ui-operations/src/views/operations/operations-detail-operation.tsx).
	NestedOK AnswerStyle = iota
	// Bare is {"response":{"<server>":{"ok":true,"response":…}}}: no
	// "nested" and no top-level "ok", which is all the console reads
	// (apps/admin-ui-operations/src/services/use-all-operations.ts).
	Bare
)

// Failure is an injected failure for one request name: a SOAP request
// ("GetAllVolumesRequest") or a module action ("doSmartScan").
type Failure struct {
	// Code and Reason make a SOAP fault (HTTP 500).
	Code, Reason string
	// HTTPStatus, when Code is empty, answers with this status and no SOAP body.
	HTTPStatus int
	// Raw, when set, is sent as the whole answer body with status 200 (or as
	// the CLI's output): an answer of unexpected shape.
	Raw string
	// ModuleError makes a module command answer ok=false with this message.
	ModuleError string
	// Times is how many requests fail; 0 means 1.
	Times int
}

// Started records a module command that started an operation.
type Started struct {
	ID     string            // the operation id
	Action string            // the module action, e.g. doSmartScan
	Args   map[string]string // the command's arguments by name
}

type account struct {
	name    string
	id      string
	attrs   map[string][]string
	system  bool
	folders []FixtureFolder
	// lastFolder is the highest folder id given out (the root is 1).
	lastFolder int
}

type token struct {
	expires time.Time
	account string
	admin   bool
}

type operation struct {
	ID, Module, Name, Action, State, Type string
	Args                                  map[string]string
	steps                                 int
	queued, started                       time.Time
}

// Server is the fake admin API. Its methods are safe for concurrent use.
type Server struct {
	// URL is https://127.0.0.1:PORT, to use as carbonio.Client.URL.
	URL string

	ts   *httptest.Server
	opts Options

	mu          sync.Mutex
	domains     []string
	accounts    map[string]*account
	aliases     map[string]string
	lists       map[string][]string
	servers     []FixtureServer
	volumes     []FixtureVolume
	backups     map[string]*Fixture
	tokens      map[string]*token
	ops         []*operation
	log         []*operation
	started     []Started
	injected    map[string][]Failure
	endTypes    map[string]string
	lostOps     map[string]bool
	messages    []string
	mtaRunning  bool
	authCount   int
	requests    []string
	cliCommands [][]string
	cliKey      string
	nextID      int
}

// New starts a fake server. Call Close when done.
func New(opts Options) *Server {
	if opts.Admin == "" {
		opts.Admin = "admin@carbonio.local"
	}
	if opts.Password == "" {
		opts.Password = "admin-password"
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxSearchResults <= 0 {
		opts.MaxSearchResults = 5000
	}
	if opts.OperationSteps <= 0 {
		opts.OperationSteps = 2
	}
	fx := opts.Fixture
	if fx == nil {
		fx = DefaultFixture()
	}
	s := &Server{
		opts: opts, accounts: map[string]*account{}, aliases: map[string]string{}, lists: map[string][]string{},
		backups: map[string]*Fixture{}, tokens: map[string]*token{}, injected: map[string][]Failure{},
		endTypes: map[string]string{}, lostOps: map[string]bool{}, mtaRunning: true, cliKey: randomHex(16),
	}
	for k, v := range opts.Backups {
		s.backups[k] = v
	}
	s.load(fx)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /service/admin/soap", s.serveSOAP)
	mux.HandleFunc("POST /service/admin/soap/", s.serveSOAP)
	mux.HandleFunc("POST /fakecli", s.serveCLI)
	s.ts = httptest.NewTLSServer(mux)
	s.URL = s.ts.URL
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// load adds fixture content; the caller holds s.mu or owns s.
func (s *Server) load(fx *Fixture) {
	for _, d := range fx.Domains {
		s.addDomain(d)
	}
	for _, a := range fx.Accounts {
		s.addAccount(a)
	}
	for _, a := range fx.Aliases {
		s.aliases[strings.ToLower(a.Name)] = strings.ToLower(a.Target)
	}
	for _, l := range fx.DistributionLists {
		s.lists[strings.ToLower(l.Name)] = slices.Clone(l.Members)
	}
	s.servers = append(s.servers, fx.Servers...)
	s.volumes = append(s.volumes, fx.Volumes...)
}

func (s *Server) addDomain(d string) {
	d = strings.ToLower(d)
	if !slices.Contains(s.domains, d) {
		s.domains = append(s.domains, d)
	}
}

func (s *Server) addAccount(a FixtureAccount) {
	name := strings.ToLower(a.Name)
	s.addDomain(domainOf(name))
	s.nextID++
	f := a.Folders
	if f == nil {
		f = DefaultFolders()
	}
	attrs := map[string][]string{}
	for k, v := range a.Attrs {
		attrs[k] = slices.Clone(v)
	}
	if a.System {
		attrs["zimbraIsSystemAccount"] = []string{"TRUE"}
	}
	acct := &account{name: name, id: fmt.Sprintf("00000000-0000-0000-0000-%012d", s.nextID),
		attrs: attrs, system: a.System, folders: cloneFolders(f), lastFolder: 1}
	acct.numberFolders(acct.folders)
	s.accounts[name] = acct
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// CertPEM returns the server's certificate in PEM, for a --ca-file.
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
}

// AddAccount adds an account (default folders when a.Folders is nil).
func (s *Server) AddAccount(a FixtureAccount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addAccount(a)
}

// AddFolder adds a top-level folder to account's tree.
func (s *Server) AddFolder(acct string, f FixtureFolder) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[strings.ToLower(acct)]
	if !ok {
		return fmt.Errorf("carboniotest: no account %s", acct)
	}
	nf := cloneFolders([]FixtureFolder{f})
	a.numberFolders(nf)
	a.folders = append(a.folders, nf...)
	return nil
}

// AddBackup makes content available as a backup at path.
func (s *Server) AddBackup(path string, content *Fixture) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backups[path] = content
}

// Snapshot returns the current directory as a fixture (without folders).
func (s *Server) Snapshot() *Fixture {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot(nil)
}

func (s *Server) snapshot(domains []string) *Fixture {
	in := func(addr string) bool { return len(domains) == 0 || slices.Contains(domains, domainOf(addr)) }
	f := &Fixture{}
	for _, d := range s.domains {
		if len(domains) == 0 || slices.Contains(domains, d) {
			f.Domains = append(f.Domains, d)
		}
	}
	for _, n := range sortedKeys(s.accounts) {
		a := s.accounts[n]
		if in(n) {
			f.Accounts = append(f.Accounts, FixtureAccount{Name: n, Attrs: a.attrs, System: a.system, Folders: a.folders})
		}
	}
	for _, n := range sortedKeys(s.aliases) {
		if in(n) {
			f.Aliases = append(f.Aliases, FixtureAlias{Name: n, Target: s.aliases[n]})
		}
	}
	for _, n := range sortedKeys(s.lists) {
		if in(n) {
			f.DistributionLists = append(f.DistributionLists, FixtureList{Name: n, Members: s.lists[n]})
		}
	}
	f.Servers = slices.Clone(s.servers)
	f.Volumes = slices.Clone(s.volumes)
	return f
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// ExpireTokens makes every token issued so far expired: the next request
// using one gets service.AUTH_EXPIRED.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.expires = time.Time{}
	}
}

// Inject makes the next f.Times requests named request fail as f says.
func (s *Server) Inject(request string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.injected[request] = append(s.injected[request], f)
}

// FailOperations makes every later operation started by action (e.g.
// "doExternalRestore") end in the operation log with type Exception, the
// console's failed result. The message is written to the server's log
// (Messages): an operation entry carries no error text.
func (s *Server) FailOperations(action, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endTypes[action] = carbonio.TypeException
	s.messages = append(s.messages, action+": "+message)
}

// SetAnswers changes how later per-server module answers are wrapped.
func (s *Server) SetAnswers(style AnswerStyle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Answers = style
}

// EndOperations makes every later operation started by action end in the
// operation log with this raw type, e.g. one the client does not know.
func (s *Server) EndOperations(action, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endTypes[action] = typ
}

// LoseOperations makes every later operation started by action leave the
// list of running operations without an entry in the operation log.
func (s *Server) LoseOperations(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lostOps[action] = true
}

// ResetOperations undoes FailOperations, EndOperations and LoseOperations
// for action: its later operations finish with type Finished.
func (s *Server) ResetOperations(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.endTypes, action)
	delete(s.lostOps, action)
}

// Messages returns the failure messages of FailOperations, as a server
// would write them to its own log.
func (s *Server) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// AuthCount returns how many successful AuthRequests were served.
func (s *Server) AuthCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authCount
}

// Requests returns the names of the requests served, in order (module
// commands as their action).
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// StartedOperations returns the operations started so far with their
// arguments (CLI names).
func (s *Server) StartedOperations() []Started {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.started)
}

// MTARunning reports the state of the fake MTA (running at start).
func (s *Server) MTARunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mtaRunning
}

// CLICommands returns the argv of every fake CLI command run.
func (s *Server) CLICommands() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cliCommands)
}

// ValidUserToken reports whether tok is an unexpired DelegateAuth token
// for acct (for fakes of DAV servers in embedders' tests).
func (s *Server) ValidUserToken(acct, tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	return ok && !t.admin && t.account == strings.ToLower(acct) && s.opts.Now().Before(t.expires)
}

// takeInjected pops an injected failure for name; the caller holds s.mu.
func (s *Server) takeInjected(name string) (Failure, bool) {
	fs := s.injected[name]
	if len(fs) == 0 {
		return Failure{}, false
	}
	f := fs[0]
	f.Times--
	if f.Times <= 0 {
		s.injected[name] = fs[1:]
	} else {
		fs[0] = f
	}
	return f, true
}

// soapFault is an error answer.
type soapFault struct{ code, reason string }

func faultf(code, format string, args ...any) *soapFault {
	return &soapFault{code: code, reason: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeFault(w http.ResponseWriter, f *soapFault) {
	writeJSON(w, http.StatusInternalServerError, map[string]any{
		"Header": map[string]any{"context": map[string]any{"_jsns": "urn:zimbra"}},
		"Body": map[string]any{"Fault": map[string]any{
			"Code":   map[string]any{"Value": "soap:Sender"},
			"Reason": map[string]any{"Text": f.reason},
			"Detail": map[string]any{"Error": map[string]any{"_jsns": "urn:zimbra", "Code": f.code, "Trace": "fake"}},
		}},
		"_jsns": "urn:zimbraSoap",
	})
}

// str decodes "x", {"_content":"x"}, numbers, booleans or a one-element
// array of those.
func str(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	case '{':
		var o map[string]json.RawMessage
		_ = json.Unmarshal(raw, &o)
		return str(o["_content"])
	case '[':
		var a []json.RawMessage
		_ = json.Unmarshal(raw, &a)
		if len(a) > 0 {
			return str(a[0])
		}
		return ""
	case 'n':
		return ""
	default:
		return string(raw)
	}
}

// field returns a field of an object (or of the first element of an array).
func field(raw json.RawMessage, name string) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var a []json.RawMessage
		_ = json.Unmarshal(raw, &a)
		if len(a) == 0 {
			return nil
		}
		raw = a[0]
	}
	var o map[string]json.RawMessage
	if json.Unmarshal(raw, &o) != nil {
		return nil
	}
	return o[name]
}

func (s *Server) serveSOAP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '<' {
		writeFault(w, faultf("service.INVALID_REQUEST", "the fake speaks JSON only"))
		return
	}
	var env struct {
		Header struct {
			Context json.RawMessage `json:"context"`
		} `json:"Header"`
		Body map[string]json.RawMessage `json:"Body"`
	}
	if err := json.Unmarshal(b, &env); err != nil || len(env.Body) != 1 {
		writeFault(w, faultf("service.PARSE_ERROR", "bad envelope"))
		return
	}
	var name string
	var body json.RawMessage
	for k, v := range env.Body {
		name, body = k, v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := name
	if name == "zextras" {
		key = str(field(body, "action"))
	}
	s.requests = append(s.requests, key)
	if f, ok := s.takeInjected(key); ok {
		switch {
		case f.Raw != "":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, f.Raw)
			return
		case f.Code != "":
			writeFault(w, faultf(f.Code, "%s", f.Reason))
			return
		case f.HTTPStatus != 0:
			http.Error(w, http.StatusText(f.HTTPStatus), f.HTTPStatus)
			return
		case f.ModuleError != "":
			s.writeModule(w, map[string]any{"ok": false, "error": map[string]any{"message": f.ModuleError}})
			return
		}
	}
	if name != "AuthRequest" {
		tok := str(field(env.Header.Context, "authToken"))
		t, ok := s.tokens[tok]
		switch {
		case tok == "" || !ok || !t.admin:
			writeFault(w, faultf(carbonio.CodeAuthRequired, "no valid authtoken present"))
			return
		case !s.opts.Now().Before(t.expires):
			writeFault(w, faultf(carbonio.CodeAuthExpired, "auth credentials have expired"))
			return
		}
	}
	if name == "zextras" {
		s.writeModule(w, s.zextras(body))
		return
	}
	resp, f := s.dispatch(name, body, env.Header.Context)
	if f != nil {
		writeFault(w, f)
		return
	}
	resp["_jsns"] = "urn:zimbraAdmin"
	writeJSON(w, http.StatusOK, map[string]any{
		"Header": map[string]any{"context": map[string]any{"_jsns": "urn:zimbra"}},
		"Body":   map[string]any{strings.TrimSuffix(name, "Request") + "Response": resp},
		"_jsns":  "urn:zimbraSoap",
	})
}

func (s *Server) writeModule(w http.ResponseWriter, content map[string]any) {
	c, _ := json.Marshal(content)
	writeJSON(w, http.StatusOK, map[string]any{
		"Header": map[string]any{"context": map[string]any{"_jsns": "urn:zimbra"}},
		"Body":   map[string]any{"response": map[string]any{"content": string(c), "_jsns": "urn:zimbraAdmin"}},
		"_jsns":  "urn:zimbraSoap",
	})
}

func attrList(m map[string][]string, want []string) []any {
	var out []any
	for _, k := range sortedKeys(m) {
		if len(want) > 0 && !slices.Contains(want, k) {
			continue
		}
		for _, v := range m[k] {
			out = append(out, map[string]any{"n": k, "_content": v})
		}
	}
	return out
}

func (s *Server) issue(acct string, admin bool, life time.Duration) (string, int64) {
	tok := "0_" + randomHex(20)
	s.tokens[tok] = &token{expires: s.opts.Now().Add(life), account: acct, admin: admin}
	return tok, life.Milliseconds()
}

func (s *Server) dispatch(name string, body, ctx json.RawMessage) (map[string]any, *soapFault) {
	switch name {
	case "AuthRequest":
		n := str(field(body, "name"))
		if n == "" {
			n = str(field(body, "account"))
		}
		if !strings.EqualFold(n, s.opts.Admin) || str(field(body, "password")) != s.opts.Password {
			return nil, faultf(carbonio.CodeAuthFailed, "authentication failed for [%s]", n)
		}
		s.authCount++
		tok, life := s.issue(strings.ToLower(n), true, s.opts.TokenLifetime)
		return map[string]any{"authToken": []any{map[string]any{"_content": tok}}, "lifetime": life}, nil
	case "DelegateAuthRequest":
		acct := strings.ToLower(str(field(body, "account")))
		if _, ok := s.accounts[acct]; !ok {
			return nil, faultf(carbonio.CodeNoSuchAccount, "no such account: %s", acct)
		}
		d := time.Hour
		if n, err := strconv.ParseInt(str(field(body, "duration")), 10, 64); err == nil && n > 0 {
			d = time.Duration(n) * time.Second
		}
		tok, life := s.issue(acct, false, d)
		return map[string]any{"authToken": []any{map[string]any{"_content": tok}}, "lifetime": life}, nil
	case "GetAllDomainsRequest":
		var ds []any
		for _, d := range s.domains {
			ds = append(ds, map[string]any{"name": d, "id": "dom-" + d})
		}
		return map[string]any{"domain": ds}, nil
	case "GetDomainRequest":
		d := strings.ToLower(str(field(body, "domain")))
		if !slices.Contains(s.domains, d) {
			return nil, faultf(carbonio.CodeNoSuchDomain, "no such domain: %s", d)
		}
		return map[string]any{"domain": []any{map[string]any{"name": d, "id": "dom-" + d}}}, nil
	case "GetAccountRequest", "GetAllAccountsRequest":
		if name == "GetAllAccountsRequest" {
			d := strings.ToLower(str(field(body, "domain")))
			var out []any
			for _, n := range sortedKeys(s.accounts) {
				if d == "" || domainOf(n) == d {
					a := s.accounts[n]
					out = append(out, map[string]any{"name": a.name, "id": a.id, "a": attrList(a.attrs, nil)})
				}
			}
			return map[string]any{"account": out}, nil
		}
		n := strings.ToLower(str(field(body, "account")))
		a, ok := s.accounts[n]
		if !ok {
			return nil, faultf(carbonio.CodeNoSuchAccount, "no such account: %s", n)
		}
		return map[string]any{"account": []any{map[string]any{"name": a.name, "id": a.id, "a": attrList(a.attrs, nil)}}}, nil
	case "SearchDirectoryRequest":
		return s.searchDirectory(body)
	case "GetAllServersRequest":
		svc := str(field(body, "service"))
		var out []any
		for _, sv := range s.servers {
			if svc == "" || slices.Contains(sv.Services, svc) {
				var a []any
				a = append(a, map[string]any{"n": "zimbraServiceHostname", "_content": sv.Name})
				for _, x := range sv.Services {
					a = append(a, map[string]any{"n": "zimbraServiceEnabled", "_content": x})
				}
				out = append(out, map[string]any{"name": sv.Name, "id": "srv-" + sv.Name, "a": a})
			}
		}
		return map[string]any{"server": out}, nil
	case "GetAllVolumesRequest":
		var out []any
		for i, v := range s.volumes {
			out = append(out, map[string]any{"id": i + 1, "name": v.Name, "type": v.Type, "rootpath": v.RootPath, "isCurrent": v.Current})
		}
		return map[string]any{"volume": out}, nil
	case "GetFolderRequest":
		n := strings.ToLower(str(field(ctx, "account")))
		a, ok := s.accounts[n]
		if !ok {
			return nil, faultf(carbonio.CodeNoSuchAccount, "no such account: %s", n)
		}
		return map[string]any{"folder": []any{folderTree(FixtureFolder{ID: carbonio.RootFolderID, Name: "USER_ROOT", Folders: a.folders}, a.id)}}, nil
	case "FolderActionRequest", "CreateMountpointRequest", "CreateSearchFolderRequest", "GetDistributionListRequest":
		return s.dispatchShares(name, body, ctx)
	}
	return nil, faultf("service.UNKNOWN_DOCUMENT", "unknown document: %s", name)
}

// folderTree encodes f as GetFolderResponse does for an admin acting as
// the mailbox's owner: ids qualified with the account id acct
// (ItemIdFormatter in zextras/carbonio-mailbox).
func folderTree(f FixtureFolder, acct string) map[string]any {
	m := map[string]any{"id": acct + ":" + f.ID, "name": f.Name}
	if f.View != "" {
		m["view"] = f.View
	}
	if f.Kind == "" || f.Kind == "folder" {
		m["n"], m["s"], m["i4ms"], m["i4next"] = f.Count, f.Size, f.ModSeq, f.UIDNext
	}
	if f.Color > 0 {
		m["color"] = f.Color
	}
	for k, v := range map[string]string{"owner": f.Owner, "zid": f.OwnerID, "rid": f.RemoteID, "query": f.Query, "types": f.Types, "sortBy": f.SortBy} {
		if v != "" {
			m[k] = v
		}
	}
	if len(f.Grants) > 0 {
		var gs []any
		for i, g := range f.Grants {
			zid := g.ZID
			if zid == "" {
				zid = fmt.Sprintf("grantee-%s-%d", f.ID, i)
			}
			e := map[string]any{"gt": g.Type, "perm": g.Perm, "zid": zid}
			if g.Grantee != "" {
				e["d"] = g.Grantee
			}
			gs = append(gs, e)
		}
		m["acl"] = map[string]any{"grant": gs}
	}
	kids := map[string][]any{}
	for _, ch := range f.Folders {
		k := ch.Kind
		if k == "" {
			k = "folder"
		}
		kids[k] = append(kids[k], folderTree(ch, acct))
	}
	for k, v := range kids {
		m[k] = v
	}
	return m
}

func (s *Server) searchDirectory(body json.RawMessage) (map[string]any, *soapFault) {
	types := strings.Split(str(field(body, "types")), ",")
	dom := strings.ToLower(str(field(body, "domain")))
	limit, _ := strconv.Atoi(str(field(body, "limit")))
	maxResults := s.opts.MaxSearchResults
	if v := str(field(body, "maxResults")); v != "" {
		maxResults, _ = strconv.Atoi(v)
	}
	offset, _ := strconv.Atoi(str(field(body, "offset")))
	var want []string
	if a := str(field(body, "attrs")); a != "" {
		want = strings.Split(a, ",")
	}
	type hit struct {
		kind, name string
		v          map[string]any
	}
	var hits []hit
	in := func(n string) bool { return dom == "" || domainOf(n) == dom }
	for _, t := range types {
		switch strings.TrimSpace(t) {
		case "accounts":
			for _, n := range sortedKeys(s.accounts) {
				if in(n) {
					a := s.accounts[n]
					hits = append(hits, hit{"account", n, map[string]any{"name": n, "id": a.id, "a": attrList(a.attrs, want)}})
				}
			}
		case "aliases":
			for _, n := range sortedKeys(s.aliases) {
				if in(n) {
					hits = append(hits, hit{"alias", n, map[string]any{"name": n, "id": "alias-" + n, "targetName": s.aliases[n]}})
				}
			}
		case "distributionlists":
			for _, n := range sortedKeys(s.lists) {
				if in(n) {
					hits = append(hits, hit{"dl", n, map[string]any{"name": n, "id": "dl-" + n}})
				}
			}
		case "", "dynamicgroups":
		default:
			return nil, faultf("service.INVALID_REQUEST", "unknown type %q", t)
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].name < hits[j].name })
	total := len(hits)
	if maxResults > 0 && total > maxResults {
		return nil, faultf(carbonio.CodeTooManyResults, "number of results exceeded the limit: %d", maxResults)
	}
	if offset > len(hits) {
		offset = len(hits)
	}
	hits = hits[offset:]
	more := false
	if limit > 0 && len(hits) > limit {
		hits, more = hits[:limit], true
	}
	out := map[string]any{"more": more, "searchTotal": total}
	for _, h := range hits {
		l, _ := out[h.kind].([]any)
		out[h.kind] = append(l, h.v)
	}
	return out, nil
}

// IssuedTokens returns every token issued so far (admin and user), for
// tests that check tokens never leak into logs or errors.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.tokens)
}
