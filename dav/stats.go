package dav

// Action is what happened to one item.
type Action string

// The actions of ObjectDone.
const (
	Created   Action = "created"   // written where the destination had no such UID
	Updated   Action = "updated"   // written over an older copy (If-Match)
	Unchanged Action = "unchanged" // the destination already holds an equal copy
)

// Event is one progress event: CollectionStarted, ObjectDone, ObjectFailed,
// ObjectDeleted or CollectionDone.
type Event interface{ isEvent() }

// CollectionStarted is sent when a collection starts.
type CollectionStarted struct {
	// Source and Destination are the collection hrefs.
	Source, Destination string
	// Objects is the number of source resources listed.
	Objects int
}

// ObjectDone is sent for each item written or found unchanged.
type ObjectDone struct {
	// Collection is the source collection href.
	Collection string
	// Href is the destination object and UID the item's UID.
	Href, UID string
	// Action says what was done.
	Action Action
}

// ObjectFailed is sent for each object or item that could not be copied.
type ObjectFailed struct {
	// Collection is the source collection href.
	Collection string
	// Item is the source href; UID is empty when the object was not read
	// or parsed.
	Item, UID string
	// Err is the reason.
	Err error
}

// ObjectDeleted is sent, with Copier.Delete, for each destination object
// deleted because its source object is gone (also when the destination had
// lost it already, and in a dry run for each object that would be deleted).
type ObjectDeleted struct {
	// Collection is the source collection.
	Collection string
	// Href is the destination object, SrcHref the source object it was
	// copied from.
	Href, SrcHref, UID string
}

// CollectionDone is sent when a collection ends, with its stats. With
// Copier.Delete it is sent after the deletions, when every collection has
// been copied.
type CollectionDone struct {
	// Stats are the collection's final counts.
	Stats CollectionStats
}

func (CollectionStarted) isEvent() {}
func (ObjectDone) isEvent()        {}
func (ObjectFailed) isEvent()      {}
func (ObjectDeleted) isEvent()     {}
func (CollectionDone) isEvent()    {}

// ItemError is a per-item failure.
type ItemError struct {
	// Item is the source href.
	Item string `json:"item"`
	// UID is the item's UID when it was known.
	UID string `json:"uid,omitempty"`
	// Reason is Err's text, for reports.
	Reason string `json:"reason"`
	// Err is the failure; errors.Is and errors.As work on it.
	Err error `json:"-"`
}

// ItemNote is a repair or warning about an item that was copied.
type ItemNote struct {
	// Item is the source href.
	Item string `json:"item"`
	// UID is the item's UID when it was known.
	UID string `json:"uid,omitempty"`
	// Note says what was repaired or found.
	Note string `json:"note"`
}

// CollectionStats counts what happened to one source collection.
type CollectionStats struct {
	// Source and Destination are the collection hrefs.
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// Name is the collection name at the destination.
	Name string `json:"name"`
	// Nested is the original nested path when Name was flattened.
	Nested string `json:"nested,omitempty"`
	// CollectionCreated is set when the destination collection was created.
	CollectionCreated bool `json:"collection_created,omitempty"`
	// Objects is the number of source resources listed.
	Objects int `json:"objects"`
	// Created, Updated and Unchanged count items by Action.
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	// Skipped counts resources that cannot be copied as they are (invalid
	// data); Errors names them with the reason.
	Skipped int `json:"skipped"`
	// Failed counts items the servers refused or could not deliver.
	Failed int `json:"failed"`
	// Repaired counts items written after a repair (see Notes).
	Repaired int `json:"repaired"`
	// Routed counts items written to a companion collection because the
	// destination collection does not accept their component.
	Routed int `json:"routed,omitempty"`
	// Deleted counts, with Copier.Delete, destination objects deleted
	// because the source no longer has them, including those the
	// destination had lost already.
	Deleted int `json:"deleted,omitempty"`
	// Kept counts objects the source no longer has that were kept at the
	// destination because they changed there since the copy (one note
	// each).
	Kept int `json:"kept,omitempty"`
	// HeldBack counts deletions not done, for the reason in Notes: the
	// source listed no objects, objects of the collection failed, the
	// destination cannot delete, or the source collection is gone.
	HeldBack int `json:"held_back,omitempty"`
	// Gone marks, with Copier.Delete, a collection pair of the checkpoint
	// whose source collection this run did not find: nothing was deleted
	// there, and Destination is kept.
	Gone bool `json:"gone,omitempty"`
	// Errors names the skipped and failed items.
	Errors []ItemError `json:"errors,omitempty"`
	// Notes lists repairs, warnings and deletions held back or kept.
	Notes []ItemNote `json:"notes,omitempty"`
	// DryRun is set when nothing was written: Created, Updated and Deleted
	// are what a real run would do.
	DryRun bool `json:"dry_run,omitempty"`
}

// Stats is the outcome of Copy.
type Stats struct {
	// Collections holds one entry per source collection, nested ones
	// included, then the checkpoint's collection pairs whose source is
	// gone (with Copier.Delete).
	Collections []CollectionStats `json:"collections"`
}

// Totals sums the per-collection counts.
func (s *Stats) Totals() CollectionStats {
	var t CollectionStats
	for _, c := range s.Collections {
		t.Objects += c.Objects
		t.Created += c.Created
		t.Updated += c.Updated
		t.Unchanged += c.Unchanged
		t.Skipped += c.Skipped
		t.Failed += c.Failed
		t.Repaired += c.Repaired
		t.Routed += c.Routed
		t.Deleted += c.Deleted
		t.Kept += c.Kept
		t.HeldBack += c.HeldBack
	}
	return t
}

// OK reports whether nothing was skipped or failed.
func (s *Stats) OK() bool { t := s.Totals(); return t.Skipped == 0 && t.Failed == 0 }
