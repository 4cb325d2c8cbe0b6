package files

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Mapping is what the state keeps of one migrated document: its Files node
// and how many of its source revisions are uploaded.
type Mapping struct {
	// NodeID is the Files node the document became.
	NodeID string
	// Versions is how many source revisions are uploaded.
	Versions int
}

// Store keeps the mapping of source documents to Files nodes, so that a
// re-run uploads nothing twice.
type Store interface {
	// Node returns the mapping of the source document id of account.
	Node(ctx context.Context, account, srcID string) (Mapping, bool, error)
	// SetNode records it.
	SetNode(ctx context.Context, account, srcID string, m Mapping) error
}

// MemStore is an in-memory Store, for tests and dry runs.
type MemStore struct {
	mu sync.Mutex
	m  map[string]Mapping
}

// Node implements Store.
func (s *MemStore) Node(_ context.Context, account, srcID string) (Mapping, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.m[account+"\x00"+srcID]
	return m, ok, nil
}

// SetNode implements Store.
func (s *MemStore) SetNode(_ context.Context, account, srcID string, m Mapping) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Mapping{}
	}
	s.m[account+"\x00"+srcID] = m
	return nil
}

// Outcome says what the phase did with one document.
type Outcome string

// Outcomes.
const (
	Created   Outcome = "created"    // a new Files node with all its revisions
	Updated   Outcome = "updated"    // missing versions added to an existing node
	Unchanged Outcome = "unchanged"  // nothing to upload
	Skipped   Outcome = "skipped"    // a size or type limit, or a conflict; Reason says which
	Failed    Outcome = "failed"     // the source or the destination refused it
	Verified  Outcome = "verified"   // Verify: bytes and version count match
	WouldCopy Outcome = "would_copy" // DryRun: its revisions would be copied (or found)
	Mismatch  Outcome = "mismatch"   // Verify: they differ; Reason says how
)

// Item is one document the phase handled.
type Item struct {
	// Account is the source account.
	Account string `json:"account"`
	// Folder is the Briefcase folder path, e.g. "Briefcase/Projects".
	Folder string `json:"folder"`
	// Name is the document's name.
	Name string `json:"name"`
	// Outcome is what the phase did with it.
	Outcome Outcome `json:"outcome"`
	// Versions is the number of source revisions.
	Versions int `json:"versions"`
	// Uploaded is the number of versions this run uploaded.
	Uploaded int `json:"uploaded,omitempty"`
	// Reason says why an item failed, was skipped or does not match.
	Reason string `json:"reason,omitempty"`
}

// Limits bounds what is uploaded; an item over a limit is reported, not
// uploaded.
type Limits struct {
	// MaxSize is the largest revision uploaded, in bytes; 0 means no limit.
	MaxSize int64
	// RefusedTypes lists content types that are not uploaded, e.g. Zimbra's
	// own wiki documents (application/x-zimbra-doc), which Files cannot
	// open. Nil means DefaultRefusedTypes.
	RefusedTypes []string
}

// DefaultRefusedTypes are the content types skipped when Limits.RefusedTypes
// is nil: Zimbra Documents (HTML pages in the Zimbra editor's format).
var DefaultRefusedTypes = []string{"application/x-zimbra-doc"}

// Migrator copies Briefcase folders into Files: the source folder
// "Briefcase/Projects" becomes Briefcase/Projects in the user's home
// (LOCAL_ROOT). Set the fields before the first call; not safe for
// concurrent use.
type Migrator struct {
	// Src reads the source's Briefcase.
	Src *Source
	// Dst writes the destination's Files.
	Dst *Dest
	// Store remembers what was uploaded, so that a second run resumes.
	Store Store
	// Limits bound what is uploaded.
	Limits Limits

	folders map[string]string // dstAccount + "\x00" + path → node id
}

// folder returns the Files node id of path (a source folder path such as
// "Briefcase/Projects"), creating missing folders: each is looked up by
// parent and name before createFolder, so a re-run or a resumed run makes
// none twice.
func (m *Migrator) folder(ctx context.Context, account, path string) (string, error) {
	if m.folders == nil {
		m.folders = map[string]string{}
	}
	id := LocalRoot
	sofar := ""
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg == "" {
			continue
		}
		sofar += "/" + seg
		key := account + "\x00" + sofar
		if c, ok := m.folders[key]; ok {
			id = c
			continue
		}
		n, found, err := m.Dst.Child(ctx, account, id, seg)
		if err != nil {
			return "", err
		}
		switch {
		case found && !n.IsFolder():
			return "", fmt.Errorf("files: %s exists on the destination and is not a folder", sofar)
		case !found:
			if n, err = m.Dst.CreateFolder(ctx, account, id, seg); err != nil {
				return "", err
			}
		}
		m.folders[key] = n.ID
		id = n.ID
	}
	return id, nil
}

// overLimit says why revs are not uploaded, or "".
func (m *Migrator) overLimit(revs []Revision) string {
	if m.Limits.MaxSize <= 0 {
		return ""
	}
	for _, r := range revs {
		if r.Size > m.Limits.MaxSize {
			return fmt.Sprintf("revision %d is %d bytes, over the %d-byte limit", r.Version, r.Size, m.Limits.MaxSize)
		}
	}
	return ""
}

func (m *Migrator) refused(ct string) bool {
	types := m.Limits.RefusedTypes
	if types == nil {
		types = DefaultRefusedTypes
	}
	base, _, _ := strings.Cut(ct, ";")
	return slices.Contains(types, strings.TrimSpace(strings.ToLower(base)))
}

// fatal says whether err stops the phase rather than one item.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Folder copies the documents of one source Briefcase folder of srcAcct to
// the same path in dstAcct's Files home. It returns one item per document;
// the error is set when the phase must stop (cancellation, the folder
// cannot be listed or created).
func (m *Migrator) Folder(ctx context.Context, srcAcct, dstAcct, path string) ([]Item, error) {
	docs, err := m.Src.Documents(ctx, srcAcct, path)
	if err != nil {
		return nil, fmt.Errorf("files: list %s of %s: %w", path, srcAcct, err)
	}
	if len(docs) == 0 {
		return nil, nil
	}
	parent, err := m.folder(ctx, dstAcct, path)
	if err != nil {
		return nil, fmt.Errorf("files: folder %s of %s: %w", path, dstAcct, err)
	}
	// One listing of the destination folder serves every lookup by name:
	// nodes this run creates are in the state before the next document.
	kids, err := m.Dst.Children(ctx, dstAcct, parent)
	if err != nil {
		return nil, fmt.Errorf("files: list folder %s of %s: %w", path, dstAcct, err)
	}
	byName := make(map[string]Node, len(kids))
	for _, k := range kids {
		byName[k.Name] = k
	}
	var items []Item
	for _, d := range docs {
		it := m.document(ctx, srcAcct, dstAcct, path, parent, byName, d)
		items = append(items, it)
		if it.Outcome == Failed && fatal(ctx, ctx.Err()) {
			return items, ctx.Err()
		}
	}
	return items, nil
}

func (m *Migrator) document(ctx context.Context, srcAcct, dstAcct, path, parent string, byName map[string]Node, d Document) Item {
	it := Item{Account: srcAcct, Folder: path, Name: d.Name}
	fail := func(err error) Item {
		it.Outcome, it.Reason = Failed, err.Error()
		return it
	}
	if m.refused(d.ContentType) {
		it.Outcome, it.Reason = Skipped, "content type "+d.ContentType+" is not migrated to Files"
		return it
	}
	revs, err := m.Src.Revisions(ctx, srcAcct, d)
	if err != nil {
		return fail(err)
	}
	if len(revs) == 0 {
		revs = []Revision{{Version: d.Version, Size: d.Size, ContentType: d.ContentType}}
	}
	it.Versions = len(revs)
	if reason := m.overLimit(revs); reason != "" {
		it.Outcome, it.Reason = Skipped, reason
		return it
	}
	mp, known, err := m.Store.Node(ctx, dstAcct, d.ID)
	if err != nil {
		return fail(err)
	}
	// The destination is the truth: a run killed after an upload but
	// before the state write left a node or a version the state does not
	// know; find the node by parent and name, and count its versions.
	if !known {
		if n, found := byName[d.Name]; found {
			if n.IsFolder() {
				it.Outcome, it.Reason = Skipped, "a folder with this name exists on the destination"
				return it
			}
			mp.NodeID = n.ID
		}
	}
	done := 0
	if mp.NodeID != "" {
		vs, err := m.Dst.Versions(ctx, dstAcct, mp.NodeID)
		if err != nil {
			return fail(err)
		}
		done = len(vs)
	}
	if done > len(revs) {
		it.Outcome, it.Reason = Skipped, fmt.Sprintf("the destination file has %d versions, the source %d", done, len(revs))
		return it
	}
	if mp.Versions != done || !known {
		mp.Versions = done
		if mp.NodeID != "" {
			if err := m.Store.SetNode(ctx, dstAcct, d.ID, mp); err != nil {
				return fail(err)
			}
		}
	}
	created := mp.NodeID == ""
	for _, r := range revs[done:] {
		if err := m.upload(ctx, srcAcct, dstAcct, parent, d, r, &mp); err != nil {
			return fail(err)
		}
		it.Uploaded++
		if err := m.Store.SetNode(ctx, dstAcct, d.ID, mp); err != nil {
			return fail(err)
		}
	}
	switch {
	case it.Uploaded == 0:
		it.Outcome = Unchanged
	case created:
		it.Outcome = Created
	default:
		it.Outcome = Updated
	}
	return it
}

// upload sends one revision: the first as a new node, the others as new
// versions of it, in order.
func (m *Migrator) upload(ctx context.Context, srcAcct, dstAcct, parent string, d Document, r Revision, mp *Mapping) error {
	body, size, err := m.Src.Open(ctx, srcAcct, d.ID, r.Version)
	if err != nil {
		return err
	}
	defer body.Close()
	ct := r.ContentType
	if ct == "" {
		ct = d.ContentType
	}
	if mp.NodeID == "" {
		id, err := m.Dst.Upload(ctx, dstAcct, parent, d.Name, ct, size, body)
		if err != nil {
			return err
		}
		mp.NodeID, mp.Versions = id, 1
		return nil
	}
	if _, err := m.Dst.UploadVersion(ctx, dstAcct, mp.NodeID, d.Name, ct, size, body); err != nil {
		return err
	}
	mp.Versions++
	return nil
}

// DryRun lists what Folder would do with the documents of one source
// folder, reading only the source: each document would be copied
// (WouldCopy, with its revision count) or is over a limit (Skipped). The
// destination is not read: before provisioning its accounts do not exist.
func (m *Migrator) DryRun(ctx context.Context, srcAcct, path string) ([]Item, error) {
	docs, err := m.Src.Documents(ctx, srcAcct, path)
	if err != nil {
		return nil, fmt.Errorf("files: list %s of %s: %w", path, srcAcct, err)
	}
	var items []Item
	for _, d := range docs {
		it := Item{Account: srcAcct, Folder: path, Name: d.Name}
		if m.refused(d.ContentType) {
			it.Outcome, it.Reason = Skipped, "content type "+d.ContentType+" is not migrated to Files"
			items = append(items, it)
			continue
		}
		revs, err := m.Src.Revisions(ctx, srcAcct, d)
		if err != nil {
			return items, err
		}
		it.Versions, it.Outcome = max(len(revs), 1), WouldCopy
		if reason := m.overLimit(revs); reason != "" {
			it.Outcome, it.Reason = Skipped, reason
		}
		items = append(items, it)
	}
	return items, nil
}

// Verify compares each document of the source folder with its Files node:
// the SHA-256 of the latest revision (both streamed) and the number of
// versions.
func (m *Migrator) Verify(ctx context.Context, srcAcct, dstAcct, path string) ([]Item, error) {
	docs, err := m.Src.Documents(ctx, srcAcct, path)
	if err != nil {
		return nil, err
	}
	var items []Item
	for _, d := range docs {
		it := Item{Account: srcAcct, Folder: path, Name: d.Name}
		mis := func(format string, a ...any) {
			it.Outcome, it.Reason = Mismatch, fmt.Sprintf(format, a...)
			items = append(items, it)
		}
		if m.refused(d.ContentType) {
			continue
		}
		revs, err := m.Src.Revisions(ctx, srcAcct, d)
		if err != nil {
			return items, err
		}
		if len(revs) == 0 {
			revs = []Revision{{Version: d.Version, Size: d.Size, ContentType: d.ContentType}}
		}
		if m.overLimit(revs) != "" {
			continue
		}
		it.Versions = len(revs)
		mp, ok, err := m.Store.Node(ctx, dstAcct, d.ID)
		if err != nil {
			return items, err
		}
		if !ok {
			mis("not on the destination")
			continue
		}
		vs, err := m.Dst.Versions(ctx, dstAcct, mp.NodeID)
		if err != nil {
			return items, err
		}
		if len(vs) != len(revs) {
			mis("%d versions on the destination, %d revisions on the source", len(vs), len(revs))
			continue
		}
		latest := revs[len(revs)-1].Version
		body, _, err := m.Src.Open(ctx, srcAcct, d.ID, latest)
		if err != nil {
			return items, err
		}
		want, _, err := hashBody(body)
		body.Close()
		if err != nil {
			return items, err
		}
		got, _, err := m.Dst.Hash(ctx, dstAcct, mp.NodeID)
		if err != nil {
			return items, err
		}
		if got != want {
			mis("latest version differs: sha256 %s on the destination, %s on the source", got[:12], want[:12])
			continue
		}
		it.Outcome = Verified
		items = append(items, it)
	}
	return items, nil
}
