package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

func security(s string) imapcopy.Security {
	switch s {
	case "starttls":
		return imapcopy.StartTLS
	case "none":
		return imapcopy.Plaintext
	}
	return imapcopy.ImplicitTLS
}

func (b *serverBackend) imapAccounts(a AccountPlan) (dst, src *imapcopy.Account) {
	s, d := b.p.Source.IMAP, b.p.Destination.IMAP
	src = &imapcopy.Account{Addr: s.Address, Security: security(s.Security), TLSConfig: b.srcTLS,
		User: a.Source, Admin: s.Admin, Password: s.Password,
		IdleTimeout: s.IdleTimeout, MaxLine: s.MaxLineBytes, MaxLiteral: s.MaxLiteralBytes}
	dst = &imapcopy.Account{Addr: d.Address, Security: security(d.Security), TLSConfig: b.dstTLS,
		User: a.Destination, Admin: d.Admin, Password: d.Password,
		IdleTimeout: d.IdleTimeout, MaxLine: d.MaxLineBytes, MaxLiteral: d.MaxLiteralBytes}
	return dst, src
}

func (b *serverBackend) copier(a AccountPlan, inv *Inventory, rec *recorder) *imapcopy.Copier {
	m := b.p.Mail
	c := &imapcopy.Copier{
		Concurrency: b.p.Concurrency.mailFolders(),
		MaxWriters:  m.WritersPerAccount,
		Budget:      b.budget,
		Include:     m.Include,
		Exclude:     m.Exclude,
		Map:         m.Folders,
		SkipDeleted: m.SkipDeleted,
		Delete:      m.Delete,
		MaxSize:     m.MaxSize,
		Logger:      b.log.With("account", a.Source),
	}
	if rec.store != nil {
		c.Checkpoint = rec.store.Mail(a.Source + " -> " + a.Destination)
	}
	if inv != nil && len(inv.SkipFolders) > 0 {
		c.SkipFolder = func(name string) (bool, string) {
			r, ok := inv.SkipFolders[name]
			return ok, r
		}
	}
	return c
}

// mailAuthError turns a refused admin login into errAdminAuth (the whole run
// stops) and leaves a refused authorisation (no such mailbox, no right to
// open it) as the account's own failure.
func mailAuthError(err error) error {
	if err == nil || !errors.Is(err, zxerrors.ErrAuth) {
		return err
	}
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAuthorizationFailed {
		return fmt.Errorf("the admin may not open this mailbox (does it exist?): %w", err)
	}
	return fmt.Errorf("%w: %w", errAdminAuth, err)
}

func (b *serverBackend) Account(ctx context.Context, ph Phase, a AccountPlan, inv *Inventory, rec *recorder) error {
	switch ph {
	case PhaseMail:
		return b.mail(ctx, a, inv, rec)
	case PhaseCalendars:
		return b.dav(ctx, a, rec, true)
	case PhaseContacts:
		return b.dav(ctx, a, rec, false)
	case PhaseVerify:
		return b.verify(ctx, a, inv, rec)
	}
	return fmt.Errorf("migrate: %s is not an account phase", ph)
}

func (b *serverBackend) mail(ctx context.Context, a AccountPlan, inv *Inventory, rec *recorder) error {
	c := b.copier(a, inv, rec)
	c.OnEvent = func(ev imapcopy.Event) {
		switch e := ev.(type) {
		case imapcopy.FolderStarted:
			rec.AddTotal(int64(e.ToCopy))
		case imapcopy.MessageCopied:
			rec.Step(1, e.Bytes)
		default:
			recordMailProblem(rec, ev)
		}
	}
	return b.copyMail(ctx, c, a, rec)
}

// recordMailProblem records a skipped or failed message on rec; other
// events are ignored.
func recordMailProblem(rec *recorder, ev imapcopy.Event) {
	switch e := ev.(type) {
	case imapcopy.MessageSkipped:
		rec.Problem(fmt.Sprintf("%s UID %d", e.Folder, e.UID), true, e.Reason)
	case imapcopy.MessageFailed:
		rec.Problem(fmt.Sprintf("%s UID %d", e.Folder, e.UID), false, errText(e.Err))
	}
}

// copyMail runs c for account a and records its result on rec.
func (b *serverBackend) copyMail(ctx context.Context, c *imapcopy.Copier, a AccountPlan, rec *recorder) error {
	dst, src := b.imapAccounts(a)
	st, err := c.Copy(ctx, dst, src)
	if st != nil {
		mailResult(st, rec, false)
	}
	return mailAuthError(err)
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// mailResult folds imapcopy stats into the phase result.
func mailResult(st *imapcopy.Stats, rec *recorder, verify bool) {
	rec.add(func(r *PhaseResult) {
		cancelled := 0
		defer func() {
			if cancelled > 0 {
				r.Problems = append(r.Problems, Problem{Item: "folders", Reason: fmt.Sprintf("%d folders not copied or not finished: the run was stopped", cancelled)})
			}
		}()
		for _, f := range st.Folders {
			if f.Cancelled {
				cancelled++ // one line per account, not one per folder
				continue
			}
			d := Detail{Name: f.Source, Destination: f.Destination, SourceCount: int64(f.SourceCount), DestCount: int64(f.DestCount),
				Copied: int64(f.Copied), Existing: int64(f.AlreadyPresent), Skipped: int64(len(f.SkippedItems)), Failed: int64(len(f.Failed))}
			var notes []string
			switch {
			case f.Skipped != "":
				notes = append(notes, "skipped: "+f.Skipped)
			case f.NoSelect:
				notes = append(notes, "\\Noselect parent")
			case f.Unchanged:
				notes = append(notes, "unchanged since the last pass")
			}
			if f.Renamed != "" {
				notes = append(notes, "renamed: "+f.Renamed)
			}
			if len(f.Keywords) > 0 {
				notes = append(notes, fmt.Sprintf("%d messages with sanitised keywords", len(f.Keywords)))
			}
			if f.Deleted > 0 {
				notes = append(notes, fmt.Sprintf("%d copies deleted (gone from the source)", f.Deleted))
			}
			if !verify {
				d.Failed += int64(len(f.DeleteFailed))
			}
			if f.Err != "" {
				notes = append(notes, "error: "+f.Err)
				d.Failed++
			}
			if v := f.Verify; v != nil {
				d.SourceCount, d.DestCount = int64(v.SourceCount), int64(v.DestCount)
				if verify {
					d.Failed = int64(v.Missing + v.Duplicated + v.FlagMismatches + v.BodyMismatches)
					d.Skipped = int64(v.Skipped)
					// Of the source messages not skipped on purpose, those
					// neither missing nor different are proven copied.
					d.ToVerify = int64(max(v.SourceCount-v.Skipped, 0))
					d.Verified = max(d.ToVerify-int64(v.Missing+v.FlagMismatches), 0)
				}
				if v.Missing > 0 || v.Duplicated > 0 || v.FlagMismatches > 0 {
					notes = append(notes, fmt.Sprintf("verify: %d missing, %d duplicated, %d flag/date mismatches", v.Missing, v.Duplicated, v.FlagMismatches))
				}
				if v.BodyMismatches > 0 {
					notes = append(notes, fmt.Sprintf("verify: %d of %d sampled bodies differ", v.BodyMismatches, v.Sampled))
				}
				if v.Extra > 0 {
					notes = append(notes, fmt.Sprintf("%d extra on the destination", v.Extra))
				}
			}
			d.Note = strings.Join(notes, "; ")
			r.Details = append(r.Details, d)
			if verify {
				r.Failed += d.Failed
				r.Skipped += d.Skipped
				r.ToVerify += d.ToVerify
				r.Verified += d.Verified
				if f.Err != "" {
					r.Problems = append(r.Problems, Problem{Item: f.Source, Reason: f.Err})
				}
				if v := f.Verify; v != nil && v.Missing > 0 {
					r.Problems = append(r.Problems, Problem{Item: f.Source,
						Reason: fmt.Sprintf("%d of %d messages missing on the destination (e.g. UIDs %v)", v.Missing, v.SourceCount, v.Examples)})
				}
				if v := f.Verify; v != nil && v.Duplicated > 0 {
					r.Problems = append(r.Problems, Problem{Item: f.Source,
						Reason: fmt.Sprintf("%d duplicate copies on the destination", v.Duplicated)})
				}
				if v := f.Verify; v != nil && v.FlagMismatches > 0 {
					r.Problems = append(r.Problems, Problem{Item: f.Source, Reason: fmt.Sprintf("%d messages with different flags or dates", v.FlagMismatches)})
				}
				if v := f.Verify; v != nil && v.BodyMismatches > 0 {
					r.Problems = append(r.Problems, Problem{Item: f.Source, Reason: fmt.Sprintf("%d messages whose bytes differ on the destination (e.g. UIDs %v)", v.BodyMismatches, v.BodyExamples)})
				}
				continue
			}
			r.Copied += d.Copied
			r.Existing += d.Existing
			r.Skipped += d.Skipped
			r.Failed += d.Failed
			r.Bytes += f.Bytes
			r.Deleted += int64(f.Deleted)
			// Every keyword change is listed per message. A dropped
			// keyword loses information: counted as changed, so the phase
			// ends partial (as `migrate mail` exits 3); a keyword
			// renamed by the documented rule is counted as translated.
			for _, k := range f.Keywords {
				if k.Lost() {
					r.Changed++
				} else {
					r.Translated++
				}
			}
			for _, k := range f.Keywords {
				if len(r.Problems) >= maxProblems {
					r.ProblemsOmitted++
					continue
				}
				var ch []string
				for _, c := range k.Changes {
					to := c.To
					if to == "" {
						to = "(dropped)"
					}
					ch = append(ch, fmt.Sprintf("%s -> %s (%s)", c.From, to, c.Reason))
				}
				r.Problems = append(r.Problems, Problem{Item: fmt.Sprintf("%s UID %d", f.Source, k.UID), Changed: k.Lost(), Translated: !k.Lost(),
					Reason: "keywords changed: " + strings.Join(ch, "; ")})
			}
			if f.Err != "" {
				r.Problems = append(r.Problems, Problem{Item: f.Source, Reason: f.Err})
			}
			for _, it := range f.DeleteFailed {
				r.Problems = append(r.Problems, Problem{Item: fmt.Sprintf("%s UID %d", f.Source, it.UID), Reason: it.Reason})
			}
		}
	})
}
