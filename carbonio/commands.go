package carbonio

import (
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

// CommandSpec is one module command and how each transport spells it.
type CommandSpec struct {
	// Module is the SOAP module, e.g. "ZxBackup".
	Module string
	// CLIModule is the CLI word, e.g. "backup".
	CLIModule string
	// Action is the action on both transports, e.g. "doExternalRestore".
	Action string
	// Params are the parameters the client may send.
	Params []ParamSpec
	// Verified is false where the SOAP field names are guesses
	// (PROTOCOLS.md §3.5): capture them on a lab server before trusting
	// the SOAP transport for these commands, or use the CLI transport.
	Verified bool
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
// carboniotest decodes both from it. The SOAP field names of the commands
// with Verified false are guesses (the CLI names); see PROTOCOLS.md §3.5.
var Commands = []CommandSpec{
	{Module: "ZxCore", CLIModule: "core", Action: "getAllOperations", Verified: true, Params: []ParamSpec{targetServers}},
	{Module: "ZxCore", CLIModule: "core", Action: "getOperationLog", Verified: true, Params: []ParamSpec{targetServers}},
	{Module: "ZxPowerstore", CLIModule: "powerstore", Action: "getAllVolumes", Verified: true, Params: []ParamSpec{targetServers}},
	{Module: "ZxBackup", CLIModule: "backup", Action: "doSmartScan", Params: []ParamSpec{
		// CLI: "doSmartScan start"; the SOAP action itself starts it.
		{Name: "action", Kind: KindString, Positional: true},
		p("notifications", KindList), p("deep", KindBool), p("read_error_threshold", KindInt),
	}},
	{Module: "ZxBackup", CLIModule: "backup", Action: "doExternalRestore", Params: []ParamSpec{
		pos("source_path", "source_path", KindString),
		p("accounts", KindList), p("input_file", KindString), p("domains", KindList),
		p("filter_deleted", KindBool), p("skip_system_accounts", KindBool), p("skip_aliases", KindBool),
		p("skip_distribution_lists", KindBool), p("skip_coses", KindBool),
		p("skip_account_provisioning", KindBool), p("skip_domain_provisioning", KindBool),
		p("provisioning_only", KindBool), p("notifications", KindList), p("concurrent_accounts", KindInt),
		p("max_file_size", KindInt), p("restore_datasource", KindBool),
	}},
	{Module: "ZxPowerstore", CLIModule: "powerstore", Action: "doDeduplicate", Params: []ParamSpec{
		pos("volume_name", "volume_name", KindList), p("dry_run", KindBool),
	}},
	{Module: "ZxBackup", CLIModule: "backup", Action: "doStopOperation", Params: []ParamSpec{
		pos("operation_uuid", "operation_uuid", KindString),
	}},
	{Module: "ZxPowerstore", CLIModule: "powerstore", Action: "doStopOperation", Params: []ParamSpec{
		pos("operation_uuid", "operation_uuid", KindString),
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
		if c.CLIModule == cliModule && strings.EqualFold(c.Action, action) {
			return c, true
		}
	}
	return CommandSpec{}, false
}

// Arg is one named argument of a Command (CLI name).
type Arg struct {
	Name  string
	Value string
}

// Command is one module command with its arguments, independent of the
// transport.
type Command struct {
	Module string // SOAP module, e.g. "ZxBackup"
	Action string
	Args   []Arg
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
