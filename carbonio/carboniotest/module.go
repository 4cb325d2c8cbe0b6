package carboniotest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/zxmigrate/zxmigrate/carbonio"
)

// zextras decodes a zextras SOAP request with carbonio.Commands and runs it.
// The caller holds s.mu.
func (s *Server) zextras(body json.RawMessage) map[string]any {
	var o map[string]json.RawMessage
	if err := json.Unmarshal(body, &o); err != nil {
		return moduleErr("bad zextras request")
	}
	spec, ok := carbonio.LookupCommand(str(o["module"]), str(o["action"]))
	if !ok {
		return moduleErr(fmt.Sprintf("unknown command %s %s", str(o["module"]), str(o["action"])))
	}
	args := map[string]string{}
	for k, v := range o {
		switch k {
		case "module", "action", "_jsns":
			continue
		}
		ps, ok := spec.ParamBySOAP(k)
		if !ok {
			return moduleErr(fmt.Sprintf("unknown parameter %q for %s", k, spec.Action))
		}
		args[ps.Name] = str(v)
	}
	return s.runModule(spec, args)
}

func moduleErr(msg string) map[string]any {
	return map[string]any{"ok": false, "error": map[string]any{"message": msg}}
}

func (s *Server) serverName() string {
	if len(s.servers) > 0 {
		return s.servers[0].Name
	}
	return "mbox1.carbonio.local"
}

func (s *Server) serverID() string { return "srv-" + s.serverName() }

// perServer wraps resp as one server's answer in the configured style.
func (s *Server) perServer(resp any) map[string]any {
	out := map[string]any{"response": map[string]any{
		s.serverName(): map[string]any{"ok": true, "response": resp},
	}}
	if s.opts.Answers == NestedOK {
		out["nested"], out["ok"] = true, true
	}
	return out
}

// opJSON is an operation with the admin console's Operation fields
// (zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/types/operations.ts) and the stub's
// descName and monitorCommand (views/operations/operations-detail-operation.tsx).
func (s *Server) opJSON(o *operation) map[string]any {
	m := map[string]any{"id": o.ID, "module": o.Module, "name": o.Name, "descName": o.Name, "state": o.State,
		"host": s.serverName(), "serverName": s.serverName(), "serverId": s.serverID(),
		"queuedTime": o.queued.UnixMilli(), "parameters": o.Args, "monitorCommand": "carbonio backup monitor " + o.ID}
	if o.Type != "" {
		m["type"] = o.Type
	}
	if !o.started.IsZero() {
		m["startTime"] = o.started.UnixMilli()
		m["humanStartTime"] = o.started.UTC().Format("2006-01-02 15:04:05")
	}
	return m
}

// advance moves every running operation one step.
func (s *Server) advance() {
	now := s.opts.Now()
	var still []*operation
	for _, o := range s.ops {
		switch o.State {
		case carbonio.StateQueued:
			o.State, o.Type, o.started = carbonio.StateStarted, carbonio.TypeStarted, now
		case carbonio.StateStarted:
			o.steps++
			if o.steps >= s.opts.OperationSteps {
				s.finish(o)
			}
		case carbonio.StateStopping:
			// A stopped operation: what its log entry says is not public;
			// the fake logs it as an Exception.
			o.State, o.Type = "Finished", carbonio.TypeException
		}
		switch {
		case o.State == carbonio.StateQueued || o.State == carbonio.StateStarted || o.State == carbonio.StateStopping:
			still = append(still, o)
		case s.lostOps[o.Action]:
		default:
			s.log = append(s.log, o)
		}
	}
	s.ops = still
}

// finish ends o. The console's test fixture shows a done operation with
// state and type "Finished" (zextras/carbonio-admin-console-ui
// apps/admin-ui-operations/src/views/operations/tests/operations-table.test.ts).
func (s *Server) finish(o *operation) {
	o.State, o.Type = "Finished", carbonio.TypeFinished
	if t, ok := s.endTypes[o.Action]; ok {
		o.Type = t
		return
	}
	switch o.Action {
	case "doExternalRestore":
		s.restore(o.Args)
	case "doExport":
		s.backups[o.Args["destination_path"]] = s.snapshot(splitList(o.Args["domains"]))
	}
}

func splitList(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = strings.ToLower(strings.TrimSpace(x)); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func boolArg(args map[string]string, name string, def bool) bool {
	v, ok := args[name]
	if !ok {
		return def
	}
	return v == "true"
}

// restore provisions what the backup at source_path holds, honouring the
// domain/account filters and the skip flags.
func (s *Server) restore(args map[string]string) {
	b := s.backups[args["source_path"]]
	if b == nil {
		return
	}
	doms := splitList(args["domains"])
	accts := splitList(args["accounts"])
	in := func(addr string) bool {
		return len(doms) == 0 || slices.Contains(doms, domainOf(addr))
	}
	for _, d := range b.Domains {
		if len(doms) == 0 || slices.Contains(doms, strings.ToLower(d)) {
			s.addDomain(d)
		}
	}
	for _, a := range b.Accounts {
		n := strings.ToLower(a.Name)
		if !in(n) || (len(accts) > 0 && !slices.Contains(accts, n)) || boolArg(args, "skip_account_provisioning", false) {
			continue
		}
		if a.System && boolArg(args, "skip_system_accounts", true) {
			continue
		}
		if _, exists := s.accounts[n]; !exists {
			a.Folders = nil // provisioning creates the default tree, not the items
			s.addAccount(a)
		}
	}
	if !boolArg(args, "skip_aliases", false) {
		for _, a := range b.Aliases {
			if in(a.Name) {
				s.aliases[strings.ToLower(a.Name)] = strings.ToLower(a.Target)
			}
		}
	}
	if !boolArg(args, "skip_distribution_lists", false) {
		for _, l := range b.DistributionLists {
			if in(l.Name) {
				s.lists[strings.ToLower(l.Name)] = slices.Clone(l.Members)
			}
		}
	}
}

var opNames = map[string]string{
	"doSmartScan": "SmartScan", "doExternalRestore": "ExternalRestore",
	"doDeduplicate": "Deduplicate", "doExport": "Export",
}

// runModule runs one module command; args use CLI names. The caller holds s.mu.
func (s *Server) runModule(spec carbonio.CommandSpec, args map[string]string) map[string]any {
	for _, p := range spec.Params {
		if p.Positional && p.Name != "action" && args[p.Name] == "" {
			return moduleErr(fmt.Sprintf("missing mandatory parameter %s", p.Name))
		}
	}
	switch spec.Action {
	case "getAllOperations":
		s.advance()
		list := []any{}
		for _, o := range s.ops {
			list = append(list, s.opJSON(o))
		}
		return s.perServer(map[string]any{"operationList": list})
	case "getOperationLog":
		list := []any{}
		for _, o := range s.log {
			list = append(list, s.opJSON(o))
		}
		if _, per := args["targetServers"]; per {
			return s.perServer(map[string]any{"operationList": list})
		}
		// Without targetServers the log is flat, its entries carrying
		// serverId (apps/admin-ui-operations/src/services/use-done-operations.ts).
		return map[string]any{"ok": true, "response": map[string]any{"operationList": list}}
	case "getAllVolumes":
		var prim, sec []any
		for _, v := range s.volumes {
			m := map[string]any{"name": v.Name, "path": v.RootPath, "current": v.Current}
			switch v.Type {
			case 1:
				prim = append(prim, m)
			case 2:
				sec = append(sec, m)
			}
		}
		return s.perServer(map[string]any{"primaries": prim, "secondaries": sec})
	case "doStopOperation":
		// SOAP: ZxCore, operationId, targetServers, answered per server
		// (apps/admin-ui-operations/src/services/stop-operation.ts,
		// views/operations/running-detail-panel.tsx). CLI: backup or
		// powerstore doStopOperation <uuid>.
		id := args["operation_uuid"]
		if spec.Module == "ZxCore" {
			id = args["operationId"]
		}
		for _, o := range s.ops {
			if o.ID == id && o.State != carbonio.StateStopping {
				if spec.Module != "ZxCore" && o.Module != spec.Module {
					return moduleErr(fmt.Sprintf("operation %s belongs to %s, not %s", id, o.Module, spec.Module))
				}
				o.State = carbonio.StateStopping
				if spec.Module == "ZxCore" {
					return s.perServer(map[string]any{})
				}
				return map[string]any{"ok": true, "response": map[string]any{}}
			}
		}
		return moduleErr("no running operation " + id)
	case "getAvailableAccounts":
		b := s.backups[args["backup_path"]]
		if b == nil {
			return moduleErr("no backup at " + args["backup_path"])
		}
		doms := splitList(args["domains"])
		list := []any{}
		for _, a := range b.Accounts {
			if (len(doms) == 0 || slices.Contains(doms, domainOf(a.Name))) && (!a.System || !boolArg(args, "hide_system_accounts", true)) {
				list = append(list, map[string]any{"name": strings.ToLower(a.Name)})
			}
		}
		return map[string]any{"ok": true, "response": map[string]any{"accounts": list}}
	case "getAvailableDomains":
		b := s.backups[args["backup_path"]]
		if b == nil {
			return moduleErr("no backup at " + args["backup_path"])
		}
		return map[string]any{"ok": true, "response": map[string]any{"domains": b.Domains}}
	case "doExternalRestore":
		if s.backups[args["source_path"]] == nil {
			return moduleErr("source path " + args["source_path"] + " holds no backup")
		}
	case "doDeduplicate":
		found := false
		for _, v := range s.volumes {
			found = found || slices.Contains(splitList(args["volume_name"]), strings.ToLower(v.Name))
		}
		if !found {
			return moduleErr("no volume " + args["volume_name"])
		}
	case "doSmartScan", "doExport":
	default:
		return moduleErr("fake does not implement " + spec.Action)
	}
	s.nextID++
	o := &operation{ID: fmt.Sprintf("45cd85f0-04b1-461c-8bb0-%012d", s.nextID), Module: spec.Module,
		Name: opNames[spec.Action], Action: spec.Action, State: carbonio.StateQueued, Args: args, queued: s.opts.Now()}
	s.ops = append(s.ops, o)
	s.started = append(s.started, Started{ID: o.ID, Action: spec.Action, Args: args})
	return map[string]any{"ok": true, "response": map[string]any{"operationId": o.ID}}
}
