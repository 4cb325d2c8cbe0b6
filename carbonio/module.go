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

	"github.com/zxmigrate/zxmigrate/internal/retry"
)

// ModuleTransport runs one module command and returns its JSON result: the
// object that the zextras SOAP request carries in Body.response.content and
// that `carbonio --json` prints ({"ok":…,"response":…}, possibly nested per
// server). Implementations: the client's own SOAP transport (Transport nil)
// and *CLI.
type ModuleTransport interface {
	Module(ctx context.Context, cmd Command) (json.RawMessage, error)
}

// ModuleError is a module command that answered ok=false.
type ModuleError struct {
	Request string // e.g. "ZxBackup doSmartScan"
	Server  string // "" when the answer was not per server
	Message string
}

// Error implements error.
func (e *ModuleError) Error() string {
	if e.Server != "" {
		return fmt.Sprintf("carbonio: %s on %s: %s", e.Request, e.Server, e.Message)
	}
	return fmt.Sprintf("carbonio: %s: %s", e.Request, e.Message)
}

// soapModule is the default transport: the zextras request.
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

func (c *Client) transport() ModuleTransport {
	if c.Transport != nil {
		return c.Transport
	}
	return soapModule{c}
}

// moduleResult is one server's part of a module answer.
type moduleResult struct {
	Server   string
	Response json.RawMessage
}

type moduleJSON struct {
	OK       *bool           `json:"ok"`
	Nested   text            `json:"nested"`
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

// parseModule checks "ok" at every level of a module answer and returns
// the per-server responses (one with Server "" when not nested). A server
// that failed gives a *ModuleError; the others are still returned.
func parseModule(request string, content []byte) ([]moduleResult, error) {
	content = bytes.TrimSpace(content)
	var top moduleJSON
	if err := json.Unmarshal(content, &top); err != nil {
		return nil, shapeErr(request, "module answer is not a JSON object: %v", err)
	}
	if top.OK == nil {
		return nil, shapeErr(request, "module answer has no \"ok\"")
	}
	if !*top.OK {
		return nil, &ModuleError{Request: request, Message: top.errMessage()}
	}
	if !top.Nested.bool() {
		return []moduleResult{{Response: top.Response}}, nil
	}
	var per map[string]moduleJSON
	if err := json.Unmarshal(top.Response, &per); err != nil {
		return nil, shapeErr(request, "nested answer is not an object of servers: %v", err)
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []moduleResult
	var errs []error
	for _, n := range names {
		r := per[n]
		switch {
		case r.OK == nil:
			errs = append(errs, shapeErr(request, "server %s: no \"ok\"", n))
		case !*r.OK:
			errs = append(errs, &ModuleError{Request: request, Server: n, Message: r.errMessage()})
		default:
			out = append(out, moduleResult{Server: n, Response: r.Response})
		}
	}
	return out, errors.Join(errs...)
}

// module runs cmd on the configured transport and parses the answer.
func (c *Client) module(ctx context.Context, cmd Command) ([]moduleResult, error) {
	raw, err := c.transport().Module(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return parseModule(cmd.Request(), raw)
}

// Operation states. Queued, Started and Finished are documented; the
// others are the outcomes named by the CLI's --sync exit codes, whose
// strings are not (PROTOCOLS.md §3.3).
const (
	StateQueued      = "Queued"
	StateStarted     = "Started"
	StateFinished    = "Finished"
	StateFailed      = "Failed"
	StateStopped     = "Stopped"
	StateRemoved     = "Removed"
	StateInterrupted = "Interrupted"
)

// Operation is an asynchronous module operation (SmartScan, restore,
// deduplication...).
type Operation struct {
	ID     string
	Module string // e.g. "ZxBackup"
	Name   string // e.g. "SmartScan", or the action that started it
	State  string
	Host   string
	// Progress is the reported percentage (0–100), or -1 when the server
	// does not report one.
	Progress   float64
	QueuedTime time.Time
	StartTime  time.Time
	EndTime    time.Time
	// Error is the failure message of a failed operation.
	Error string
}

// Done reports whether the operation has left the queue for good.
func (o Operation) Done() bool {
	switch o.State {
	case StateQueued, StateStarted, "":
		return false
	}
	return true
}

// Errors of Wait, matched with errors.Is on *OperationError.
var (
	ErrOperationFailed  = errors.New("operation failed")
	ErrOperationStopped = errors.New("operation stopped")
	ErrOperationLost    = errors.New("operation vanished without an outcome")
)

// OperationError is a finished operation that did not succeed.
type OperationError struct{ Operation Operation }

// Error implements error.
func (e *OperationError) Error() string {
	msg := e.Operation.Error
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("carbonio: operation %s %s (%s) ended %s: %s", e.Operation.Module, e.Operation.Name, e.Operation.ID, e.Operation.State, msg)
}

// Is matches ErrOperationStopped for stopped or removed operations and
// ErrOperationFailed otherwise.
func (e *OperationError) Is(target error) bool {
	switch e.Operation.State {
	case StateStopped, StateRemoved:
		return target == ErrOperationStopped
	}
	return target == ErrOperationFailed
}

type opJSON struct {
	ID         text            `json:"id"`
	Module     text            `json:"module"`
	Name       text            `json:"name"`
	State      text            `json:"state"`
	Host       text            `json:"host"`
	ServerName text            `json:"serverName"`
	Progress   *text           `json:"progress"`
	QueuedTime text            `json:"queuedTime"`
	StartTime  text            `json:"startTime"`
	EndTime    text            `json:"endTime"`
	Error      json.RawMessage `json:"error"`
	Message    text            `json:"message"`
}

func msTime(t text) time.Time {
	if n := t.int64(); n > 0 {
		return time.UnixMilli(n)
	}
	return time.Time{}
}

func (o opJSON) op(server string) Operation {
	op := Operation{ID: string(o.ID), Module: string(o.Module), Name: string(o.Name), State: string(o.State),
		Host: string(o.Host), Progress: -1, QueuedTime: msTime(o.QueuedTime), StartTime: msTime(o.StartTime),
		EndTime: msTime(o.EndTime), Error: string(o.Message)}
	if op.Host == "" {
		op.Host = string(o.ServerName)
	}
	if op.Host == "" {
		op.Host = server
	}
	if o.Progress != nil && *o.Progress != "" {
		op.Progress = o.Progress.float()
	}
	if len(o.Error) > 0 {
		op.Error = moduleJSON{Error: o.Error}.errMessage()
	}
	return op
}

func (c *Client) operationList(ctx context.Context, action string) ([]Operation, error) {
	res, err := c.module(ctx, Command{Module: "ZxCore", Action: action, Args: []Arg{{"targetServers", "all_servers"}}})
	if err != nil && len(res) == 0 {
		return nil, err
	}
	var out []Operation
	for _, r := range res {
		var ans struct {
			OperationList list[opJSON] `json:"operationList"`
		}
		if uerr := json.Unmarshal(r.Response, &ans); uerr != nil {
			return nil, shapeErr("ZxCore "+action, "server %q: %v", r.Server, uerr)
		}
		for _, o := range ans.OperationList {
			out = append(out, o.op(r.Server))
		}
	}
	return out, err
}

// Operations lists the running and queued operations of all servers.
func (c *Client) Operations(ctx context.Context) ([]Operation, error) {
	return c.operationList(ctx, "getAllOperations")
}

// OperationLog lists the finished operations of all servers.
func (c *Client) OperationLog(ctx context.Context) ([]Operation, error) {
	return c.operationList(ctx, "getOperationLog")
}

// StopOperation stops the running operation id. Its module (backup or
// powerstore doStopOperation) is looked up in the operation list;
// ZxBackup when the operation is not listed.
func (c *Client) StopOperation(ctx context.Context, id string) error {
	mod := "ZxBackup"
	if ops, err := c.Operations(ctx); err == nil {
		for _, o := range ops {
			if _, ok := LookupCommand(o.Module, "doStopOperation"); ok && o.ID == id {
				mod = o.Module
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
	op := Operation{ID: string(ans.OperationID), Module: cmd.Module, Name: name, State: StateQueued, Host: res[0].Server, Progress: -1}
	c.log().Info("carbonio: operation queued", "request", cmd.Request(), "id", op.ID)
	return op, nil
}

// SmartScanOptions are the parameters of SmartScan; zero values are the
// server's defaults.
type SmartScanOptions struct {
	Deep               bool
	Notifications      []string
	ReadErrorThreshold int
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
	return c.start(ctx, Command{Module: "ZxBackup", Action: "doSmartScan", Args: args}, "SmartScan")
}

// RestoreOptions are the parameters of ExternalRestore. Nil pointers and
// zero values leave the server's default (documented in the comment).
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
	Notifications           []string
	MaxFileSize             int   // 0: no limit
	RestoreDatasource       *bool // default true
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

// Wait polls until op leaves the operation list, then reads its outcome
// from the operation log. It calls onProgress (when not nil) on every
// change seen. It returns the final operation, and an *OperationError when
// it failed or was stopped. Waits start at PollInterval and grow by half
// up to PollMax.
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
		found := false
		for _, o := range ops {
			if o.ID == op.ID {
				found = true
				if o.Module == "" {
					o.Module = op.Module
				}
				if o != last && onProgress != nil {
					onProgress(o)
				}
				last = o
				break
			}
		}
		if !found {
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
				if o.ID != op.ID {
					continue
				}
				if o.Module == "" {
					o.Module = op.Module
				}
				if o.Name == "" {
					o.Name = op.Name
				}
				if onProgress != nil {
					onProgress(o)
				}
				c.log().Info("carbonio: operation ended", "id", o.ID, "state", o.State)
				if o.State == StateFinished {
					return o, nil
				}
				return o, &OperationError{Operation: o}
			}
			missing++
			if missing >= 5 {
				last.State = "Unknown"
				return last, fmt.Errorf("carbonio: operation %s %s (%s): %w", op.Module, op.Name, op.ID, ErrOperationLost)
			}
		}
		if !pause() {
			return last, ctx.Err()
		}
	}
}
