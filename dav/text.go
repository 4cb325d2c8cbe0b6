package dav

import (
	"bytes"
	"fmt"
	"io"

	"github.com/zxmigrate/zxmigrate/termsafe"
)

// maxNotes bounds the notes printed per collection; the report has all.
const maxNotes = 20

// DeletionsText is the part of a summary line about Copier.Delete: the
// objects deleted, kept because they changed on the destination, and held
// back.
func (s CollectionStats) DeletionsText() string {
	return fmt.Sprintf(", %d deleted, %d kept (changed on the destination), %d deletions held back", s.Deleted, s.Kept, s.HeldBack)
}

// WriteText writes s for a terminal: a line of totals headed by kind
// (e.g. "calendars"), with the counts of Copier.Delete when withDeletes is
// set, then per collection a line when it is gone at the source or was
// flattened, every failed object, and up to 20 notes. Text from the
// servers is escaped with termsafe.
func (s *Stats) WriteText(w io.Writer, kind string, withDeletes bool) error {
	var b bytes.Buffer
	s.writeText(&b, kind, withDeletes)
	_, err := w.Write(b.Bytes())
	return err
}

func (s *Stats) writeText(w io.Writer, kind string, deletes bool) {
	t := s.Totals()
	mode := ""
	if len(s.Collections) > 0 && s.Collections[0].DryRun {
		mode = " (dry run: nothing written)"
	}
	n := 0
	for _, c := range s.Collections {
		if !c.Gone {
			n++
		}
	}
	del := ""
	if deletes {
		del = t.DeletionsText()
	}
	termsafe.Fprintf(w, "%s: %d collections, %d objects: %d created, %d updated, %d unchanged, %d skipped, %d failed, %d repaired%s%s\n",
		kind, n, t.Objects, t.Created, t.Updated, t.Unchanged, t.Skipped, t.Failed, t.Repaired, del, mode)
	for _, c := range s.Collections {
		if c.Gone {
			termsafe.Fprintf(w, "  %s: gone at the source; %s and its %d objects kept\n", c.Source, c.Destination, c.HeldBack)
			continue
		}
		if c.Nested != "" {
			termsafe.Fprintf(w, "  %s: nested collection %q flattened to %q\n", c.Source, c.Nested, c.Name)
		}
		for _, er := range c.Errors {
			uid := ""
			if er.UID != "" {
				uid = " (UID " + er.UID + ")"
			}
			termsafe.Fprintf(w, "  FAILED %s%s: %s\n", er.Item, uid, er.Reason)
		}
		for i, n := range c.Notes {
			if i == maxNotes {
				termsafe.Fprintf(w, "  ... %d more notes (see --report)\n", len(c.Notes)-maxNotes)
				break
			}
			termsafe.Fprintf(w, "  note %s: %s\n", n.Item, n.Note)
		}
	}
}

// WriteText writes v for a terminal: a line per object adopted, missing,
// different or duplicated at the destination, then the count of equal
// objects and of problems. Text from the servers is escaped with termsafe.
func (v *Verification) WriteText(w io.Writer) error {
	var b bytes.Buffer
	v.writeText(&b)
	_, err := w.Write(b.Bytes())
	return err
}

func (v *Verification) writeText(w io.Writer) {
	ok, bad := 0, 0
	for _, c := range v.Collections {
		ok += c.Matched
		bad += len(c.Missing) + len(c.Different) + len(c.Duplicates)
		for _, a := range c.Adopted {
			termsafe.Fprintf(w, "  equal, adopted from %s: %s (UID %s)\n", a.Href, c.Source, a.UID)
		}
		for _, u := range c.Missing {
			termsafe.Fprintf(w, "  MISSING at destination: %s (UID %s)\n", c.Source, u)
		}
		for _, u := range c.Different {
			what := ""
			if ch := c.ChangedIn(u); ch != "" {
				what = ": " + ch
			}
			termsafe.Fprintf(w, "  DIFFERENT at destination: %s (UID %s)%s\n", c.Source, u, what)
		}
		for _, u := range c.Duplicates {
			termsafe.Fprintf(w, "  DUPLICATE at destination: %s (UID %s)\n", c.Source, u)
		}
	}
	termsafe.Fprintf(w, "verify: %d objects equal, %d problems\n", ok, bad)
}
