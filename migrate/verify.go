package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/carbonio/files"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/imapcopy"
)

// Verify recomputes the source-versus-destination proof for every selected
// account, whatever the state says, and returns it as a report whose
// accounts hold only the verify phase. It writes nothing: neither the
// servers nor the state store.
func (r *Runner) Verify(ctx context.Context) (*Report, error) {
	accts, err := r.prepare(ctx)
	if r.backend != nil {
		defer r.backend.Close()
	}
	if err != nil {
		return nil, err
	}
	r.startTime = time.Now()
	rep := &Report{Version: ReportVersion, Plan: r.Plan.Name, PlanHash: r.Plan.Hash(), Started: r.startTime}
	results := make([]AccountReport, len(accts))
	g := new(errgroup.Group)
	g.SetLimit(r.Plan.Concurrency.accounts())
	for i, a := range accts {
		g.Go(func() error {
			ar := AccountReport{Source: a.Source, Destination: a.Destination, Size: a.Size}
			inv, err := r.backend.Inventory(ctx, a)
			if err != nil {
				inv = &Inventory{Error: err.Error()}
			}
			rec := r.newRecorder(nil, a.Source, PhaseVerify)
			r.emit(PhaseStarted{Account: a.Source, Phase: PhaseVerify, Time: rec.res.Started})
			perr := r.noPanic("verify of "+a.Source, func() error { return r.backend.Account(ctx, PhaseVerify, a, inv, rec) })
			res := rec.finish(ctx, perr)
			r.emit(PhaseFinished{Account: a.Source, Result: res})
			ar.Phases = []PhaseResult{res}
			ar.Status = res.Status
			r.emit(AccountFinished{Account: a.Source, Status: res.Status})
			results[i] = ar
			return nil
		})
	}
	_ = g.Wait()
	rep.Accounts = results
	rep.Finished = time.Now()
	if ctx.Err() != nil {
		rep.Outcome = StatusInterrupted
	}
	rep.finalize()
	r.emit(RunFinished{Report: rep})
	return rep, ctx.Err()
}

// PreflightReport is what Preflight found, before anything is written.
type PreflightReport struct {
	Plan     string             `json:"plan,omitempty"` // the plan's name
	Checks   []Check            `json:"checks"`         // servers, credentials and command lines checked
	Accounts []PreflightAccount `json:"accounts"`       // one entry per selected account
	// NotMigrated lists shares, mountpoints, saved searches and
	// Files/Briefcase items the procedure leaves behind.
	NotMigrated []NotMigrated `json:"not_migrated"`
	// Shares is the dry run of the shares phase, when the plan has it:
	// what it would create or update, and what it would skip.
	Shares []ShareItem `json:"shares,omitempty"`
	// Files is the dry run of the files phase, when the plan has it: the
	// Briefcase documents it would copy and those over a limit.
	Files []files.Item `json:"files,omitempty"`
}

// Check is one server or credential check.
type Check struct {
	Name   string `json:"name"`             // what was checked, e.g. destination.imap
	OK     bool   `json:"ok"`               // whether it passed
	Detail string `json:"detail,omitempty"` // what failed, or what was found
}

// PreflightAccount is one account as preflight sees it.
type PreflightAccount struct {
	Source      string `json:"source"`      // the source address
	Destination string `json:"destination"` // the destination address
	Size        int64  `json:"size"`        // bytes on the source, 0 when unknown
	// OnDestination reports whether the account exists on the destination
	// (nil when not checked).
	OnDestination *bool `json:"on_destination,omitempty"`
	// Mail, Calendars and Contacts are dry runs: counts of what a run
	// would copy, skip (e.g. over the size limit) or fail on.
	Mail      *PhaseResult `json:"mail,omitempty"`
	Calendars *PhaseResult `json:"calendars,omitempty"` // see Mail
	Contacts  *PhaseResult `json:"contacts,omitempty"`  // see Mail
	// VirtualFolders maps skipped source folders to the reason.
	VirtualFolders map[string]string `json:"virtual_folders,omitempty"`
	Error          string            `json:"error,omitempty"` // why the account could not be checked
}

// OK reports whether preflight found nothing that needs attention.
func (p *PreflightReport) OK() bool {
	for _, c := range p.Checks {
		if !c.OK {
			return false
		}
	}
	for _, a := range p.Accounts {
		if a.Error != "" || a.OnDestination != nil && !*a.OnDestination {
			return false
		}
		for _, ph := range []*PhaseResult{a.Mail, a.Calendars, a.Contacts} {
			if ph != nil && (ph.Failed > 0 || ph.Skipped > 0 || ph.Status == StatusFailed) {
				return false
			}
		}
	}
	return true
}

// Preflight checks credentials and servers, lists the accounts with their
// sizes, finds messages over the destination's size limit, virtual folders,
// contact groups and calendar objects that need attention, and inventories
// what the procedure does not migrate. It writes nothing. The error is
// non-nil when a check that the run needs failed (a *PlanError,
// *ServerError or *AccountError); the report is returned whenever one was
// built.
func (r *Runner) Preflight(ctx context.Context) (*PreflightReport, error) {
	pr := &PreflightReport{Plan: r.Plan.Name}
	accts, err := r.prepare(ctx)
	if r.backend != nil {
		defer r.backend.Close()
	}
	if err != nil {
		pr.Checks = append(pr.Checks, Check{Name: "servers and credentials", OK: false, Detail: err.Error()})
		return pr, err
	}
	pr.Checks = append(pr.Checks, Check{Name: "servers and credentials", OK: true,
		Detail: fmt.Sprintf("%d accounts selected", len(accts))})
	if b, ok := r.backend.(*serverBackend); ok {
		pr.Checks = append(pr.Checks, b.moduleChecks()...)
		pr.Checks = append(pr.Checks, b.seedChecks()...)
	}
	provisioned := !r.Plan.HasPhase(PhaseProvisioning)
	var mu sync.Mutex
	out := make([]PreflightAccount, len(accts))
	g := new(errgroup.Group)
	g.SetLimit(r.Plan.Concurrency.accounts())
	for i, a := range accts {
		g.Go(func() error {
			pa := PreflightAccount{Source: a.Source, Destination: a.Destination, Size: a.Size}
			defer func() { out[i] = pa }()
			inv, err := r.backend.Inventory(ctx, a)
			if err != nil {
				pa.Error = "inventory: " + err.Error()
			} else {
				pa.VirtualFolders = inv.SkipFolders
				mu.Lock()
				pr.NotMigrated = append(pr.NotMigrated, inv.NotMigrated...)
				mu.Unlock()
			}
			exists, err := r.backend.DestinationExists(ctx, a.Destination)
			if err != nil {
				pa.Error = strings.TrimPrefix(pa.Error+"; ", "; ") + "destination lookup: " + err.Error()
				return nil
			}
			pa.OnDestination = &exists
			if !exists && provisioned {
				return nil
			}
			if !exists {
				// Provisioning will create it: only the source side can
				// be read now.
				return nil
			}
			for _, ph := range []Phase{PhaseMail, PhaseCalendars, PhaseContacts} {
				if !r.Plan.HasPhase(ph) {
					continue
				}
				rec := r.newRecorder(nil, a.Source, ph)
				perr := r.dryRun(ctx, ph, a, inv, rec)
				res := rec.finish(ctx, perr)
				switch ph {
				case PhaseMail:
					pa.Mail = &res
				case PhaseCalendars:
					pa.Calendars = &res
				case PhaseContacts:
					pa.Contacts = &res
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	pr.Accounts = out
	if b, ok := r.backend.(*serverBackend); ok && r.Plan.HasPhase(PhaseShares) && b.srcAdmin != nil && b.dstAdmin != nil && ctx.Err() == nil {
		items, err := newSharer(r.Plan, b.srcAdmin, b.dstAdmin, true, b.log).run(ctx, accts)
		pr.Shares = items
		if err != nil {
			pr.Checks = append(pr.Checks, Check{Name: "shares", OK: false, Detail: err.Error()})
		}
		for _, it := range items {
			if it.Outcome == ShareInvitation {
				pr.NotMigrated = append(pr.NotMigrated, NotMigrated{Account: it.Account, Kind: "share", Name: it.Folder + " (" + it.Grantee + ")", Reason: it.Reason})
			}
		}
	}
	if b, ok := r.backend.(*serverBackend); ok && r.Plan.HasPhase(PhaseFiles) && b.srcAdmin != nil && ctx.Err() == nil {
		items, err := b.filesDryRun(ctx, accts)
		pr.Files = items
		if err != nil {
			pr.Checks = append(pr.Checks, Check{Name: "files", OK: false, Detail: err.Error()})
		}
	}
	return pr, ctx.Err()
}

// dryRun runs a copy phase with the leaf's dry-run mode.
func (r *Runner) dryRun(ctx context.Context, ph Phase, a AccountPlan, inv *Inventory, rec *recorder) error {
	b, ok := r.backend.(*serverBackend)
	if !ok {
		return r.backend.Account(ctx, ph, a, inv, rec) // test doubles write nothing
	}
	return b.dryRun(ctx, ph, a, inv, rec)
}

func (b *serverBackend) dryRun(ctx context.Context, ph Phase, a AccountPlan, inv *Inventory, rec *recorder) error {
	switch ph {
	case PhaseMail:
		c := b.copier(a, inv, rec)
		c.DryRun = true
		c.OnEvent = func(ev imapcopy.Event) { recordMailProblem(rec, ev) }
		return b.copyMail(ctx, c, a, rec)
	case PhaseCalendars, PhaseContacts:
		return b.davDry(ctx, a, rec, ph == PhaseCalendars)
	}
	return nil
}

// WriteText writes the preflight findings.
func (p *PreflightReport) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range p.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "[%s] %s", mark, c.Name)
		if c.Detail != "" {
			fmt.Fprintf(&b, ": %s", c.Detail)
		}
		b.WriteString("\n")
	}
	var size int64
	for _, a := range p.Accounts {
		size += a.Size
		line := fmt.Sprintf("  %-40s %10s", a.Source, HumanBytes(a.Size))
		if a.Destination != a.Source {
			line += " -> " + a.Destination
		}
		if a.OnDestination != nil && !*a.OnDestination {
			line += "  (not on the destination yet)"
		}
		for _, ph := range []*PhaseResult{a.Mail, a.Calendars, a.Contacts} {
			if ph == nil {
				continue
			}
			line += fmt.Sprintf("  %s: %d to copy, %d present", ph.Phase, ph.Copied, ph.Existing)
			if ph.Skipped > 0 {
				line += fmt.Sprintf(", %d to skip", ph.Skipped)
			}
			if ph.Failed > 0 || ph.Status == StatusFailed {
				line += fmt.Sprintf(", %d failing", ph.Failed)
				if ph.Reason != "" {
					line += " (" + ph.Reason + ")"
				}
			}
		}
		if len(a.VirtualFolders) > 0 {
			line += fmt.Sprintf("  %d virtual folders skipped", len(a.VirtualFolders))
		}
		if a.Error != "" {
			line += "  ERROR: " + a.Error
		}
		b.WriteString(line + "\n")
		for _, ph := range []*PhaseResult{a.Mail, a.Calendars, a.Contacts} {
			if ph == nil {
				continue
			}
			for i, pb := range ph.Problems {
				if i == 5 {
					fmt.Fprintf(&b, "      ... %d more\n", len(ph.Problems)-5)
					break
				}
				fmt.Fprintf(&b, "      %s %s: %s\n", ph.Phase, pb.Item, pb.Reason)
			}
		}
	}
	fmt.Fprintf(&b, "%d accounts, %s in all\n", len(p.Accounts), HumanBytes(size))
	writeShares(&b, p.Shares)
	writeFiles(&b, p.Files)
	if len(p.NotMigrated) > 0 {
		b.WriteString("Not migrated by this procedure:\n")
		for _, n := range p.NotMigrated {
			fmt.Fprintf(&b, "  %s: %s %q: %s\n", n.Account, n.Kind, n.Name, n.Reason)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the preflight report as JSON.
func (p *PreflightReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

func (b *serverBackend) verify(ctx context.Context, a AccountPlan, inv *Inventory, rec *recorder) error {
	var errs []error
	if b.p.HasPhase(PhaseMail) {
		c := b.copier(a, inv, rec)
		c.Checkpoint = nil // verification reads both sides only
		dst, src := b.imapAccounts(a)
		st, err := c.Verify(ctx, dst, src)
		if st != nil {
			mailResult(st, rec, true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("mail: %w", mailAuthError(err)))
		}
	}
	for _, cal := range []bool{true, false} {
		ph := PhaseContacts
		if cal {
			ph = PhaseCalendars
		}
		if !b.p.HasPhase(ph) {
			continue
		}
		dst, src, err := b.davSides(a, cal)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		opts := b.p.Contacts
		if cal {
			opts = b.p.Calendars
		}
		filt := filteredSource{Source: src, include: opts.Include, exclude: opts.Exclude}
		// Verification only reads the checkpoint: it finds there where an
		// object was adopted (Carbonio's UID conflict named another href).
		cp := b.davCheckpoint(rec, a, cal)
		v, err := (&dav.Copier{Rules: davRules(cal), Concurrency: b.p.Concurrency.folders(), Checkpoint: cp}).Verify(ctx, dst, filt)
		if v != nil {
			rec.add(func(r *PhaseResult) {
				for _, c := range v.Collections {
					bad := int64(len(c.Missing) + len(c.Different) + len(c.Duplicates))
					d := Detail{Name: string(ph) + ": " + c.Source, Destination: c.Destination, SourceCount: int64(c.Items),
						DestCount: int64(c.Matched), Failed: bad, Skipped: int64(len(c.Invalid)),
						ToVerify: int64(c.Items), Verified: int64(c.Matched)}
					var notes []string
					if len(c.Missing) > 0 {
						notes = append(notes, fmt.Sprintf("%d missing", len(c.Missing)))
					}
					if len(c.Different) > 0 {
						notes = append(notes, fmt.Sprintf("%d different", len(c.Different)))
					}
					if len(c.Duplicates) > 0 {
						notes = append(notes, fmt.Sprintf("%d duplicated", len(c.Duplicates)))
					}
					if len(c.Invalid) > 0 {
						notes = append(notes, fmt.Sprintf("%d invalid at the source (not copied)", len(c.Invalid)))
					}
					if len(c.Adopted) > 0 {
						notes = append(notes, fmt.Sprintf("%d adopted in another collection", len(c.Adopted)))
					}
					d.Note = strings.Join(notes, "; ")
					r.Details = append(r.Details, d)
					r.Failed += bad
					r.Skipped += d.Skipped
					r.ToVerify += d.ToVerify
					r.Verified += d.Verified
					for _, u := range c.Missing {
						r.Problems = append(r.Problems, Problem{Item: c.Source + " UID " + u, Reason: "missing on the destination"})
					}
					for _, u := range c.Different {
						reason := "different on the destination"
						if w := c.ChangedIn(u); w != "" {
							reason += ": " + w
						}
						r.Problems = append(r.Problems, Problem{Item: c.Source + " UID " + u, Reason: reason})
					}
					for _, u := range c.Duplicates {
						r.Problems = append(r.Problems, Problem{Item: c.Source + " UID " + u, Reason: "more than once on the destination"})
					}
				}
			})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ph, err))
		}
	}
	return errors.Join(errs...)
}
