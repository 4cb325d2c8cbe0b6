package corpus

import "time"

// Account is everything one user owns on the source side.
type Account struct {
	// User is the login name, e.g. "user1" or "alice@example.com".
	User         string
	Mail         Mailbox
	Calendars    []Collection
	AddressBooks []Collection
}

// Mailbox is a folder tree with its messages. Folder names use '/' as the
// hierarchy separator and are plain UTF-8 (not modified UTF-7).
type Mailbox struct {
	Folders  []Folder
	Messages []Message
}

// Folder is one mailbox of the tree.
type Folder struct {
	// Name is the full path with '/' as separator, e.g. "Work/Projects/Alpha".
	Name string `json:"name"`
	// Subscribed reports whether the folder is in the subscription list.
	Subscribed bool `json:"subscribed"`
	// NoSelect marks a parent that exists only to hold children (\Noselect).
	NoSelect bool `json:"noselect,omitempty"`
	// SpecialUse is "", or one of `\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive`.
	SpecialUse string `json:"special_use,omitempty"`
}

// Message is one stored message. Raw uses CRLF line endings and is the exact
// BODY[] a server must return.
type Message struct {
	Folder string
	Raw    []byte
	// Flags holds system flags (`\Seen`, `\Answered`, `\Flagged`, `\Deleted`,
	// `\Draft`) and keywords (`$Forwarded`, `Work`, ...), sorted.
	Flags        []string
	InternalDate time.Time
	// Kind says how the generator built the message: "text", "alternative",
	// "mixed", "forward", "huge", or "edge/<name>" for the malformed and
	// unusual messages of the EdgeCases folder (e.g. "edge/bad-boundary",
	// "edge/nul"). Exact duplicates carry the Kind of their original with
	// "+dup" appended. It is informational: servers do not store it.
	Kind string
}

// Collection is a calendar (or task list) or an address book.
type Collection struct {
	// Name is the last path segment of the collection URL, e.g. "calendar".
	Name        string
	DisplayName string
	Description string
	Color       string
	// Components lists the iCalendar components a calendar accepts
	// ("VEVENT", "VTODO"); empty for address books.
	Components []string
	Objects    []Object
}

// Object is one calendar resource (all components sharing one UID, with the
// VTIMEZONEs they use) or one vCard.
type Object struct {
	UID string
	// Name is the resource name in the collection, e.g. "<uid>.ics".
	Name string
	Data []byte
	// Broken is set when the generator produced the object malformed on
	// purpose; a correct copier reports it instead of copying it.
	Broken bool
}
