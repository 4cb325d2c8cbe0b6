package migrate

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
)

func (b *serverBackend) davEndpoints(a AccountPlan) (src, dst dav.Endpoint) {
	mk := func(side string, ep DAVEndpoint, acct string, hc *http.Client, admin *carbonio.Client, hook TokenSource) dav.Endpoint {
		e := dav.Endpoint{URL: strings.TrimSuffix(ep.URL, "/") + "/" + acct + "/", HTTPClient: hc, Account: acct, TrustedOrigins: ep.TrustedOrigins,
			Limits: dav.Limits{MaxMultistatus: ep.MaxMultistatusMiB << 20, MaxObject: ep.MaxObjectMiB << 20, MaxExport: ep.MaxExportMiB << 20}}
		if f := b.hooks.DAVCredentials; f != nil {
			if u, pw, ok := f(side, acct); ok {
				e.User, e.Password = u, pw
				return e
			}
		}
		if ep.Auth == "basic" {
			e.User, e.Password = ep.User, ep.Password
			return e
		}
		switch {
		case hook != nil:
			e.Token = hook
		case admin != nil:
			e.Token = admin
		}
		return e
	}
	return mk("source", b.p.Source.DAV, a.Source, b.srcHTTP, b.srcAdmin, b.hooks.SourceTokens),
		mk("destination", b.p.Destination.DAV, a.Destination, b.dstHTTP, b.dstAdmin, b.hooks.DestinationTokens)
}

// davRules are the rules of calendars (cal) or contacts.
func davRules(cal bool) dav.Rules {
	if cal {
		return caldav.Rules{}
	}
	return carddav.Rules{}
}

func (b *serverBackend) davSides(a AccountPlan, cal bool) (dst dav.Destination, src dav.Source, err error) {
	se, de := b.davEndpoints(a)
	p := davRules(cal).Protocol()
	s, err := dav.NewRemote(p, se)
	if err != nil {
		return nil, nil, err
	}
	d, err := dav.NewRemote(p, de)
	if err != nil {
		return nil, nil, err
	}
	return d, s, nil
}

func (b *serverBackend) dav(ctx context.Context, a AccountPlan, rec *recorder, cal bool) error {
	return b.davCopy(ctx, a, rec, cal, false)
}

func (b *serverBackend) davDry(ctx context.Context, a AccountPlan, rec *recorder, cal bool) error {
	return b.davCopy(ctx, a, rec, cal, true)
}

func (b *serverBackend) davCopy(ctx context.Context, a AccountPlan, rec *recorder, cal, dry bool) error {
	dst, src, err := b.davSides(a, cal)
	if err != nil {
		return err
	}
	opts := b.p.Contacts
	if cal {
		opts = b.p.Calendars
	}
	onEvent := func(ev dav.Event) {
		switch e := ev.(type) {
		case dav.CollectionStarted:
			rec.Progress(0, 0, 0)
		case dav.ObjectDone:
			rec.Step(1, 0)
		case dav.ObjectFailed:
			rec.Problem(e.Collection+"/"+e.Item, false, errText(e.Err))
		}
	}
	var st *dav.Stats
	cp := b.davCheckpoint(rec, a, cal)
	if dry && !opts.Delete {
		// With Delete a dry run reads the records to count what would be
		// deleted; the engine writes nothing in a dry run.
		cp = nil
	}
	filt := filteredSource{Source: src, include: opts.Include, exclude: opts.Exclude}
	c := &dav.Copier{Rules: davRules(cal), Concurrency: b.p.Concurrency.folders(), Checkpoint: cp, DryRun: dry, Delete: opts.Delete, OnEvent: onEvent, Logger: b.log.With("account", a.Source)}
	st, err = c.Copy(ctx, dst, filt)
	if st != nil {
		rec.add(func(r *PhaseResult) {
			for _, c := range st.Collections {
				d := Detail{Name: c.Source, Destination: c.Destination, SourceCount: int64(c.Objects), DestCount: -1,
					Copied: int64(c.Created + c.Updated), Existing: int64(c.Unchanged), Skipped: int64(c.Skipped), Failed: int64(c.Failed)}
				var notes []string
				if c.CollectionCreated {
					notes = append(notes, "collection created")
				}
				if c.Nested != "" {
					notes = append(notes, "flattened from "+c.Nested)
				}
				if c.Repaired > 0 {
					notes = append(notes, fmt.Sprintf("%d repaired", c.Repaired))
				}
				if c.Routed > 0 {
					notes = append(notes, fmt.Sprintf("%d routed to a companion collection", c.Routed))
				}
				if c.Gone {
					notes = append(notes, "not among this run's source collections (gone, or left out by include/exclude); its copies are kept")
				}
				if c.Deleted > 0 {
					notes = append(notes, fmt.Sprintf("%d deleted (gone from the source)", c.Deleted))
				}
				if c.Kept > 0 {
					notes = append(notes, fmt.Sprintf("%d kept: changed on the destination", c.Kept))
				}
				if c.HeldBack > 0 {
					notes = append(notes, fmt.Sprintf("%d deletions held back", c.HeldBack))
				}
				d.Note = strings.Join(notes, "; ")
				r.Details = append(r.Details, d)
				r.Copied += d.Copied
				r.Existing += d.Existing
				r.Skipped += d.Skipped
				r.Failed += d.Failed
				r.Deleted += int64(c.Deleted)
				for _, e := range c.Errors {
					// Failures were reported by ObjectFailed events; the
					// skipped (invalid) ones only here.
					if len(r.Problems) < maxProblems && !hasProblem(r.Problems, c.Source+"/"+e.Item) {
						r.Problems = append(r.Problems, Problem{Item: c.Source + "/" + e.Item, Skipped: true, Reason: e.Reason})
					}
				}
			}
		})
	}
	return err
}

func hasProblem(ps []Problem, item string) bool {
	for _, p := range ps {
		if p.Item == item {
			return true
		}
	}
	return false
}

// filteredSource applies the plan's include/exclude to a DAV source's
// collections.
type filteredSource struct {
	dav.Source
	include, exclude []string
}

func (f filteredSource) Collections(ctx context.Context) ([]dav.Collection, error) {
	cols, err := f.Source.Collections(ctx)
	if err != nil || len(f.include)+len(f.exclude) == 0 {
		return cols, err
	}
	var out []dav.Collection
	for _, c := range cols {
		if matchFilter(f.include, f.exclude, c.Name) {
			out = append(out, c)
		}
	}
	return out, nil
}

// davCheckpoint returns the state store's DAV checkpoint of the account
// pair (nil without a store: the copiers then match objects by UID at the
// destination, which is idempotent too).
func (b *serverBackend) davCheckpoint(rec *recorder, a AccountPlan, cal bool) dav.Checkpoint {
	if rec.store == nil {
		return nil
	}
	key := a.Source + " -> " + a.Destination
	if cal {
		return rec.store.Calendars(key)
	}
	return rec.store.Contacts(key)
}
