package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/zxmigrate/zxmigrate/state"
)

// DefaultMTARestartTimeout bounds the attempt to start the destination MTA
// again when a run is interrupted with MTAOptions.RestartOnInterrupt.
const DefaultMTARestartTimeout = 60 * time.Second

// MTAOptions says what happens to the destination MTA when a run stops
// between the mta_stop and mta_start phases.
type MTAOptions struct {
	// RestartOnInterrupt starts the destination MTA again when the run is
	// interrupted (Ctrl-C, SIGTERM, a cancelled context) after mta_stop
	// and before mta_start, within RestartTimeout. The next run then stops
	// it again before it copies. Without it the MTA stays stopped, and the
	// run's last lines and its report say so with the command that starts
	// it.
	RestartOnInterrupt bool `yaml:"restart_on_interrupt"`
	// RestartTimeout bounds that attempt; 0 means DefaultMTARestartTimeout.
	RestartTimeout time.Duration `yaml:"restart_timeout"`
}

func (o MTAOptions) restartTimeout() time.Duration {
	if o.RestartTimeout <= 0 {
		return DefaultMTARestartTimeout
	}
	return o.RestartTimeout
}

// MTAStopped describes a destination MTA that a run stopped and did not
// start again: mail for the migrated domain is not being delivered.
type MTAStopped struct {
	// Certain is false when mta_stop did not finish (it was interrupted or
	// failed): the MTA may be stopped.
	Certain bool `json:"certain"`
	// StartCommand starts the MTA now, e.g. `migrate carbonio mta start
	// --ssh root@mta.example.com --run-as zextras`.
	StartCommand string `json:"start_command"`
	// ResumeCommand finishes the run, which starts the MTA at its end
	// ("" when the plan's file is not known).
	ResumeCommand string `json:"resume_command,omitempty"`
}

// Warning returns the lines an operator must not miss, each starting with
// "!!! ".
func (m *MTAStopped) Warning() string {
	if m == nil {
		return ""
	}
	var b strings.Builder
	state := "is STOPPED"
	if !m.Certain {
		state = "MAY BE STOPPED (mta_stop did not finish)"
	}
	fmt.Fprintf(&b, "!!! The destination MTA %s: mta_stop ran and mta_start has not.\n", state)
	b.WriteString("!!! Mail for the migrated domains is not delivered until it runs. Start it now with:\n")
	fmt.Fprintf(&b, "!!!     %s\n", m.StartCommand)
	if m.ResumeCommand != "" {
		b.WriteString("!!! or finish the run, which starts it at the end:\n")
		fmt.Fprintf(&b, "!!!     %s\n", m.ResumeCommand)
	}
	return b.String()
}

// MTAStartCommand returns the command line that starts the destination MTA
// the way the plan's mta_start phase does.
func (p *Plan) MTAStartCommand() string {
	cli := p.Destination.CLI
	switch cli.Mode {
	case "local":
		return "migrate carbonio mta start --local-cli"
	case "ssh":
		s := cli.SSH
		user := s.User
		if user == "" {
			user = "USER"
		}
		args := []string{"migrate", "carbonio", "mta", "start", "--ssh", shellQuote(user + "@" + s.Address)}
		if s.KnownHostsFile != "" {
			args = append(args, "--ssh-known-hosts", shellQuote(s.KnownHostsFile))
		}
		for _, k := range s.KeyFiles {
			args = append(args, "--ssh-key", shellQuote(k))
		}
		if s.RunAs != "" {
			args = append(args, "--run-as", shellQuote(s.RunAs))
		}
		return strings.Join(args, " ")
	}
	return "zmmtactl start (as the zextras user on the destination MTA node)"
}

// resumeCommand is the command that runs the plan again, "" when its file
// is not known.
func (p *Plan) resumeCommand() string {
	if p == nil || p.file == "" {
		return ""
	}
	f := p.file
	if abs, err := filepath.Abs(f); err == nil {
		f = abs
	}
	return "migrate run --plan " + shellQuote(f)
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// mtaStopped derives the MTA's state from the global phase rows: mta_stop
// began (done, partial, or cut short) and mta_start is not done. undo is
// the command recorded with mta_stop, if any.
func mtaStopped(global map[Phase]PhaseResult, plan *Plan) *MTAStopped {
	stop, ok := global[PhaseMTAStop]
	if !ok {
		return nil
	}
	if stop.Status == StatusPending || stop.Status == StatusNotRun {
		return nil
	}
	if start, ok := global[PhaseMTAStart]; ok && start.Status == StatusDone {
		return nil
	}
	m := &MTAStopped{Certain: stop.Status == StatusDone || stop.Status == StatusPartial, StartCommand: stop.Undo}
	if plan != nil {
		m.StartCommand = plan.MTAStartCommand()
		m.ResumeCommand = plan.resumeCommand()
	}
	if m.StartCommand == "" {
		m.StartCommand = "migrate carbonio mta start --ssh USER@MTA-HOST (or --local-cli), or zmmtactl start as zextras on the MTA node"
	}
	return m
}

// restartMTA starts the destination MTA again after an interrupted run,
// within the plan's bounded timeout, and puts mta_stop and mta_start back
// to pending so that the next run stops it again before copying and
// starts it at the end. It reports whether the MTA runs again.
func (r *Runner) restartMTA(ctx context.Context, store state.Store, accts []AccountPlan) bool {
	p := r.Plan
	if !p.MTA.RestartOnInterrupt || !p.HasPhase(PhaseMTAStop) {
		return false
	}
	ctx = context.WithoutCancel(ctx)
	global, err := store.Phases(ctx)
	if err != nil {
		return false
	}
	rows := map[Phase]PhaseResult{}
	for _, row := range global {
		if row.Account == state.GlobalAccount {
			rows[Phase(row.Phase)] = PhaseResult{Phase: Phase(row.Phase), Status: Status(row.Status)}
		}
	}
	if mtaStopped(rows, nil) == nil {
		return false
	}
	r.log().Warn("run interrupted with the destination MTA stopped: starting it again", "timeout", p.MTA.restartTimeout())
	tctx, cancel := context.WithTimeout(ctx, p.MTA.restartTimeout())
	defer cancel()
	rec := r.newRecorder(store, "", PhaseMTAStart)
	r.emit(PhaseStarted{Phase: PhaseMTAStart, Time: rec.res.Started})
	perr := r.backend.Global(tctx, PhaseMTAStart, p, accts, rec)
	res := rec.finish(tctx, perr)
	if perr != nil && tctx.Err() != nil {
		res.Status, res.Reason = StatusFailed, fmt.Sprintf("starting the MTA again after the interrupt timed out after %s: %v", p.MTA.restartTimeout(), perr)
	}
	if res.Status != StatusDone {
		_ = r.savePhase(ctx, store, state.GlobalAccount, res)
		r.emit(PhaseFinished{Result: res})
		r.log().Error("could not start the destination MTA again", "err", perr)
		return false
	}
	res.Status, res.Reason = StatusPending, "the MTA was started again when the run was interrupted (mta.restart_on_interrupt); the next run starts it at its end"
	_ = r.savePhase(ctx, store, state.GlobalAccount, res)
	stop := PhaseResult{Phase: PhaseMTAStop, Status: StatusPending,
		Reason: "the MTA was started again when the run was interrupted (mta.restart_on_interrupt); the next run stops it again"}
	_ = r.savePhase(ctx, store, state.GlobalAccount, stop)
	r.emit(PhaseFinished{Result: res})
	return true
}

// MTALeftStopped reads the plan's state file and reports whether an earlier
// run left the destination MTA stopped (mta_stop done, mta_start not), for
// a run that failed before it could build a report. It creates nothing:
// without a state file it returns nil.
func MTALeftStopped(ctx context.Context, p *Plan) *MTAStopped {
	return MTALeftStoppedAt(ctx, p.StatePath(), p)
}

// MTALeftStoppedAt is MTALeftStopped for the state file at path; p may be
// nil, and then the start command is the one recorded with mta_stop.
func MTALeftStoppedAt(ctx context.Context, path string, p *Plan) *MTAStopped {
	if path == ":memory:" {
		return nil
	}
	st, err := state.OpenReadOnly(ctx, path)
	if err != nil {
		return nil
	}
	defer st.Close()
	rows, err := st.Phases(ctx)
	if err != nil {
		return nil
	}
	global := map[Phase]PhaseResult{}
	for _, row := range rows {
		if row.Account != state.GlobalAccount {
			continue
		}
		res := PhaseResult{}
		if row.Detail != "" {
			_ = json.Unmarshal([]byte(row.Detail), &res)
		}
		res.Phase, res.Status = Phase(row.Phase), Status(row.Status)
		global[res.Phase] = res
	}
	return mtaStopped(global, p)
}
