package carbonio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zxmigrate/zxmigrate/retry"
)

// ModuleTransport runs one module command and returns its JSON result: the
// object that the zextras SOAP request carries in Body.response.content and
// that `carbonio --json` prints. Implementations: the client's own SOAP
// transport and *CLI.
type ModuleTransport interface {
	Module(ctx context.Context, cmd Command) (json.RawMessage, error) // runs cmd and returns the module's answer object
}

// ModuleError is a module command that answered ok=false.
type ModuleError struct {
	Request string // e.g. "ZxBackup doSmartScan"
	Server  string // "" when the answer was not per server
	Message string // the module's error text
}

// Error implements error.
func (e *ModuleError) Error() string {
	if e.Server != "" {
		return fmt.Sprintf("carbonio: %s on %s: %s", e.Request, e.Server, e.Message)
	}
	return fmt.Sprintf("carbonio: %s: %s", e.Request, e.Message)
}

// ErrNoTransport is returned for a command that no configured transport
// may run: one whose SOAP form is unverified (or absent) on a client
// without a command line and without UnverifiedSOAP.
var ErrNoTransport = errors.New("no way to run this command is configured")

// soapModule is the zextras SOAP request. The console posts it to
// /service/admin/soap/zextras and reads JSON.parse(Body.response.content)
// (zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/services/get-all-operations.ts,
// use-all-operations.ts).
type soapModule struct{ c *Client }

func (t soapModule) Module(ctx context.Context, cmd Command) (json.RawMessage, error) {
	fields, err := cmd.SOAPFields()
	if err != nil {
		return nil, err
	}
	s, _ := LookupCommand(cmd.Module, cmd.Action)
	idem := strings.HasPrefix(s.Action, "get")
	var ans struct {
		Content text `json:"content"`
	}
	if err := t.c.call(ctx, "zextras", fields, callOpts{path: "/zextras", idempotent: idem}, &ans); err != nil {
		var f *Fault
		if errors.As(err, &f) {
			f.Request = cmd.Request()
		}
		return nil, err
	}
	if ans.Content == "" {
		return nil, shapeErr(cmd.Request(), "no response.content")
	}
	return json.RawMessage(ans.Content), nil
}

// transportFor picks how cmd runs:
//   - SOAP-verified commands (listing and stopping operations, volumes) go
//     over SOAP when the client has a URL, else over the command line;
//   - command-line-only commands need Transport;
//   - the others (doSmartScan, doExternalRestore, doDeduplicate, doExport,
//     getAvailable*) run on the command line (Transport), and over SOAP
//     with guessed field names only when UnverifiedSOAP is set.
func (c *Client) transportFor(cmd Command) (ModuleTransport, error) {
	spec, ok := LookupCommand(cmd.Module, cmd.Action)
	if !ok {
		return nil, fmt.Errorf("carbonio: %s: not in the command table", cmd.Request())
	}
	switch spec.SOAP {
	case SOAPVerified:
		if c.URL == "" && c.Transport != nil && spec.CLIModule != "" {
			return c.Transport, nil
		}
		return soapModule{c}, nil
	case SOAPNone:
		if c.Transport != nil {
			return c.Transport, nil
		}
		return nil, fmt.Errorf("carbonio: %s: %w: it exists only on the command line; configure one (local or ssh)", cmd.Request(), ErrNoTransport)
	}
	if c.Transport != nil {
		return c.Transport, nil
	}
	if c.UnverifiedSOAP {
		c.log().Warn("carbonio: sending a module command over SOAP with unverified field names", "request", cmd.Request())
		return soapModule{c}, nil
	}
	return nil, fmt.Errorf("carbonio: %s: %w: no public source shows its SOAP fields, so it runs on the carbonio command line; "+
		"configure one (local, or ssh to the Mailbox & Provisioning node), or ask explicitly for the unverified SOAP request",
		cmd.Request(), ErrNoTransport)
}

// Unverified reports whether cmd would be sent as a SOAP request whose
// field names no public source shows (see UnverifiedSOAP).
func (c *Client) Unverified(cmd Command) bool {
	t, err := c.transportFor(cmd)
	if err != nil {
		return false
	}
	spec, _ := LookupCommand(cmd.Module, cmd.Action)
	_, soap := t.(soapModule)
	return soap && spec.SOAP == SOAPGuess
}

// CanRun reports whether the client has a transport for module/action,
// and if not, an error that says what to configure.
func (c *Client) CanRun(module, action string) error {
	_, err := c.transportFor(Command{Module: module, Action: action})
	return err
}

// moduleResult is one server's part of a module answer.
type moduleResult struct {
	Server   string
	Response json.RawMessage
}

type moduleJSON struct {
	OK       *bool           `json:"ok"`
	Response json.RawMessage `json:"response"`
	Error    json.RawMessage `json:"error"`
	Message  text            `json:"message"`
}

func (m moduleJSON) errMessage() string {
	msg := string(m.Message)
	if len(m.Error) > 0 {
		var e struct {
			Message text `json:"message"`
		}
		var t text
		if json.Unmarshal(m.Error, &e) == nil && e.Message != "" {
			msg = string(e.Message)
		} else if json.Unmarshal(m.Error, &t) == nil && t != "" {
			msg = string(t)
		}
	}
	if msg == "" {
		msg = "failed without a message"
	}
	return msg
}

// perServer returns raw as a map of per-server answers when that is its
// shape: a non-empty object whose every value is an object with a boolean
// "ok" ({"<server>":{"ok":…,"response":…,"error":…}}). The console reads
// exactly this, response[<server>].ok/.response, and never looks at a
// "nested" flag (zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/services/use-all-operations.ts,
// src/types/operations.ts OperationsContent).
func perServer(raw json.RawMessage) (map[string]moduleJSON, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return nil, false
	}
	out := make(map[string]moduleJSON, len(m))
	for k, v := range m {
		var probe map[string]json.RawMessage
		if json.Unmarshal(v, &probe) != nil {
			return nil, false
		}
		okRaw, has := probe["ok"]
		if !has {
			return nil, false
		}
		var b bool
		if json.Unmarshal(okRaw, &b) != nil {
			return nil, false
		}
		var r moduleJSON
		if json.Unmarshal(v, &r) != nil {
			return nil, false
		}
		out[k] = r
	}
	return out, true
}

// parseModule reads a module answer by its shape and returns the
// per-server responses, or one with Server "" for the flat form:
//   - per server, with or without "nested" and a top-level "ok":
//     {"response":{"<server>":{"ok":…,"response":…}},"nested":true,"ok":true}
//     (the console's own stub: zextras/carbonio-admin-console-ui
//     apps/admin-ui-operations/src/views/operations/operations-detail-operation.tsx);
//   - flat, {"ok":true,"response":{…}}: the operation log without
//     targetServers (src/types/operations.ts DoneOperationsContent), and
//     the wrapper carbonio-configd expects (zextras/carbonio-configd
//     internal/zxadmin/client.go);
//   - flat without "ok", {"response":{…}}: what Zextras' scripts read from
//     `carbonio --json` (zextras/sps-habeat appserver.py).
//
// "ok": false at any level is a *ModuleError; a server that failed does not
// hide the others. Any other shape is an error wrapping ErrUnexpectedAnswer
// that names the request.
func parseModule(request string, content []byte) ([]moduleResult, error) {
	content = bytes.TrimSpace(content)
	var top map[string]json.RawMessage
	if err := json.Unmarshal(content, &top); err != nil {
		return nil, shapeErr(request, "module answer is not a JSON object: %v", err)
	}
	var m moduleJSON
	if err := json.Unmarshal(content, &m); err != nil {
		return nil, shapeErr(request, "module answer: %v", err)
	}
	if m.OK != nil && !*m.OK {
		return nil, &ModuleError{Request: request, Message: m.errMessage()}
	}
	resp, hasResp := top["response"]
	if !hasResp || bytes.Equal(bytes.TrimSpace(resp), []byte("null")) {
		if m.OK != nil {
			// {"ok":true}: an action that answers nothing more.
			return []moduleResult{{}}, nil
		}
		return nil, shapeErr(request, "module answer has neither \"ok\" nor \"response\"")
	}
	if per, ok := perServer(resp); ok {
		names := make([]string, 0, len(per))
		for n := range per {
			names = append(names, n)
		}
		sort.Strings(names)
		var out []moduleResult
		var errs []error
		for _, n := range names {
			r := per[n]
			if !*r.OK {
				errs = append(errs, &ModuleError{Request: request, Server: n, Message: r.errMessage()})
				continue
			}
			out = append(out, moduleResult{Server: n, Response: r.Response})
		}
		return out, errors.Join(errs...)
	}
	var nested text
	if raw, ok := top["nested"]; ok && json.Unmarshal(raw, &nested) == nil && nested.bool() {
		return nil, shapeErr(request, "answer says nested but its response is not an object of servers with \"ok\"")
	}
	if t := bytes.TrimSpace(resp); len(t) == 0 || t[0] != '{' {
		return nil, shapeErr(request, "response is not an object")
	}
	return []moduleResult{{Response: resp}}, nil
}

// module runs cmd on its transport and parses the answer.
func (c *Client) module(ctx context.Context, cmd Command) ([]moduleResult, error) {
	t, err := c.transportFor(cmd)
	if err != nil {
		return nil, err
	}
	raw, err := t.Module(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return parseModule(cmd.Request(), raw)
}

// Raw operation states and types. Queued, Started, Finished and Exception
// are the admin console's constants (zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/constants.ts); Stopping and Dismissed are
// taken as states too (inferred: not in the console files read). The CLI's --sync exit codes
// (0 Successful, 1 Failed, 2 Stopped, 3 Removed, 4 Interrupted; zextras/tech-doc
// source/carbonio/admincli/shell.rst) are exit codes, not strings an answer
// carries, and this client does not use --sync.
const (
	StateQueued    = "Queued"
	StateStarted   = "Started"
	StateStopping  = "Stopping"
	StateDismissed = "Dismissed"

	TypeFinished  = "Finished"
	TypeException = "Exception"
	TypeStarted   = "Started"
)

// Outcome is what an operation's raw state and type mean for a caller.
type Outcome string

// Outcomes. Only OutcomeSucceeded is a success; OutcomeUnknown (a value
// this client does not know) is never one.
const (
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
	OutcomeRunning   Outcome = "running"
	OutcomeUnknown   Outcome = "unknown"
)

// OutcomeOf computes the outcome from an operation's raw state and type.
// The result of a finished operation is in "type": the console's table of
// done operations draws it from type Finished, Exception or Started
// (zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/views/operations/operations-table.tsx).
//   - type Exception: failed.
//   - type Finished: succeeded. This is inferred from the name: the same
//     table draws Finished with a red "close" icon and Started with a green
//     check, which no public source explains.
//   - state Queued, Started or Stopping (with any other type): running.
//   - state Dismissed: failed (the operation will not run).
//   - anything else: unknown.
func OutcomeOf(state, typ string) Outcome {
	switch typ {
	case TypeException:
		return OutcomeFailed
	case TypeFinished:
		return OutcomeSucceeded
	}
	switch state {
	case StateQueued, StateStarted, StateStopping:
		return OutcomeRunning
	case StateDismissed:
		return OutcomeFailed
	}
	return OutcomeUnknown
}

// Operation is an asynchronous module operation (SmartScan, restore,
// deduplication...). Its fields are those of the console's Operation type
// (zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/types/operations.ts), which has no
// progress, end time or error message.
type Operation struct {
	ID     string // the operation id the module gave
	Module string // e.g. "ZxBackup"
	Name   string // e.g. "SmartScan", or the action that started it
	// State and Type are the raw values the server sent.
	State string
	Type  string // see State
	// Outcome is computed from State and Type (OutcomeOf); an entry of the
	// operation log is never running: it is then unknown.
	Outcome  Outcome
	Host     string // the server that runs it
	ServerID string // that server's directory id
	// QueuedTime and StartTime are zero when not reported.
	QueuedTime time.Time
	StartTime  time.Time // see QueuedTime
}

// Done reports whether the operation is no longer running.
func (o Operation) Done() bool { return o.Outcome != OutcomeRunning }

// Errors of Wait, matched with errors.Is.
var (
	// ErrOperationFailed matches an *OperationError whose outcome is failed.
	ErrOperationFailed = errors.New("operation failed")
	// ErrOutcomeUnknown matches an *OperationError whose outcome is unknown.
	ErrOutcomeUnknown = errors.New("unknown outcome")
	// ErrOperationLost is an operation that left the list of running
	// operations without appearing in the operation log.
	ErrOperationLost = errors.New("operation vanished without an outcome")
)

// label names an operation for messages: "ZxBackup SmartScan ID", or the
// ID alone when module and name are not known.
func (o Operation) label() string {
	return strings.TrimSpace(strings.Join([]string{o.Module, o.Name, o.ID}, " "))
}

// OperationError is an operation that ended without succeeding: its
// outcome is failed or unknown.
type OperationError struct {
	Operation Operation // the operation as last seen
}

// Error implements error.
func (e *OperationError) Error() string {
	o := e.Operation
	raw := fmt.Sprintf("state %q, type %q", o.State, o.Type)
	if o.Outcome == OutcomeFailed {
		return fmt.Sprintf("carbonio: operation %s: outcome failed (%s)", o.label(), raw)
	}
	x := o.Type
	if x == "" {
		x = o.State
	}
	return fmt.Sprintf("carbonio: operation %s: unknown outcome %q (%s)", o.label(), x, raw)
}

// Is matches ErrOperationFailed or ErrOutcomeUnknown.
func (e *OperationError) Is(target error) bool {
	if e.Operation.Outcome == OutcomeFailed {
		return target == ErrOperationFailed
	}
	return target == ErrOutcomeUnknown
}

type opJSON struct {
	ID         text `json:"id"`
	Module     text `json:"module"`
	Name       text `json:"name"`
	State      text `json:"state"`
	Type       text `json:"type"`
	Host       text `json:"host"`
	ServerName text `json:"serverName"`
	ServerID   text `json:"serverId"`
	QueuedTime text `json:"queuedTime"`
	StartTime  text `json:"startTime"`
}

func msTime(t text) time.Time {
	if n := t.int64(); n > 0 {
		return time.UnixMilli(n)
	}
	return time.Time{}
}

func (o opJSON) op(server string, done bool) Operation {
	op := Operation{ID: string(o.ID), Module: string(o.Module), Name: string(o.Name), State: string(o.State),
		Type: string(o.Type), Host: string(o.Host), ServerID: string(o.ServerID),
		QueuedTime: msTime(o.QueuedTime), StartTime: msTime(o.StartTime)}
	op.Outcome = OutcomeOf(op.State, op.Type)
	if done && op.Outcome == OutcomeRunning {
		op.Outcome = OutcomeUnknown
	}
	for _, h := range []string{string(o.ServerName), server, op.ServerID} {
		if op.Host == "" {
			op.Host = h
		}
	}
	return op
}

// operationList runs a listing command and decodes every server's
// response.operationList. A response without operationList is an error
// naming the request, never an empty list.
func (c *Client) operationList(ctx context.Context, cmd Command, done bool) ([]Operation, error) {
	res, err := c.module(ctx, cmd)
	if err != nil && len(res) == 0 {
		return nil, err
	}
	var out []Operation
	for _, r := range res {
		var ans map[string]json.RawMessage
		if uerr := json.Unmarshal(r.Response, &ans); uerr != nil {
			return nil, shapeErr(cmd.Request(), "server %q: response is not an object: %v", r.Server, uerr)
		}
		raw, ok := ans["operationList"]
		if !ok {
			return nil, shapeErr(cmd.Request(), "server %q: no response.operationList", r.Server)
		}
		var list list[opJSON]
		if uerr := json.Unmarshal(raw, &list); uerr != nil {
			return nil, shapeErr(cmd.Request(), "server %q: operationList: %v", r.Server, uerr)
		}
		for _, o := range list {
			if o.ID == "" {
				return nil, shapeErr(cmd.Request(), "server %q: operation without an id", r.Server)
			}
			out = append(out, o.op(r.Server, done))
		}
	}
	return out, err
}

// Operations lists the running and queued operations of all servers
// (ZxCore getAllOperations with targetServers all_servers, as the console
// sends it: zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/services/get-all-operations.ts).
func (c *Client) Operations(ctx context.Context) ([]Operation, error) {
	return c.operationList(ctx, Command{Module: "ZxCore", Action: "getAllOperations", Args: []Arg{{"targetServers", "all_servers"}}}, false)
}

// OperationLog lists the finished operations (ZxCore getOperationLog
// without targetServers, as the console sends it; entries carry serverId:
// zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/services/get-all-done-operation.ts,
// use-done-operations.ts).
func (c *Client) OperationLog(ctx context.Context) ([]Operation, error) {
	return c.operationList(ctx, Command{Module: "ZxCore", Action: "getOperationLog"}, true)
}

// StopOperation stops the operation id. Over SOAP it sends what the
// console sends: module ZxCore, action doStopOperation, operationId,
// targetServers all_servers (zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/services/stop-operation.ts). Without an
// admin URL it runs `carbonio backup|powerstore doStopOperation <uuid>`
// (zextras/tech-doc source/carbonio/cli_commands/backup/doStopOperation.rst),
// powerstore when the operation list names ZxPowerstore.
func (c *Client) StopOperation(ctx context.Context, id string) error {
	if c.URL != "" || c.Transport == nil {
		_, err := c.module(ctx, Command{Module: "ZxCore", Action: "doStopOperation",
			Args: []Arg{{"operationId", id}, {"targetServers", "all_servers"}}})
		return err
	}
	mod := "ZxBackup"
	if ops, err := c.Operations(ctx); err == nil {
		for _, o := range ops {
			if o.ID == id && strings.EqualFold(o.Module, "ZxPowerstore") {
				mod = "ZxPowerstore"
			}
		}
	}
	_, err := c.module(ctx, Command{Module: mod, Action: "doStopOperation", Args: []Arg{{"operation_uuid", id}}})
	return err
}

// start runs an asynchronous command and returns its queued operation.
func (c *Client) start(ctx context.Context, cmd Command, name string) (Operation, error) {
	res, err := c.module(ctx, cmd)
	if err != nil {
		return Operation{}, err
	}
	if len(res) == 0 {
		return Operation{}, shapeErr(cmd.Request(), "empty answer")
	}
	var ans struct {
		OperationID text `json:"operationId"`
	}
	if err := json.Unmarshal(res[0].Response, &ans); err != nil || ans.OperationID == "" {
		return Operation{}, shapeErr(cmd.Request(), "no response.operationId")
	}
	op := Operation{ID: string(ans.OperationID), Module: cmd.Module, Name: name, State: StateQueued, Outcome: OutcomeRunning, Host: res[0].Server}
	c.log().Info("carbonio: operation queued", "request", cmd.Request(), "id", op.ID)
	return op, nil
}

// SmartScanOptions are the parameters of SmartScan; zero values are the
// server's defaults.
type SmartScanOptions struct {
	Deep               bool     // deep scan: read every blob
	Notifications      []string // addresses notified when the scan ends
	ReadErrorThreshold int      // read errors tolerated before the scan fails; 0: server default
	// RemoteMetadataUpload and CreateFakeBlob are documented options of
	// `carbonio backup doSmartScan` (zextras/tech-doc
	// source/carbonio/cli_commands/backup/doSmartScan.rst), default false.
	RemoteMetadataUpload bool
	CreateFakeBlob       bool // see RemoteMetadataUpload
}

// SmartScan starts `backup doSmartScan start`.
func (c *Client) SmartScan(ctx context.Context, o SmartScanOptions) (Operation, error) {
	args := []Arg{{"action", "start"}}
	if o.Deep {
		args = append(args, Arg{"deep", "true"})
	}
	if len(o.Notifications) > 0 {
		args = append(args, Arg{"notifications", strings.Join(o.Notifications, ",")})
	}
	if o.ReadErrorThreshold > 0 {
		args = append(args, Arg{"read_error_threshold", strconv.Itoa(o.ReadErrorThreshold)})
	}
	if o.RemoteMetadataUpload {
		args = append(args, Arg{"remote_metadata_upload", "true"})
	}
	if o.CreateFakeBlob {
		args = append(args, Arg{"create_fake_blob", "true"})
	}
	return c.start(ctx, Command{Module: "ZxBackup", Action: "doSmartScan", Args: args}, "SmartScan")
}

// RestoreOptions are the parameters of ExternalRestore, as documented for
// `carbonio backup doExternalRestore` (zextras/tech-doc
// source/carbonio/cli_commands/backup/doExternalRestore.rst). Nil pointers
// and zero values leave the server's default (given in the comment).
type RestoreOptions struct {
	Domains                 []string // default all
	Accounts                []string // default all
	InputFile               string   // file on the server, one account per line
	ProvisioningOnly        bool     // default false
	ConcurrentAccounts      int      // 0: server default
	SkipAliases             bool     // default false
	SkipDistributionLists   bool     // default false
	SkipCOSes               bool     // default false
	SkipSystemAccounts      *bool    // default true
	SkipDomainProvisioning  bool     // default false
	SkipAccountProvisioning bool     // default false
	FilterDeleted           *bool    // default true
	Notifications           []string // addresses notified when the restore ends
	MaxFileSize             int      // 0: no limit
	RestoreDatasource       *bool    // default true
	ForceAsExternalRestore  bool     // default false
	BlobsArchive            string   // path of a blobs archive on the server; "": none
}

// Args returns the command arguments for o (without source_path).
func (o RestoreOptions) Args() []Arg {
	var a []Arg
	add := func(name, v string) { a = append(a, Arg{name, v}) }
	list := func(name string, v []string) {
		if len(v) > 0 {
			add(name, strings.Join(v, ","))
		}
	}
	flag := func(name string, v bool) {
		if v {
			add(name, "true")
		}
	}
	opt := func(name string, v *bool) {
		if v != nil {
			add(name, strconv.FormatBool(*v))
		}
	}
	list("domains", o.Domains)
	list("accounts", o.Accounts)
	if o.InputFile != "" {
		add("input_file", o.InputFile)
	}
	flag("provisioning_only", o.ProvisioningOnly)
	if o.ConcurrentAccounts > 0 {
		add("concurrent_accounts", strconv.Itoa(o.ConcurrentAccounts))
	}
	flag("skip_aliases", o.SkipAliases)
	flag("skip_distribution_lists", o.SkipDistributionLists)
	flag("skip_coses", o.SkipCOSes)
	opt("skip_system_accounts", o.SkipSystemAccounts)
	flag("skip_domain_provisioning", o.SkipDomainProvisioning)
	flag("skip_account_provisioning", o.SkipAccountProvisioning)
	opt("filter_deleted", o.FilterDeleted)
	list("notifications", o.Notifications)
	if o.MaxFileSize > 0 {
		add("max_file_size", strconv.Itoa(o.MaxFileSize))
	}
	opt("restore_datasource", o.RestoreDatasource)
	flag("force_as_external_restore", o.ForceAsExternalRestore)
	if o.BlobsArchive != "" {
		add("blobs_archive", o.BlobsArchive)
	}
	return a
}

// ExternalRestore starts `backup doExternalRestore PATH …` from the
// backup (a Zextras Suite export) at path on the server.
func (c *Client) ExternalRestore(ctx context.Context, path string, o RestoreOptions) (Operation, error) {
	if path == "" {
		return Operation{}, errors.New("carbonio: ExternalRestore: empty backup path")
	}
	args := append([]Arg{{"source_path", path}}, o.Args()...)
	return c.start(ctx, Command{Module: "ZxBackup", Action: "doExternalRestore", Args: args}, "ExternalRestore")
}

// Deduplicate starts `powerstore doDeduplicate VOLUME [dry_run true]`. An
// empty volume means the current primary volume.
func (c *Client) Deduplicate(ctx context.Context, volume string, dryRun bool) (Operation, error) {
	if volume == "" {
		v, err := c.CurrentPrimaryVolume(ctx)
		if err != nil {
			return Operation{}, err
		}
		volume = v
	}
	args := []Arg{{"volume_name", volume}}
	if dryRun {
		args = append(args, Arg{"dry_run", "true"})
	}
	return c.start(ctx, Command{Module: "ZxPowerstore", Action: "doDeduplicate", Args: args}, "Deduplicate")
}

// ExportOptions are the parameters of Export.
type ExportOptions struct {
	Domains []string // default all
}

// Export starts `backup doExport PATH [domains …]`: on a Zextras Suite
// source, give the client a *CLI transport with Program "zxsuite" reaching
// the source host.
func (c *Client) Export(ctx context.Context, path string, o ExportOptions) (Operation, error) {
	args := []Arg{{"destination_path", path}}
	if len(o.Domains) > 0 {
		args = append(args, Arg{"domains", strings.Join(o.Domains, ",")})
	}
	return c.start(ctx, Command{Module: "ZxBackup", Action: "doExport", Args: args}, "Export")
}

// AvailableAccounts lists the accounts a backup at backupPath holds
// (`backup getAvailableAccounts`), optionally only of domains.
func (c *Client) AvailableAccounts(ctx context.Context, backupPath string, domains ...string) ([]string, error) {
	args := []Arg{{"backup_path", backupPath}}
	if len(domains) > 0 {
		args = append(args, Arg{"domains", strings.Join(domains, ",")})
	}
	return c.nameList(ctx, Command{Module: "ZxBackup", Action: "getAvailableAccounts", Args: args}, "accounts")
}

// AvailableDomains lists the domains of the latest state of the backup at
// backupPath.
func (c *Client) AvailableDomains(ctx context.Context, backupPath string) ([]string, error) {
	return c.nameList(ctx, Command{Module: "ZxBackup", Action: "getAvailableDomains",
		Args: []Arg{{"date", "last"}, {"backup_path", backupPath}}}, "domains")
}

// nameList decodes a list of names from response.<key>: strings or
// objects with "name" (the answer shape is undocumented).
func (c *Client) nameList(ctx context.Context, cmd Command, key string) ([]string, error) {
	res, err := c.module(ctx, cmd)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range res {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r.Response, &m); err != nil {
			return nil, shapeErr(cmd.Request(), "response is not an object: %v", err)
		}
		raw, ok := m[key]
		if !ok {
			return nil, shapeErr(cmd.Request(), "no response.%s", key)
		}
		var items list[json.RawMessage]
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, shapeErr(cmd.Request(), "response.%s: %v", key, err)
		}
		for _, it := range items {
			var t text
			if err := json.Unmarshal(it, &t); err == nil && t != "" {
				out = append(out, string(t))
				continue
			}
			var o struct {
				Name text `json:"name"`
			}
			if err := json.Unmarshal(it, &o); err != nil || o.Name == "" {
				return nil, shapeErr(cmd.Request(), "response.%s: entry without a name", key)
			}
			out = append(out, string(o.Name))
		}
	}
	return out, nil
}

// MTA stops (start false) or starts the MTA. It needs a transport that can
// run commands on the server (*CLI); the admin SOAP API has no such call.
func (c *Client) MTA(ctx context.Context, start bool) error {
	m, ok := c.Transport.(interface {
		MTA(ctx context.Context, start bool) error
	})
	if !ok {
		return ErrNeedsCLI
	}
	return m.MTA(ctx, start)
}

// ErrNeedsCLI is returned by calls that only the CLI transport can make.
var ErrNeedsCLI = errors.New("carbonio: this needs the CLI transport (local or SSH)")

// Wait polls until op leaves the list of running operations, then reads
// its outcome from the operation log. It calls onProgress (when not nil)
// whenever the operation's state or type changes. It returns the final
// operation and nil only when its outcome is OutcomeSucceeded; a failed or
// unknown outcome gives an *OperationError, and an operation found in
// neither list (five polls in a row) ErrOperationLost. Waits start at
// PollInterval and grow by half up to PollMax.
func (c *Client) Wait(ctx context.Context, op Operation, onProgress func(Operation)) (Operation, error) {
	interval, maxWait := c.PollInterval, c.PollMax
	if interval <= 0 {
		interval = 2 * time.Second
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	last := op
	missing, failures := 0, 0
	// pause waits before the next poll; false when ctx ended.
	pause := func() bool {
		t := time.NewTimer(interval)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		interval = min(interval+interval/2, maxWait)
		return true
	}
	// transient tolerates a few consecutive transient poll failures (a
	// restore can run for hours; one network hiccup must not end the wait).
	transient := func(err error) bool {
		if retry.Classify(err) != retry.Transient || failures >= 5 {
			return false
		}
		failures++
		c.log().Warn("carbonio: polling operation failed, will poll again", "id", op.ID, "err", err, "failures", failures)
		return true
	}
	fill := func(o Operation) Operation {
		if o.Module == "" {
			o.Module = op.Module
		}
		if o.Name == "" {
			o.Name = op.Name
		}
		return o
	}
	// end returns the verdict on a final entry.
	end := func(o Operation) (Operation, error) {
		if onProgress != nil && (o.State != last.State || o.Type != last.Type) {
			onProgress(o)
		}
		c.log().Info("carbonio: operation ended", "id", o.ID, "state", o.State, "type", o.Type, "outcome", o.Outcome)
		if o.Outcome == OutcomeSucceeded {
			return o, nil
		}
		return o, &OperationError{Operation: o}
	}
	for {
		ops, err := c.Operations(ctx)
		if err != nil {
			if transient(err) && pause() {
				continue
			}
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, err
		}
		failures = 0
		listed := false
		for _, o := range ops {
			if o.ID != op.ID {
				continue
			}
			listed = true
			o = fill(o)
			if o.Outcome == OutcomeFailed {
				return end(o)
			}
			if onProgress != nil && (o.State != last.State || o.Type != last.Type) {
				onProgress(o)
			}
			last = o
			break
		}
		if !listed || last.Outcome != OutcomeRunning {
			// Gone from the running list (or listed with a final type):
			// the operation log has the verdict.
			done, err := c.OperationLog(ctx)
			if err != nil {
				if transient(err) && pause() {
					continue
				}
				if ctx.Err() != nil {
					return last, ctx.Err()
				}
				return last, err
			}
			for _, o := range done {
				if o.ID == op.ID {
					return end(fill(o))
				}
			}
			if !listed {
				missing++
				if missing >= 5 {
					last.Outcome = OutcomeUnknown
					return last, fmt.Errorf("carbonio: operation %s: %w (in neither the running list nor the operation log)", fill(last).label(), ErrOperationLost)
				}
			}
		} else {
			missing = 0
		}
		if !pause() {
			return last, ctx.Err()
		}
	}
}
