package carbonio

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Param kinds of the command table.
const (
	KindString = "string"
	KindBool   = "bool"
	KindInt    = "int"
	KindList   = "list" // comma-separated on both transports
)

// ParamSpec is one parameter of a module command.
type ParamSpec struct {
	// Name is the documented CLI name (e.g. "provisioning_only"); Command
	// arguments use it.
	Name string
	// SOAP is the field name in the zextras request; "" means the
	// parameter exists only on the CLI.
	SOAP string
	// Positional parameters come first on the CLI, in table order, as bare
	// values; the others as "name value" pairs.
	Positional bool
	// Kind is KindString, KindBool, KindInt or KindList.
	Kind string
	// CLIOnly parameters are sent only on the CLI transport; SOAPOnly ones
	// only in the zextras request.
	SOAPOnly bool
}

// SOAPStatus says what is known of a command's zextras SOAP form.
type SOAPStatus int

const (
	// SOAPGuess: no public source shows the SOAP field names; the table
	// uses the CLI names, a guess. Such commands run on the command line
	// unless the client opts in (Client.UnverifiedSOAP).
	SOAPGuess SOAPStatus = iota
	// SOAPVerified: the admin console sends this request with these fields.
	SOAPVerified
	// SOAPNone: the command exists only on the command line.
	SOAPNone
)

// String names the status as reports show it.
func (s SOAPStatus) String() string {
	switch s {
	case SOAPVerified:
		return "verified"
	case SOAPNone:
		return "command line only"
	}
	return "unverified"
}

// CommandSpec is one module command and how each transport spells it.
type CommandSpec struct {
	// Module is the SOAP module, e.g. "ZxBackup".
	Module string
	// CLIModule is the CLI word, e.g. "backup"; "" when the command has no
	// command-line form.
	CLIModule string
	// Action is the action on both transports, e.g. "doExternalRestore".
	Action string
	// Params are the parameters the client may send.
	Params []ParamSpec
	// SOAP says whether the SOAP form is verified, a guess, or absent.
	SOAP SOAPStatus
}

// Param returns the parameter named name (CLI name).
func (s CommandSpec) Param(name string) (ParamSpec, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p, true
		}
	}
	return ParamSpec{}, false
}

// ParamBySOAP returns the parameter whose SOAP field is field.
func (s CommandSpec) ParamBySOAP(field string) (ParamSpec, bool) {
	for _, p := range s.Params {
		if p.SOAP != "" && p.SOAP == field {
			return p, true
		}
	}
	return ParamSpec{}, false
}

func p(name string, kind string) ParamSpec { return ParamSpec{Name: name, SOAP: name, Kind: kind} }

func pos(name, soap, kind string) ParamSpec {
	return ParamSpec{Name: name, SOAP: soap, Kind: kind, Positional: true}
}

var targetServers = ParamSpec{Name: "targetServers", SOAP: "targetServers", Kind: KindString, SOAPOnly: true}

// Commands is THE table of module commands: the client builds both the
// zextras SOAP request and the carbonio command line from it, and
// carboniotest decodes both from it.
//
// Sources (public repositories):
//   - SOAP requests the admin console sends: zextras/carbonio-admin-console-ui
//     apps/admin-ui-operations/src/services/get-all-operations.ts
//     (ZxCore getAllOperations, targetServers), get-all-done-operation.ts
//     (ZxCore getOperationLog, no targetServers), stop-operation.ts (ZxCore
//     doStopOperation, operationId, targetServers "all_servers").
//   - Command lines: zextras/tech-doc source/carbonio/cli_commands/backup/*.rst
//     (doSmartScan, doExternalRestore, getAvailableAccounts,
//     getAvailableDomains, doStopOperation) and
//     source/carbonio/cli_commands/powerstore/*.rst (doDeduplicate,
//     doStopOperation); the Zextras Suite export in
//     source/cli/ZxBackup/zxsuite_backup_doExport.rst.
//   - No public source shows the SOAP fields of doSmartScan,
//     doExternalRestore, doDeduplicate, doExport or getAvailable*: the
//     public SOAP requests use camelCase names that do not follow from the
//     CLI names (zextras/carbonio-admin-console-ui
//     src/services/restore_new_legal_hold_account.ts: srcAccountName,
//     obeyHSM). Their SOAP form here is a guess (SOAPGuess).
var Commands = []CommandSpec{
	{Module: "ZxCore", CLIModule: "core", Action: "getAllOperations", SOAP: SOAPVerified, Params: []ParamSpec{targetServers}},
	{Module: "ZxCore", CLIModule: "core", Action: "getOperationLog", SOAP: SOAPVerified, Params: []ParamSpec{targetServers}},
	{Module: "ZxPowerstore", CLIModule: "powerstore", Action: "getAllVolumes", SOAP: SOAPVerified, Params: []ParamSpec{targetServers}},
	// The console stops any operation through ZxCore; there is no CLI
	// "core doStopOperation" in the docs, so this entry is SOAP only.
	{Module: "ZxCore", Action: "doStopOperation", SOAP: SOAPVerified, Params: []ParamSpec{
		{Name: "operationId", SOAP: "operationId", Kind: KindString, SOAPOnly: true}, targetServers,
	}},
	{Module: "ZxBackup", CLIModule: "backup", Action: "doSmartScan", Params: []ParamSpec{
		// CLI: "doSmartScan start"; the SOAP action itself starts it.
		{Name: "action", Kind: KindString, Positional: true},
		p("notifications", KindList), p("deep", KindBool), p("read_error_threshold", KindInt),
		p("remote_metadata_upload", KindBool), p("create_fake_blob", KindBool),
	}},
	{Module: "ZxBackup", CLIModule: "backup", Action: "doExternalRestore", Params: []ParamSpec{
		pos("source_path", "source_path", KindString),
		p("accounts", KindList), p("input_file", KindString), p("domains", KindList),
		p("filter_deleted", KindBool), p("skip_system_accounts", KindBool), p("skip_aliases", KindBool),
		p("skip_distribution_lists", KindBool), p("skip_coses", KindBool),
		p("skip_account_provisioning", KindBool), p("skip_domain_provisioning", KindBool),
		p("provisioning_only", KindBool), p("notifications", KindList), p("concurrent_accounts", KindInt),
		p("max_file_size", KindInt), p("restore_datasource", KindBool),
		p("force_as_external_restore", KindBool), p("blobs_archive", KindString),
	}},
	{Module: "ZxPowerstore", CLIModule: "powerstore", Action: "doDeduplicate", Params: []ParamSpec{
		pos("volume_name", "volume_name", KindList), p("dry_run", KindBool),
	}},
	{Module: "ZxBackup", CLIModule: "backup", Action: "doStopOperation", SOAP: SOAPNone, Params: []ParamSpec{
		{Name: "operation_uuid", Kind: KindString, Positional: true},
	}},
	{Module: "ZxPowerstore", CLIModule: "powerstore", Action: "doStopOperation", SOAP: SOAPNone, Params: []ParamSpec{
		{Name: "operation_uuid", Kind: KindString, Positional: true},
	}},
	{Module: "ZxBackup", CLIModule: "backup", Action: "getAvailableAccounts", Params: []ParamSpec{
		p("backup_path", KindString), p("domains", KindList), p("date", KindString),
		p("hide_system_accounts", KindBool),
	}},
	{Module: "ZxBackup", CLIModule: "backup", Action: "getAvailableDomains", Params: []ParamSpec{
		pos("date", "date", KindString), pos("backup_path", "backup_path", KindString),
	}},
	{Module: "ZxBackup", CLIModule: "backup", Action: "doExport", Params: []ParamSpec{
		pos("destination_path", "destination_path", KindString), p("domains", KindList),
	}},
}

// ErrNoCLIForm is returned for a command that has no command-line form.
var ErrNoCLIForm = errors.New("no command-line form")

// LookupCommand returns the spec of module/action (SOAP names).
func LookupCommand(module, action string) (CommandSpec, bool) {
	for _, c := range Commands {
		if strings.EqualFold(c.Module, module) && c.Action == action {
			return c, true
		}
	}
	return CommandSpec{}, false
}

// LookupCLICommand returns the spec of a CLI module word and action.
func LookupCLICommand(cliModule, action string) (CommandSpec, bool) {
	for _, c := range Commands {
		if c.CLIModule != "" && c.CLIModule == cliModule && strings.EqualFold(c.Action, action) {
			return c, true
		}
	}
	return CommandSpec{}, false
}

// Arg is one named argument of a Command (CLI name).
type Arg struct {
	Name  string // the CLI parameter name, e.g. "deep"
	Value string // its value as the command line takes it
}

// Command is one module command with its arguments, independent of the
// transport.
type Command struct {
	Module string // SOAP module, e.g. "ZxBackup"
	Action string // e.g. "doSmartScan"
	Args   []Arg  // in the order the command line takes them
}

// Request names the command for errors, e.g. "ZxBackup doSmartScan".
func (c Command) Request() string { return c.Module + " " + c.Action }

// spec returns the table entry and checks every argument against it.
func (c Command) spec() (CommandSpec, error) {
	s, ok := LookupCommand(c.Module, c.Action)
	if !ok {
		return s, fmt.Errorf("carbonio: %s: not in the command table", c.Request())
	}
	for _, a := range c.Args {
		ps, ok := s.Param(a.Name)
		if !ok {
			return s, fmt.Errorf("carbonio: %s: unknown parameter %q", c.Request(), a.Name)
		}
		if strings.ContainsRune(a.Value, 0) {
			return s, fmt.Errorf("carbonio: %s: parameter %s holds a NUL byte", c.Request(), a.Name)
		}
		if ps.Kind == KindInt {
			if _, err := strconv.ParseInt(a.Value, 10, 64); err != nil {
				return s, fmt.Errorf("carbonio: %s: parameter %s is not an integer: %q", c.Request(), a.Name, a.Value)
			}
		}
		if ps.Kind == KindBool && a.Value != "true" && a.Value != "false" {
			return s, fmt.Errorf("carbonio: %s: parameter %s is not true or false: %q", c.Request(), a.Name, a.Value)
		}
	}
	return s, nil
}

// SOAPFields returns the zextras request fields for c (module, action and
// parameters under their SOAP names with JSON types).
func (c Command) SOAPFields() (map[string]any, error) {
	s, err := c.spec()
	if err != nil {
		return nil, err
	}
	if s.SOAP == SOAPNone {
		return nil, fmt.Errorf("carbonio: %s: has no SOAP form, only a command line", c.Request())
	}
	m := map[string]any{"module": s.Module, "action": s.Action}
	for _, a := range c.Args {
		ps, _ := s.Param(a.Name)
		if ps.SOAP == "" {
			continue
		}
		switch ps.Kind {
		case KindBool:
			m[ps.SOAP] = a.Value == "true"
		case KindInt:
			n, _ := strconv.ParseInt(a.Value, 10, 64)
			m[ps.SOAP] = n
		default:
			m[ps.SOAP] = a.Value
		}
	}
	return m, nil
}

// CLIArgs returns the carbonio command line words after the program and
// its global flags: module, action, positional values in table order,
// then "name value" pairs.
func (c Command) CLIArgs() ([]string, error) {
	s, err := c.spec()
	if err != nil {
		return nil, err
	}
	if s.CLIModule == "" {
		return nil, fmt.Errorf("carbonio: %s: %w", c.Request(), ErrNoCLIForm)
	}
	out := []string{s.CLIModule, s.Action}
	vals := map[string]string{}
	for _, a := range c.Args {
		vals[a.Name] = a.Value
	}
	for _, ps := range s.Params {
		if !ps.Positional {
			continue
		}
		v, ok := vals[ps.Name]
		if !ok || v == "" {
			return nil, fmt.Errorf("carbonio: %s: missing %s", c.Request(), ps.Name)
		}
		out = append(out, v)
	}
	for _, a := range c.Args {
		ps, _ := s.Param(a.Name)
		if ps.Positional || ps.SOAPOnly {
			continue
		}
		out = append(out, a.Name, a.Value)
	}
	return out, nil
}
