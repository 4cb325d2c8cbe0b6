package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/zxmigrate/zxmigrate/carbonio"
)

// ShareItem is one grant, mountpoint or saved search the shares phase
// handled, with its outcome.
type ShareItem struct {
	// Account is the source mailbox: the folder's owner for a grant, the
	// mailbox holding the link or the search otherwise.
	Account string `json:"account"`
	// Destination is the destination mailbox.
	Destination string `json:"destination"`
	// Kind is "grant", "mountpoint" or "search".
	Kind string `json:"kind"`
	// Folder is the folder path ("Calendar", "Inbox/Projects").
	Folder string `json:"folder"`
	// Grantee is a grant's grantee type and mapped name ("usr
	// bob@example.net", "all"); for a mountpoint, the owner and the
	// owner's folder path on the destination.
	Grantee string `json:"grantee,omitempty"`
	// Perm is a grant's rights (r, w, i, d, a, x, p, f, c).
	Perm    string       `json:"perm,omitempty"`
	Outcome ShareOutcome `json:"outcome"`          // what the phase did
	Reason  string       `json:"reason,omitempty"` // why, for an item not created or updated
}

// ShareOutcome says what the shares phase did with an item.
type ShareOutcome string

// Share outcomes.
const (
	ShareCreated     ShareOutcome = "created"           // created on the destination
	ShareUpdated     ShareOutcome = "updated"           // a grant existed with other rights; now has the source's
	ShareUnchanged   ShareOutcome = "unchanged"         // already on the destination as on the source
	ShareSkipped     ShareOutcome = "skipped"           // cannot be re-created now; Reason says why
	ShareInvitation  ShareOutcome = "invitation_needed" // a guest or key grant: its secret is not readable
	ShareFailed      ShareOutcome = "failed"            // the destination refused it
	ShareWouldCreate ShareOutcome = "would_create"      // dry run
	ShareWouldUpdate ShareOutcome = "would_update"      // dry run
)

// Share kinds.
const (
	ShareGrant      = "grant"
	ShareMountpoint = "mountpoint"
	ShareSearch     = "search"
)

// shareSource is what the shares phase reads from the source.
type shareSource interface {
	Folders(ctx context.Context, account string) ([]carbonio.Folder, error)
}

// shareDestination is what the shares phase reads and writes on the
// destination; *carbonio.Client satisfies it.
type shareDestination interface {
	shareSource
	GranteeID(ctx context.Context, typ, name string) (string, error)
	Grant(ctx context.Context, account, folderID string, g carbonio.Grant) error
	CreateMountpoint(ctx context.Context, account string, m carbonio.Mountpoint) (string, error)
	CreateSearchFolder(ctx context.Context, account string, s carbonio.SearchFolder) (string, error)
}

// sharer re-creates the shares of the selected accounts: first every grant
// (a mountpoint needs its grant), then mountpoints, then saved searches.
// It reads the destination before writing, so a second run writes
// nothing. Not safe for concurrent use.
type sharer struct {
	plan   *Plan
	src    shareSource
	dst    shareDestination
	dryRun bool
	log    *slog.Logger

	srcFolders map[string][]carbonio.Folder
	dstFolders map[string][]carbonio.Folder
	grantees   map[string]granteeLookup
	items      []ShareItem
}

type granteeLookup struct {
	id  string
	err error
}

func newSharer(p *Plan, src shareSource, dst shareDestination, dryRun bool, log *slog.Logger) *sharer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &sharer{plan: p, src: src, dst: dst, dryRun: dryRun, log: log,
		srcFolders: map[string][]carbonio.Folder{}, dstFolders: map[string][]carbonio.Folder{}, grantees: map[string]granteeLookup{}}
}

func (s *sharer) source(ctx context.Context, acct string) ([]carbonio.Folder, error) {
	acct = strings.ToLower(acct)
	if fs, ok := s.srcFolders[acct]; ok {
		return fs, nil
	}
	fs, err := s.src.Folders(ctx, acct)
	if err != nil {
		return nil, err
	}
	s.srcFolders[acct] = fs
	return fs, nil
}

func (s *sharer) destination(ctx context.Context, acct string) ([]carbonio.Folder, error) {
	acct = strings.ToLower(acct)
	if fs, ok := s.dstFolders[acct]; ok {
		return fs, nil
	}
	fs, err := s.dst.Folders(ctx, acct)
	if err != nil {
		return nil, err
	}
	s.dstFolders[acct] = fs
	return fs, nil
}

func byPath(fs []carbonio.Folder, p string) (carbonio.Folder, bool) {
	for _, f := range fs {
		if strings.EqualFold(f.Path, p) {
			return f, true
		}
	}
	return carbonio.Folder{}, false
}

func byID(fs []carbonio.Folder, id string) (carbonio.Folder, bool) {
	for _, f := range fs {
		if id != "" && carbonio.LocalID(f.ID) == carbonio.LocalID(id) {
			return f, true
		}
	}
	return carbonio.Folder{}, false
}

// parentID returns the destination id of the parent of path p.
func parentID(fs []carbonio.Folder, p string) (string, bool) {
	dir := path.Dir(p)
	if dir == "." || dir == "/" || dir == "" {
		return carbonio.RootFolderID, true
	}
	f, ok := byPath(fs, dir)
	return f.ID, ok && f.Kind == carbonio.KindFolder
}

// samePerm compares rights strings as sets of letters.
func samePerm(a, b string) bool {
	x, y := []rune(a), []rune(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// mapGrantee returns the destination name of a usr, grp or dom grantee.
func (s *sharer) mapGrantee(typ, name string) string {
	name = strings.ToLower(name)
	if typ == carbonio.GranteeDomain {
		if to, ok := s.plan.Map.Domains[name]; ok {
			return strings.ToLower(to)
		}
		return name
	}
	return strings.ToLower(s.plan.MapAddress(name))
}

func (s *sharer) granteeID(ctx context.Context, typ, name string) (string, error) {
	k := typ + " " + name
	if l, ok := s.grantees[k]; ok {
		return l.id, l.err
	}
	id, err := s.dst.GranteeID(ctx, typ, name)
	if err != nil && !isMissing(err) {
		return "", err // not cached: a transient failure may pass next time
	}
	s.grantees[k] = granteeLookup{id, err}
	return id, err
}

func isMissing(err error) bool {
	return errors.Is(err, carbonio.ErrNoSuchAccount) || errors.Is(err, carbonio.ErrNoSuchDistList) ||
		errors.Is(err, carbonio.ErrNoSuchDomain)
}

// fatal reports whether err should stop the phase: the run itself is
// doomed (refused admin credentials, cancelled context).
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, carbonio.ErrAuthFailed)
}

func (s *sharer) add(it ShareItem) { s.items = append(s.items, it) }

// run handles the shares of accts and returns every item with its outcome.
// The error is non-nil only when the phase cannot go on.
func (s *sharer) run(ctx context.Context, accts []AccountPlan) ([]ShareItem, error) {
	for _, step := range []func(context.Context, AccountPlan, []carbonio.Folder) error{s.grants, s.mountpoints, s.searches} {
		for _, a := range accts {
			fs, err := s.source(ctx, a.Source)
			if err != nil {
				if fatal(ctx, err) {
					return s.items, err
				}
				s.add(ShareItem{Account: a.Source, Destination: a.Destination, Kind: ShareGrant, Outcome: ShareFailed,
					Reason: "cannot read the source folders: " + err.Error()})
				continue
			}
			if err := step(ctx, a, fs); err != nil {
				return s.items, err
			}
		}
	}
	return s.items, nil
}

// grants re-creates the grants of a's folders.
func (s *sharer) grants(ctx context.Context, a AccountPlan, src []carbonio.Folder) error {
	for _, f := range src {
		if f.Kind != carbonio.KindFolder || len(f.Grants) == 0 {
			continue
		}
		dfs, derr := s.destination(ctx, a.Destination)
		df, found := byPath(dfs, f.Path)
		for _, g := range f.Grants {
			it := ShareItem{Account: a.Source, Destination: a.Destination, Kind: ShareGrant, Folder: f.Path, Perm: g.Perm}
			switch g.Type {
			case carbonio.GranteeGuest, carbonio.GranteeKey:
				it.Grantee = g.Type + " " + g.Grantee
				it.Outcome = ShareInvitation
				it.Reason = "an external share: its password or access key is never returned by the source; invite the guest again from the destination"
				s.add(it)
				continue
			case carbonio.GranteeAll, carbonio.GranteePublic:
				it.Grantee = g.Type
			case carbonio.GranteeUser, carbonio.GranteeGroup, carbonio.GranteeDomain:
				if g.Grantee == "" || g.Grantee == g.ZID {
					it.Grantee, it.Outcome = g.Type+" "+g.ZID, ShareSkipped
					it.Reason = "the source names this grantee only by id (deleted from the directory?)"
					s.add(it)
					continue
				}
				it.Grantee = g.Type + " " + s.mapGrantee(g.Type, g.Grantee)
			default:
				it.Grantee, it.Outcome = g.Type+" "+g.Grantee, ShareSkipped
				it.Reason = fmt.Sprintf("grantee type %q is not re-created (class-of-service ids differ between servers)", g.Type)
				s.add(it)
				continue
			}
			if derr != nil {
				if fatal(ctx, derr) {
					return derr
				}
				it.Outcome, it.Reason = ShareFailed, "cannot read the destination folders: "+derr.Error()
				if errors.Is(derr, carbonio.ErrNoSuchAccount) {
					it.Outcome, it.Reason = ShareSkipped, "the account is not on the destination (not provisioned yet?)"
				}
				s.add(it)
				continue
			}
			if !found || df.Kind != carbonio.KindFolder {
				it.Outcome, it.Reason = ShareSkipped, "the folder is not on the destination"
				s.add(it)
				continue
			}
			want := carbonio.Grant{Type: g.Type, Perm: g.Perm}
			if g.Type != carbonio.GranteeAll && g.Type != carbonio.GranteePublic {
				want.Grantee = s.mapGrantee(g.Type, g.Grantee)
				id, err := s.granteeID(ctx, g.Type, want.Grantee)
				if err != nil {
					if fatal(ctx, err) {
						return err
					}
					it.Outcome = ShareSkipped
					if isMissing(err) {
						it.Reason = "the grantee does not exist on the destination"
					} else {
						it.Outcome, it.Reason = ShareFailed, "grantee lookup: "+err.Error()
					}
					s.add(it)
					continue
				}
				want.ZID = id
			}
			var have *carbonio.Grant
			for i, h := range df.Grants {
				if h.Type == want.Type && (want.ZID == "" || h.ZID == want.ZID || strings.EqualFold(h.Grantee, want.Grantee)) {
					have = &df.Grants[i]
					break
				}
			}
			switch {
			case have != nil && samePerm(have.Perm, want.Perm):
				it.Outcome = ShareUnchanged
				s.add(it)
				continue
			case have != nil:
				it.Outcome, it.Reason = ShareUpdated, fmt.Sprintf("the destination grant had rights %q", have.Perm)
			default:
				it.Outcome = ShareCreated
			}
			if s.dryRun {
				it.Outcome = map[ShareOutcome]ShareOutcome{ShareCreated: ShareWouldCreate, ShareUpdated: ShareWouldUpdate}[it.Outcome]
				s.add(it)
				continue
			}
			if err := s.dst.Grant(ctx, a.Destination, df.ID, want); err != nil {
				if fatal(ctx, err) {
					return err
				}
				it.Outcome, it.Reason = ShareFailed, err.Error()
			}
			s.add(it)
		}
	}
	return nil
}

// mountpoints re-creates a's links to other accounts' folders. The
// owner's folder is found by its path: the source's ids mean nothing on
// the destination.
func (s *sharer) mountpoints(ctx context.Context, a AccountPlan, src []carbonio.Folder) error {
	for _, f := range src {
		if f.Kind != carbonio.KindLink {
			continue
		}
		it := ShareItem{Account: a.Source, Destination: a.Destination, Kind: ShareMountpoint, Folder: f.Path}
		skip := func(reason string) { it.Outcome, it.Reason = ShareSkipped, reason; s.add(it) }
		if f.Owner == "" {
			skip("the source does not name the owner of the shared folder")
			continue
		}
		ofs, err := s.source(ctx, f.Owner)
		if err != nil {
			if fatal(ctx, err) {
				return err
			}
			skip("cannot read the owner's folders on the source: " + err.Error())
			continue
		}
		of, ok := byID(ofs, f.RemoteID)
		if !ok {
			skip(fmt.Sprintf("the shared folder (id %s of %s) no longer exists on the source", f.RemoteID, f.Owner))
			continue
		}
		owner := strings.ToLower(s.plan.MapAddress(strings.ToLower(f.Owner)))
		it.Grantee = owner + " " + of.Path
		dofs, err := s.destination(ctx, owner)
		if err != nil {
			if fatal(ctx, err) {
				return err
			}
			skip("cannot read the owner's folders on the destination: " + err.Error())
			continue
		}
		dof, ok := byPath(dofs, of.Path)
		if !ok || dof.Kind != carbonio.KindFolder {
			skip("the owner's folder is not on the destination")
			continue
		}
		dfs, err := s.destination(ctx, a.Destination)
		if err != nil {
			if fatal(ctx, err) {
				return err
			}
			skip("cannot read the destination folders: " + err.Error())
			continue
		}
		if ex, ok := byPath(dfs, f.Path); ok {
			ownerID, _ := s.granteeID(ctx, carbonio.GranteeUser, owner)
			if ex.Kind == carbonio.KindLink && carbonio.LocalID(ex.RemoteID) == carbonio.LocalID(dof.ID) &&
				(strings.EqualFold(ex.Owner, owner) || ownerID != "" && ex.OwnerID == ownerID) {
				it.Outcome = ShareUnchanged
				s.add(it)
			} else {
				skip("another folder with this name exists on the destination")
			}
			continue
		}
		pid, ok := parentID(dfs, f.Path)
		if !ok {
			skip("the parent folder is not on the destination")
			continue
		}
		if s.dryRun {
			it.Outcome = ShareWouldCreate
			s.add(it)
			continue
		}
		_, err = s.dst.CreateMountpoint(ctx, a.Destination, carbonio.Mountpoint{Name: path.Base(f.Path), ParentID: pid,
			View: f.View, Owner: owner, RemoteID: dof.ID, Color: f.Color})
		switch {
		case err == nil:
			it.Outcome = ShareCreated
			delete(s.dstFolders, strings.ToLower(a.Destination))
		case fatal(ctx, err):
			return err
		case errors.Is(err, carbonio.ErrAlreadyExists):
			it.Outcome, it.Reason = ShareSkipped, "another folder with this name exists on the destination"
		default:
			it.Outcome, it.Reason = ShareFailed, err.Error()
		}
		s.add(it)
	}
	return nil
}

// searches re-creates a's saved searches.
func (s *sharer) searches(ctx context.Context, a AccountPlan, src []carbonio.Folder) error {
	for _, f := range src {
		if f.Kind != carbonio.KindSearch {
			continue
		}
		it := ShareItem{Account: a.Source, Destination: a.Destination, Kind: ShareSearch, Folder: f.Path}
		skip := func(reason string) { it.Outcome, it.Reason = ShareSkipped, reason; s.add(it) }
		if f.Query == "" {
			skip("the source gives no query for this search")
			continue
		}
		dfs, err := s.destination(ctx, a.Destination)
		if err != nil {
			if fatal(ctx, err) {
				return err
			}
			skip("cannot read the destination folders: " + err.Error())
			continue
		}
		if ex, ok := byPath(dfs, f.Path); ok {
			if ex.Kind == carbonio.KindSearch && ex.Query == f.Query {
				it.Outcome = ShareUnchanged
				s.add(it)
			} else {
				skip("another folder with this name exists on the destination")
			}
			continue
		}
		pid, ok := parentID(dfs, f.Path)
		if !ok {
			skip("the parent folder is not on the destination")
			continue
		}
		if s.dryRun {
			it.Outcome = ShareWouldCreate
			s.add(it)
			continue
		}
		_, err = s.dst.CreateSearchFolder(ctx, a.Destination, carbonio.SearchFolder{Name: path.Base(f.Path), ParentID: pid,
			Query: f.Query, Types: f.Types, SortBy: f.SortBy, Color: f.Color})
		switch {
		case err == nil:
			it.Outcome = ShareCreated
			delete(s.dstFolders, strings.ToLower(a.Destination))
		case fatal(ctx, err):
			return err
		case errors.Is(err, carbonio.ErrAlreadyExists):
			it.Outcome, it.Reason = ShareSkipped, "another folder with this name exists on the destination"
		default:
			it.Outcome, it.Reason = ShareFailed, err.Error()
		}
		s.add(it)
	}
	return nil
}

// shares runs the shares phase: it records every item in the phase
// result, counts created and updated items as copied, unchanged ones as
// existing, and lists guest and key grants as not migrated.
func (b *serverBackend) shares(ctx context.Context, accts []AccountPlan, rec *recorder) error {
	if b.srcAdmin == nil {
		return errors.New("migrate: shares: no source admin API configured (source.admin)")
	}
	sh := newSharer(b.p, b.srcAdmin, b.dstAdmin, false, b.log)
	items, err := sh.run(ctx, accts)
	recordShares(rec, items)
	return err
}

// recordShares adds the items to the phase result.
func recordShares(rec *recorder, items []ShareItem) {
	for _, it := range items {
		label := fmt.Sprintf("%s %s of %s", it.Kind, it.Folder, it.Account)
		if it.Grantee != "" {
			label += " (" + it.Grantee + ")"
		}
		switch it.Outcome {
		case ShareSkipped:
			rec.Problem(label, true, it.Reason)
		case ShareFailed:
			rec.Problem(label, false, it.Reason)
		}
		rec.add(func(r *PhaseResult) {
			r.Shares = append(r.Shares, it)
			switch it.Outcome {
			case ShareCreated, ShareUpdated:
				r.Copied++
			case ShareUnchanged:
				r.Existing++
			case ShareSkipped:
				r.Skipped++
			case ShareFailed:
				r.Failed++
			case ShareInvitation:
				r.NotMigrated = append(r.NotMigrated, NotMigrated{Account: it.Account, Kind: "share", Name: it.Folder + " (" + it.Grantee + ")", Reason: it.Reason})
			}
		})
	}
}

// writeShares renders the shares section of the text reports: counts by
// outcome, then every item that was not created or found unchanged.
func writeShares(b *strings.Builder, items []ShareItem) {
	if len(items) == 0 {
		return
	}
	counts := map[ShareOutcome]int{}
	for _, it := range items {
		counts[it.Outcome]++
	}
	var parts []string
	for _, o := range []ShareOutcome{ShareCreated, ShareUpdated, ShareUnchanged, ShareWouldCreate, ShareWouldUpdate, ShareSkipped, ShareInvitation, ShareFailed} {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], strings.ReplaceAll(string(o), "_", " ")))
		}
	}
	fmt.Fprintf(b, "Shares: %s\n", strings.Join(parts, ", "))
	for _, it := range items {
		switch it.Outcome {
		case ShareCreated, ShareUnchanged:
			continue
		}
		line := fmt.Sprintf("  %s %s %s %q", it.Outcome, it.Account, it.Kind, it.Folder)
		if it.Grantee != "" {
			line += " " + it.Grantee
		}
		if it.Perm != "" {
			line += " (" + it.Perm + ")"
		}
		if it.Reason != "" {
			line += ": " + it.Reason
		}
		b.WriteString(line + "\n")
	}
}
