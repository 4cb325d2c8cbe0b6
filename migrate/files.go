package migrate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/files"
)

// filesURLs returns the source REST origin and the destination Files
// origin of the files phase (see FilesEndpoint).
func (p *Plan) filesURLs() (src, dst string, err error) {
	src = p.Source.Files.URL
	if src == "" {
		src = p.Source.Admin.URL
	}
	dst = p.Destination.Files.URL
	if dst == "" && p.Destination.DAV.URL != "" {
		u, err := url.Parse(p.Destination.DAV.URL)
		if err != nil {
			return "", "", fmt.Errorf("migrate: files: destination.dav.url: %w", err)
		}
		dst = u.Scheme + "://" + u.Host
	}
	if src == "" {
		return "", "", errors.New("migrate: files: no source REST URL (source.files.url or source.admin.url)")
	}
	if dst == "" {
		return "", "", errors.New("migrate: files: no Carbonio Files URL (destination.files.url or destination.dav.url)")
	}
	return src, dst, nil
}

// files runs the files phase: for each selected account, each source
// folder with the document view is copied into the destination user's
// Files home under the same path, every revision as a version in order,
// then verified (latest revision's SHA-256 and version count). The state
// maps each document to its node, and the destination is looked up by
// parent and name before anything is created, so a re-run or a resumed
// run uploads nothing twice.
func (b *serverBackend) files(ctx context.Context, accts []AccountPlan, rec *recorder) error {
	if b.srcAdmin == nil || b.dstAdmin == nil {
		return errors.New("migrate: files: the source and destination admin APIs are needed (source.admin, destination.admin)")
	}
	srcURL, dstURL, err := b.p.filesURLs()
	if err != nil {
		return err
	}
	var store files.Store = &files.MemStore{}
	if rec.store != nil {
		store = rec.store.Files()
	}
	m := b.filesMigrator(srcURL, dstURL, store)
	for _, a := range accts {
		paths, err := b.briefcases(ctx, a)
		if err != nil {
			return err
		}
		for _, path := range paths {
			items, err := m.Folder(ctx, a.Source, a.Destination, path)
			recordFiles(rec, items)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				rec.Problem(fmt.Sprintf("briefcase %s of %s", path, a.Source), false, err.Error())
				continue
			}
			checks, err := m.Verify(ctx, a.Source, a.Destination, path)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				rec.Problem(fmt.Sprintf("verify briefcase %s of %s", path, a.Source), false, err.Error())
				continue
			}
			for _, c := range checks {
				if c.Outcome == files.Mismatch {
					recordFiles(rec, []files.Item{c})
				}
			}
		}
	}
	return nil
}

func (b *serverBackend) filesMigrator(srcURL, dstURL string, store files.Store) *files.Migrator {
	return &files.Migrator{
		Src:    &files.Source{URL: srcURL, Tokens: b.srcAdmin, HTTPClient: b.srcHTTP},
		Dst:    &files.Dest{URL: dstURL, Tokens: b.dstAdmin, HTTPClient: b.dstHTTP},
		Store:  store,
		Limits: files.Limits{MaxSize: b.p.Destination.Files.MaxFileMiB << 20},
	}
}

// briefcases lists the source folders of a with the document view.
func (b *serverBackend) briefcases(ctx context.Context, a AccountPlan) ([]string, error) {
	fs, err := b.srcAdmin.Folders(ctx, a.Source)
	if err != nil {
		return nil, fmt.Errorf("migrate: files: folders of %s: %w", a.Source, err)
	}
	var out []string
	for _, f := range fs {
		if f.Kind == carbonio.KindFolder && f.View == "document" {
			out = append(out, f.Path)
		}
	}
	return out, nil
}

// filesDryRun lists what the files phase would copy, reading the source
// only (for preflight).
func (b *serverBackend) filesDryRun(ctx context.Context, accts []AccountPlan) ([]files.Item, error) {
	srcURL, dstURL, err := b.p.filesURLs()
	if err != nil {
		return nil, err
	}
	m := b.filesMigrator(srcURL, dstURL, &files.MemStore{})
	var all []files.Item
	for _, a := range accts {
		paths, err := b.briefcases(ctx, a)
		if err != nil {
			return all, err
		}
		for _, p := range paths {
			items, err := m.DryRun(ctx, a.Source, p)
			all = append(all, items...)
			if err != nil {
				return all, err
			}
		}
	}
	return all, nil
}

// recordFiles adds the items to the phase result.
func recordFiles(rec *recorder, items []files.Item) {
	for _, it := range items {
		label := fmt.Sprintf("document %s/%s of %s", it.Folder, it.Name, it.Account)
		switch it.Outcome {
		case files.Skipped:
			rec.Problem(label, true, it.Reason)
		case files.Failed, files.Mismatch:
			rec.Problem(label, false, it.Reason)
		}
		rec.add(func(r *PhaseResult) {
			r.Files = append(r.Files, it)
			switch it.Outcome {
			case files.Created, files.Updated:
				r.Copied++
			case files.Unchanged:
				r.Existing++
			case files.Skipped:
				r.Skipped++
			case files.Failed, files.Mismatch:
				r.Failed++
			}
		})
	}
}

// writeFiles renders the files section of the text report: counts by
// outcome, then every document not created or unchanged.
func writeFiles(b *strings.Builder, items []files.Item) {
	if len(items) == 0 {
		return
	}
	counts := map[files.Outcome]int{}
	versions, toCopy := 0, 0
	for _, it := range items {
		counts[it.Outcome]++
		versions += it.Uploaded
		if it.Outcome == files.WouldCopy {
			toCopy += it.Versions
		}
	}
	var parts []string
	for _, o := range []files.Outcome{files.Created, files.Updated, files.Unchanged, files.WouldCopy, files.Skipped, files.Failed, files.Mismatch} {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], strings.ReplaceAll(string(o), "_", " ")))
		}
	}
	if counts[files.WouldCopy] > 0 {
		fmt.Fprintf(b, "Files (Briefcase): %s; %d revisions to copy\n", strings.Join(parts, ", "), toCopy)
	} else {
		fmt.Fprintf(b, "Files (Briefcase): %s; %d versions uploaded\n", strings.Join(parts, ", "), versions)
	}
	for _, it := range items {
		switch it.Outcome {
		case files.Created, files.Unchanged, files.Updated, files.WouldCopy:
			continue
		}
		fmt.Fprintf(b, "  %s %s %q: %s\n", it.Outcome, it.Account, it.Folder+"/"+it.Name, it.Reason)
	}
}
