package dav

import (
	"context"
	"fmt"
	"sort"
)

// CollectionCheck compares one source collection with its destination.
type CollectionCheck struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Items is the number of UIDs at the source.
	Items   int `json:"items"`
	Matched int `json:"matched"`
	// Missing lists source UIDs absent at the destination.
	Missing []string `json:"missing,omitempty"`
	// Different lists UIDs present on both sides with different content.
	Different []string `json:"different,omitempty"`
	// Duplicates lists UIDs the destination holds more than once.
	Duplicates []string `json:"duplicates,omitempty"`
	// Invalid lists source objects that cannot be compared (and were not
	// copied), with the reason.
	Invalid []ItemError `json:"invalid,omitempty"`
}

// OK reports whether everything at the source is at the destination, once.
func (c CollectionCheck) OK() bool {
	return len(c.Missing) == 0 && len(c.Different) == 0 && len(c.Duplicates) == 0
}

// Verification is the outcome of Verify.
type Verification struct {
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
// in e.Memo (read by the copy, same ETag since).
func (e *Engine) Verify(ctx context.Context, dst Destination, src Source) (*Verification, error) {
	srcCols, err := e.collections(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("dav: source %ss: %w", e.Protocol.Name, err)
	}
	dstCols, err := e.collections(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("dav: destination %ss: %w", e.Protocol.Name, err)
	}
	byName := map[string]Collection{}
	for _, c := range dstCols {
		byName[c.Name] = c
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
		useMemo := e.Memo.For(src)
		toRead := refs[:0:0]
		for _, ref := range refs {
			if items, ok := e.Memo.get(sc.Href, ref); ok && useMemo {
				for _, it := range items {
					want[it[0]] = it[1]
				}
				continue
			}
			toRead = append(toRead, ref)
		}
		for start := 0; start < len(toRead); start += e.batch() {
			err := src.Read(ctx, sc, toRead[start:min(start+e.batch(), len(toRead))], func(ref Ref, data []byte, err error) {
				if err != nil {
					chk.Invalid = append(chk.Invalid, ItemError{Item: ref.Href, Reason: err.Error(), Err: err})
					return
				}
				items, err := e.Rules.Split(CRLF(data))
				if err != nil {
					chk.Invalid = append(chk.Invalid, ItemError{Item: ref.Href, Reason: err.Error(), Err: err})
					return
				}
				for _, it := range items {
					want[it.UID] = it.Hash
				}
			})
			if err != nil {
				return nil, fmt.Errorf("dav: read %s: %w", sc.Href, err)
			}
		}
		chk.Items = len(want)
		got := map[string][]string{}
		var targets []Collection
		if isFixed {
			targets = append(targets, fixed)
		} else if c, ok := byName[sc.Name]; ok {
			targets = append(targets, c)
		}
		for _, comp := range []string{"VEVENT", "VTODO", "VJOURNAL"} {
			if c, ok := byName[companion(sc.Name, comp)]; ok {
				targets = append(targets, c)
			}
		}
		for i, dc := range targets {
			if i == 0 {
				chk.Destination = dc.Href
			}
			idx, _, err := Index(ctx, dst, dc, e.Rules, e.batch())
			if err != nil {
				return nil, fmt.Errorf("dav: read destination %s: %w", dc.Href, err)
			}
			for uid, xs := range idx {
				for _, x := range xs {
					got[uid] = append(got[uid], x.Hash)
				}
			}
		}
		for uid, h := range want {
			hs, ok := got[uid]
			switch {
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
		sort.Strings(chk.Duplicates)
		out.Collections = append(out.Collections, chk)
	}
	return out, nil
}
