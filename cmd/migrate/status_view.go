package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/state"
	"github.com/zxmigrate/zxmigrate/termsafe"
)

// stateStatus is what `migrate status` shows of a state across its
// runners; --json prints it as is.
type stateStatus struct {
	State    string         `json:"state"`
	Backend  string         `json:"backend"`
	Time     time.Time      `json:"time"`
	Outcome  string         `json:"outcome"` // running, interrupted, finished, not started
	Accounts int            `json:"accounts"`
	ByStatus map[string]int `json:"by_status"`
	Running  []runningAcct  `json:"running"`
	Stuck    []stuckAcct    `json:"stuck"`
	Runners  []string       `json:"runners"`
	Budgets  []budgetUse    `json:"budgets"`
	Globals  []globalJob    `json:"global_phases"`
	// Messages and Bytes are copied so far (finished and running
	// accounts); TotalBytes is the size of every account.
	Messages   int64   `json:"messages"`
	Bytes      int64   `json:"bytes"`
	TotalBytes int64   `json:"total_bytes"`
	BytesPerS  float64 `json:"bytes_per_second"`
	MsgsPerS   float64 `json:"messages_per_second"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
}

type runningAcct struct {
	Account      string    `json:"account"`
	Runner       string    `json:"runner"`
	LeaseExpires time.Time `json:"lease_expires"`
	Phase        string    `json:"phase"`
	Messages     int64     `json:"messages"`
	Bytes        int64     `json:"bytes"`
	Claims       int       `json:"claims"`
}

type stuckAcct struct {
	Account string `json:"account"`
	Reason  string `json:"reason"`
}

type budgetUse struct {
	Key      string         `json:"key"`
	InUse    int            `json:"in_use"`
	Max      int            `json:"max"` // 0: no budget
	ByRunner map[string]int `json:"by_runner,omitempty"`
}

type globalJob struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Runner string `json:"runner"`
	Claims int    `json:"claims"`
}

// stuckAfter is how long a running account may record nothing before the
// status view calls it stuck.
const stuckAfter = 10 * time.Minute

// readStatus reads the status of the state st. prev, when not nil, is an
// earlier reading of the same state: throughput is then measured between
// the two, else since the run started.
func readStatus(ctx context.Context, st state.Store, prev *stateStatus) (*stateStatus, error) {
	snap, err := state.TakeSnapshot(ctx, st)
	if err != nil {
		return nil, err
	}
	now, accts, ls, jobs := snap.Now, snap.Accounts, snap.Limits, snap.Globals
	s := &stateStatus{State: st.Path(), Backend: st.Backend(), Time: now, ByStatus: map[string]int{}}
	runs, err := st.Runs(ctx)
	if err != nil {
		return nil, err
	}
	// A state file's run is live while its process holds the lock; a
	// shared state's while a runner holds a live lease or slot.
	live := st.Backend() == "sqlite" && migrate.StateInUse(st.Path())
	runners := map[string]bool{}
	for _, a := range accts {
		if a.Runner != "" && a.LeaseExpires.After(now) {
			runners[a.Runner] = true
		}
	}
	for _, l := range ls {
		if l.Key == migrate.BudgetRunners {
			for r := range l.ByRunner {
				runners[r] = true
			}
			continue
		}
		s.Budgets = append(s.Budgets, budgetUse{Key: l.Key, InUse: l.InUse, Max: l.Max, ByRunner: l.ByRunner})
	}
	if st.Backend() != "sqlite" && len(runners) > 0 {
		live = true
	}
	for r := range runners {
		s.Runners = append(s.Runners, r)
	}
	sort.Strings(s.Runners)
	for _, j := range jobs {
		s.Globals = append(s.Globals, globalJob{Name: j.Name, Status: string(j.Status), Runner: j.Runner, Claims: j.Claims})
	}
	var remaining int64
	for _, a := range accts {
		s.Accounts++
		s.TotalBytes += a.Size
		s.Messages += a.Messages
		status := a.Status
		leased := a.Runner != "" && a.LeaseExpires.After(now)
		switch {
		case status == string(migrate.StatusRunning) && st.Backend() == "sqlite" && !live,
			status == string(migrate.StatusRunning) && st.Backend() != "sqlite" && !leased && !a.Finished:
			status = string(migrate.StatusInterrupted)
		case status == "" || status == string(migrate.StatusPending) && leased:
			if leased {
				status = string(migrate.StatusRunning)
			} else {
				status = string(migrate.StatusPending)
			}
		}
		s.ByStatus[status]++
		done := a.Finished || status == string(migrate.StatusDone) || status == string(migrate.StatusPartial)
		if done {
			s.Bytes += a.Size
		} else {
			s.Bytes += min(a.Bytes, a.Size)
			remaining += max(a.Size-a.Bytes, 0)
		}
		if status == string(migrate.StatusRunning) {
			s.Running = append(s.Running, runningAcct{Account: a.Source, Runner: a.Runner, LeaseExpires: a.LeaseExpires,
				Phase: a.Phase, Messages: a.Messages, Bytes: a.Bytes, Claims: a.Claims})
			if !a.Updated.IsZero() && now.Sub(a.Updated) > stuckAfter {
				s.Stuck = append(s.Stuck, stuckAcct{Account: a.Source, Reason: fmt.Sprintf("nothing recorded for %s", now.Sub(a.Updated).Round(time.Second))})
			}
		}
		switch {
		case st.Backend() != "sqlite" && a.Status == string(migrate.StatusRunning) && !leased && !a.Finished:
			s.Stuck = append(s.Stuck, stuckAcct{Account: a.Source, Reason: "its runner's lease ran out: waiting for another runner"})
		case a.Claims > 1 && !a.Finished:
			s.Stuck = append(s.Stuck, stuckAcct{Account: a.Source, Reason: fmt.Sprintf("retrying: claimed %d times", a.Claims)})
		}
	}
	var last state.RunInfo
	if len(runs) > 0 {
		last = runs[len(runs)-1]
	}
	switch {
	case len(runs) == 0:
		s.Outcome = "not started"
	case live:
		s.Outcome = string(migrate.StatusRunning)
	case last.Finished.IsZero():
		s.Outcome = string(migrate.StatusInterrupted)
	default:
		s.Outcome = "finished (" + last.Outcome + ")"
	}
	var secs float64
	var dBytes, dMsgs int64
	if prev != nil {
		secs = s.Time.Sub(prev.Time).Seconds()
		dBytes, dMsgs = s.Bytes-prev.Bytes, s.Messages-prev.Messages
	} else if live {
		// Since the first unfinished run started.
		for i := len(runs) - 1; i >= 0 && runs[i].Finished.IsZero(); i-- {
			secs = now.Sub(runs[i].Started).Seconds()
		}
		for _, a := range accts {
			dBytes += a.Bytes
			dMsgs += a.Messages
		}
	}
	if secs > 0 {
		s.BytesPerS, s.MsgsPerS = float64(max(dBytes, 0))/secs, float64(max(dMsgs, 0))/secs
	}
	if s.BytesPerS > 0 && remaining > 0 {
		s.ETASeconds = float64(remaining) / s.BytesPerS
	}
	return s, nil
}

func (s *stateStatus) writeText(w io.Writer) {
	termsafe.Fprintf(w, "State %s (%s): %s\n", s.State, s.Backend, s.Outcome)
	keys := make([]string, 0, len(s.ByStatus))
	for k := range s.ByStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "%d accounts\n", s.Accounts)
	for _, k := range keys {
		termsafe.Fprintf(w, "  %-12s %d\n", k, s.ByStatus[k])
	}
	if len(s.Globals) > 0 {
		fmt.Fprintln(w, "Global phases:")
		for _, g := range s.Globals {
			termsafe.Fprintf(w, "  %-20s %-8s %s (claims %d)\n", g.Name, orDash(g.Status), orDash(g.Runner), g.Claims)
		}
	}
	if len(s.Runners) > 0 {
		termsafe.Fprintf(w, "Runners (%d): %s\n", len(s.Runners), strings.Join(s.Runners, ", "))
	}
	if len(s.Running) > 0 {
		fmt.Fprintln(w, "Running:")
		fmt.Fprintf(w, "  %-32s %-28s %-9s %-12s %9s %10s\n", "ACCOUNT", "RUNNER", "LEASE", "PHASE", "MESSAGES", "BYTES")
		for _, a := range s.Running {
			lease := "-"
			if !a.LeaseExpires.IsZero() {
				lease = a.LeaseExpires.Sub(s.Time).Round(time.Second).String()
			}
			termsafe.Fprintf(w, "  %-32s %-28s %-9s %-12s %9d %10s\n", a.Account, orDash(a.Runner), lease, orDash(a.Phase), a.Messages, migrate.HumanBytes(a.Bytes))
		}
	}
	if len(s.Budgets) > 0 {
		fmt.Fprintln(w, "Budgets (slots in use / budget):")
		for _, b := range s.Budgets {
			max := "-"
			if b.Max > 0 {
				max = fmt.Sprint(b.Max)
			}
			termsafe.Fprintf(w, "  %-40s %d / %s\n", b.Key, b.InUse, max)
		}
	}
	fmt.Fprintf(w, "Copied: %d messages, %s of %s", s.Messages, migrate.HumanBytes(s.Bytes), migrate.HumanBytes(s.TotalBytes))
	if s.BytesPerS > 0 {
		fmt.Fprintf(w, "; %s/s, %.1f messages/s", migrate.HumanBytes(int64(s.BytesPerS)), s.MsgsPerS)
	}
	if s.ETASeconds > 0 {
		fmt.Fprintf(w, "; ETA %s", (time.Duration(s.ETASeconds) * time.Second).Round(time.Second))
	}
	fmt.Fprintln(w)
	if len(s.Stuck) > 0 {
		fmt.Fprintln(w, "Stuck or retrying:")
		for _, a := range s.Stuck {
			termsafe.Fprintf(w, "  %-32s %s\n", a.Account, a.Reason)
		}
	}
}

func (s *stateStatus) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
