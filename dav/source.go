package dav

import "context"

// Item is one resource as it will be written: all components sharing one
// UID (calendars) or one vCard.
type Item struct {
	// UID is the UID all components of Data share.
	UID string
	// Component is the iCalendar component ("VEVENT", "VTODO", ...); empty
	// for vCards.
	Component string
	// Data is the resource to write, CRLF line ends.
	Data []byte
	// Hash is the semantic fingerprint of Data (see Rules.Fingerprint).
	Hash string
	// Notes lists repairs and warnings, e.g. "VTIMEZONE moved before use".
	Notes []string
	// Repaired is set when Data differs from the source because of a
	// repair (not for mere warnings).
	Repaired bool
}

// Rules validate, repair and fingerprint objects of one protocol:
// caldav.Rules for iCalendar, carddav.Rules for vCard. Their methods are
// called concurrently.
type Rules interface {
	// Protocol is the protocol whose objects the rules handle (CalDAV or
	// CardDAV): it names new objects and collections.
	Protocol() *Protocol
	// Split validates data (one source resource, CRLF line ends), repairs
	// what it can and returns one item per UID. An error means the whole
	// resource cannot be copied; its text is the reason shown to the user.
	Split(data []byte) ([]Item, error)
	// Fingerprint returns the UID of one resource and a hash that is equal
	// for semantically equal resources (servers may reorder or re-encode).
	Fingerprint(data []byte) (uid, hash string, err error)
}

// Differ is implemented by Rules that can say what differs between two
// resources with different fingerprints. Verify uses it to name the
// components and properties that changed.
type Differ interface {
	// Diff returns the paths of component and property names in which dst
	// differs from src, e.g. "VEVENT/EXDATE" or "EMAIL"; empty when they
	// are semantically equal. Paths never hold values.
	Diff(src, dst []byte) []string
}

// Source is where objects come from.
type Source interface {
	// Collections lists the calendars or address books to copy.
	Collections(ctx context.Context) ([]Collection, error)
	// List returns the objects of a collection with their ETags.
	List(ctx context.Context, c Collection) ([]Ref, error)
	// Read reads the objects refs and calls fn once per ref.
	Read(ctx context.Context, c Collection, refs []Ref, fn ReadFunc) error
}

// Destination is where objects go.
type Destination interface {
	Source
	// CreateCollection creates a collection like c (Name, DisplayName,
	// Description, Color, Components) and returns it with its Href.
	CreateCollection(ctx context.Context, c Collection) (Collection, error)
	// Put writes one object at href in c under cond and returns its ETag.
	Put(ctx context.Context, c Collection, href string, data []byte, cond Cond) (etag string, err error)
}

// Deleter is a Destination that can delete objects; Copier.Delete needs it
// (Remote has it, the REST import has not).
type Deleter interface {
	// Delete removes the object at href when its ETag is still etag
	// (If-Match). A changed object fails with an *HTTPError of code 412, a
	// missing one with 404 or 410.
	Delete(ctx context.Context, href, etag string) error
}
