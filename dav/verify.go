package dav

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/zxmigrate/zxmigrate/internal/davtext"
)

// CollectionCheck compares one source collection with its destination.
type CollectionCheck struct {
	// Source and Destination are the collection hrefs.
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Items is the number of UIDs at the source.
	Items int `json:"items"`
	// Matched counts UIDs found at the destination, once and equal.
	Matched int `json:"matched"`
	// Missing lists source UIDs absent at the destination.
	Missing []string `json:"missing,omitempty"`
	// Different lists UIDs present on both sides with different content.
	Different []string `json:"different,omitempty"`
	// Changes says, for the UIDs in Different, what differs: component and
	// property names, never values (see Differ).
	Changes []ItemChange `json:"changes,omitempty"`
	// Duplicates lists UIDs the destination holds more than once.
	Duplicates []string `json:"duplicates,omitempty"`
	// Adopted lists UIDs found equal at a destination href outside the
	// collection's destination (and its companions), where the copy adopted
	// the object the destination already held (Carbonio keeps a UID once per
	// mailbox and names its href in a no-uid-conflict answer). They are
	// counted in Matched.
	Adopted []AdoptedItem `json:"adopted,omitempty"`
	// Invalid lists source objects that cannot be compared (and were not
	// copied), with the reason.
	Invalid []ItemError `json:"invalid,omitempty"`
}

// OK reports whether everything at the source is at the destination, once.
func (c CollectionCheck) OK() bool {
	return len(c.Missing) == 0 && len(c.Different) == 0 && len(c.Duplicates) == 0
}

// ItemChange names what differs in one object found different.
type ItemChange struct {
	// UID is the object's UID.
	UID string `json:"uid"`
	// Paths are component and property names, e.g. "VEVENT/SUMMARY",
	// "VEVENT(instance)" (an overridden instance missing or added) or
	// "EMAIL". Empty when the objects could not be read again to compare.
	Paths []string `json:"paths,omitempty"`
}

// ChangedIn returns what differs in the object uid listed in Different,
// as one line: "VEVENT/EXDATE, VEVENT/SUMMARY"; "" when not known.
func (c CollectionCheck) ChangedIn(uid string) string {
	for _, x := range c.Changes {
		if x.UID == uid {
			return strings.Join(x.Paths, ", ")
		}
	}
	return ""
}

// maxPaths bounds the paths reported for one object.
const maxPaths = 20

// reportPaths makes Diff paths fit for a report: characters outside the
// RFC 5545 §3.1 / RFC 6350 §3.3 name alphabet (and the path's "/" and
// "(instance)") shown as "?", at most maxPaths of them.
func reportPaths(paths []string) []string {
	clean := func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '/', r == '(', r == ')':
			return r
		}
		return '?'
	}
	var out []string
	for i, p := range paths {
		if i == maxPaths {
			out = append(out, fmt.Sprintf("and %d more", len(paths)-maxPaths))
			break
		}
		if len(p) > 80 {
			p = p[:80] + "..."
		}
		out = append(out, strings.Map(clean, p))
	}
	return out
}

// AdoptedItem is a source UID verified at a destination href outside its
// collection's destination: "adopted from Href".
type AdoptedItem struct {
	// UID is the source UID.
	UID string `json:"uid"`
	// Href is the destination object that holds it.
	Href string `json:"href"`
}

// Verification is the outcome of Verify.
type Verification struct {
	// Collections holds one check per source collection, nested ones
	// included.
	Collections []CollectionCheck `json:"collections"`
}

// OK reports whether every collection verified.
func (v *Verification) OK() bool {
	for _, c := range v.Collections {
		if !c.OK() {
			return false
		}
	}
	return true
}

// Verify compares every source collection with the destination collection
// of the same name (and its companion collections) by UID and semantic
// fingerprint. Source objects that fail validation are listed as Invalid.
// The destination is always read in full; the source too, except objects
// the last Copy of this Copier read from the same src (the same value),
// with the same ETag since.
//
// A UID absent from the destination collection and its companions is
// looked for at the href where a copy adopted it, as noted by the last Copy
// or recorded in Checkpoint (read only): when that object
// holds the UID it is compared there and listed in Adopted, once. Nothing
// else outside the collection counts: on a server where a UID is unique
// per collection, an object elsewhere is not a copy.
func (c *Copier) Verify(ctx context.Context, dst Destination, src Source) (*Verification, error) {
	if err := c.check(dst, src); err != nil {
		return nil, err
	}
	memo := c.lastMemo(src)
	srcCols, err := c.collections(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("dav: source %ss: %w", c.protocol().Name, err)
	}
	dstCols, err := c.collections(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("dav: destination %ss: %w", c.protocol().Name, err)
	}
	byName := map[string]Collection{}
	for _, col := range dstCols {
		byName[col.Name] = col
	}
	fixed, isFixed := Collection{}, false
	if ft, ok := dst.(fixedTarget); ok {
		fixed, isFixed = ft.Fixed()
	}
	out := &Verification{}
	ns, nested := src.(nestedSource)
	for i := 0; i < len(srcCols); i++ {
		sc := srcCols[i]
		chk := CollectionCheck{Source: sc.Href}
		want := map[string]string{}
		from := map[string]Ref{} // UID -> source object
		refs, err := src.List(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("dav: list %s: %w", sc.Href, err)
		}
		if nested {
			subs, err := ns.Nested(ctx, sc)
			if err != nil {
				return nil, fmt.Errorf("dav: nested collections of %s: %w", sc.Href, err)
			}
			srcCols = append(srcCols, subs...)
		}
		// Objects the copy read, unchanged since, are not read again.
		toRead := refs[:0:0]
		for _, ref := range refs {
			if items, ok := memo.get(sc.Href, ref); ok {
				for _, it := range items {
					want[it[0]] = it[1]
					from[it[0]] = ref
				}
				continue
			}
			toRead = append(toRead, ref)
		}
		for start := 0; start < len(toRead); start += c.batch() {
			err := src.Read(ctx, sc, toRead[start:min(start+c.batch(), len(toRead))], func(ref Ref, data []byte, err error) {
				if err != nil {
					chk.Invalid = append(chk.Invalid, ItemError{Item: ref.Href, Reason: err.Error(), Err: err})
					return
				}
				items, err := c.Rules.Split(davtext.CRLF(data))
				if err != nil {
					chk.Invalid = append(chk.Invalid, ItemError{Item: ref.Href, Reason: err.Error(), Err: err})
					return
				}
				for _, it := range items {
					want[it.UID] = it.Hash
					from[it.UID] = ref
				}
			})
			if err != nil {
				return nil, fmt.Errorf("dav: read %s: %w", sc.Href, err)
			}
		}
		chk.Items = len(want)
		got := map[string][]string{}
		at := map[string]Ref{} // UID -> destination object
		var targets []Collection
		if isFixed {
			targets = append(targets, fixed)
		} else if col, ok := byName[sc.Name]; ok {
			targets = append(targets, col)
		}
		for _, comp := range []string{"VEVENT", "VTODO", "VJOURNAL"} {
			if col, ok := byName[companion(sc.Name, comp)]; ok {
				targets = append(targets, col)
			}
		}
		for i, dc := range targets {
			if i == 0 {
				chk.Destination = dc.Href
			}
			idx, _, err := index(ctx, dst, dc, c.Rules, c.batch())
			if err != nil {
				return nil, fmt.Errorf("dav: read destination %s: %w", dc.Href, err)
			}
			for uid, xs := range idx {
				for _, x := range xs {
					got[uid] = append(got[uid], x.Hash)
					at[uid] = x.Ref
				}
			}
		}
		adopted, err := c.adopted(ctx, dst, memo, sc, targets, want, got)
		if err != nil {
			return nil, err
		}
		for uid, h := range want {
			hs, ok := got[uid]
			switch {
			case !ok && adopted[uid].Href != "" && adopted[uid].Hash == h:
				chk.Matched++
				chk.Adopted = append(chk.Adopted, AdoptedItem{UID: uid, Href: adopted[uid].Href})
			case !ok && adopted[uid].Href != "":
				chk.Different = append(chk.Different, uid)
				at[uid] = adopted[uid].Ref
			case !ok:
				chk.Missing = append(chk.Missing, uid)
			case len(hs) > 1:
				chk.Duplicates = append(chk.Duplicates, uid)
			case hs[0] != h:
				chk.Different = append(chk.Different, uid)
			default:
				chk.Matched++
			}
		}
		sort.Strings(chk.Missing)
		sort.Strings(chk.Different)
		for _, uid := range chk.Different {
			chk.Changes = append(chk.Changes, ItemChange{UID: uid, Paths: c.explain(ctx, dst, src, sc, uid, from[uid], at[uid])})
		}
		sort.Strings(chk.Duplicates)
		sort.Slice(chk.Adopted, func(i, j int) bool { return chk.Adopted[i].UID < chk.Adopted[j].UID })
		out.Collections = append(out.Collections, chk)
	}
	return out, nil
}

// explain reads the source object srcRef and the destination object
// dstRef again and returns what differs for uid (see Differ), or nil when
// the Rules cannot say or an object cannot be read: the UID then stays
// listed as different, without details.
func (c *Copier) explain(ctx context.Context, dst Destination, src Source, sc Collection, uid string, srcRef, dstRef Ref) []string {
	d, ok := c.Rules.(Differ)
	if !ok || srcRef.Href == "" || dstRef.Href == "" {
		return nil
	}
	var a, b []byte
	err := src.Read(ctx, sc, []Ref{srcRef}, func(_ Ref, data []byte, err error) {
		if err != nil {
			return
		}
		items, err := c.Rules.Split(davtext.CRLF(data))
		if err != nil {
			return
		}
		for _, it := range items {
			if it.UID == uid {
				a = it.Data
			}
		}
	})
	if err != nil || a == nil {
		return nil
	}
	dir := CleanPath(dstRef.Href)
	if i := strings.LastIndex(dir, "/"); i >= 0 {
		dir = dir[:i+1]
	}
	err = dst.Read(ctx, Collection{Href: dir}, []Ref{{Href: dstRef.Href}}, func(_ Ref, data []byte, err error) {
		if err == nil {
			b = davtext.CRLF(data)
		}
	})
	if err != nil || b == nil {
		return nil
	}
	return reportPaths(d.Diff(a, b))
}

// adopted reads the objects that the copy of sc adopted outside targets,
// for the UIDs of want absent from got, and returns those that hold the
// UID they were adopted for (by UID, with their href and hash).
func (c *Copier) adopted(ctx context.Context, dst Destination, memo *sourceMemo, sc Collection, targets []Collection, want map[string]string, got map[string][]string) (map[string]indexed, error) {
	hints := map[string]string{} // UID -> href
	for u, h := range memo.adoptedIn(sc.Href) {
		hints[u] = h
	}
	if c.Checkpoint != nil && len(targets) > 0 {
		recs, err := c.Checkpoint.Records(ctx, sc.Href+" => "+targets[0].Href)
		if err != nil {
			return nil, fmt.Errorf("dav: read checkpoint: %w", err)
		}
		for _, r := range recs {
			if _, ok := hints[r.UID]; !ok && r.DstHref != "" {
				hints[r.UID] = r.DstHref
			}
		}
	}
	byDir := map[string][]Ref{}
	uidAt := map[string]string{} // clean path -> UID it should hold
	for uid, h := range hints {
		if _, ok := want[uid]; !ok {
			continue
		}
		if _, ok := got[uid]; ok || within(h, targets) {
			continue
		}
		dir := CleanPath(h)
		if i := strings.LastIndex(dir, "/"); i >= 0 {
			dir = dir[:i+1]
		}
		byDir[dir] = append(byDir[dir], Ref{Href: h})
		uidAt[CleanPath(h)] = uid
	}
	out := map[string]indexed{}
	for dir, refs := range byDir {
		for start := 0; start < len(refs); start += c.batch() {
			err := dst.Read(ctx, Collection{Href: dir}, refs[start:min(start+c.batch(), len(refs))], func(ref Ref, data []byte, err error) {
				if err != nil {
					return // gone or unreadable: the UID stays missing
				}
				uid, h, err := c.Rules.Fingerprint(davtext.CRLF(data))
				if err != nil || uid == "" || uid != uidAt[CleanPath(ref.Href)] {
					return
				}
				out[uid] = indexed{ref, h}
			})
			if err != nil {
				return nil, fmt.Errorf("dav: read destination %s: %w", dir, err)
			}
		}
	}
	return out, nil
}

// within reports whether href lies directly in one of cols.
func within(href string, cols []Collection) bool {
	dir := CleanPath(href)
	if i := strings.LastIndex(dir, "/"); i >= 0 {
		dir = dir[:i]
	}
	for _, c := range cols {
		if samePath(dir, c.Href) {
			return true
		}
	}
	return false
}
