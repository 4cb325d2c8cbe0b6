package carboniotest

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Fixture is directory content: of the fake server at start, or of a
// backup that ExternalRestore provisions from. It loads from JSON.
type Fixture struct {
	Domains           []string         `json:"domains"`                      // domain names
	Accounts          []FixtureAccount `json:"accounts"`                     // accounts with their folders
	Aliases           []FixtureAlias   `json:"aliases,omitempty"`            // aliases
	DistributionLists []FixtureList    `json:"distribution_lists,omitempty"` // distribution lists
	Servers           []FixtureServer  `json:"servers,omitempty"`            // servers of the cluster
	Volumes           []FixtureVolume  `json:"volumes,omitempty"`            // mailstore volumes
}

// FixtureAccount is an account. Folders nil means the default tree.
type FixtureAccount struct {
	Name    string              `json:"name"`              // the primary address
	Attrs   map[string][]string `json:"attrs,omitempty"`   // directory attributes
	System  bool                `json:"system,omitempty"`  // a system account (GAL sync, spam training)
	Folders []FixtureFolder     `json:"folders,omitempty"` // the top-level folders
}

// FixtureAlias is an alias of an account or list.
type FixtureAlias struct {
	Name   string `json:"name"`   // the alias address
	Target string `json:"target"` // the account or list it points to
}

// FixtureList is a distribution list.
type FixtureList struct {
	Name    string   `json:"name"`              // the list's address
	Members []string `json:"members,omitempty"` // member addresses
}

// FixtureServer is a server; Services lists e.g. "mailbox", "mta".
type FixtureServer struct {
	Name     string   `json:"name"`     // the host name
	Services []string `json:"services"` // enabled services, e.g. mailbox, mta
}

// FixtureVolume is a mailstore volume; Type 1 primary, 2 secondary, 10 index.
type FixtureVolume struct {
	Name     string `json:"name"`               // the volume's name
	Type     int    `json:"type"`               // carbonio.VolumePrimary, VolumeSecondary or VolumeIndex
	Current  bool   `json:"current"`            // the volume new items go to
	RootPath string `json:"rootpath,omitempty"` // its directory
}

// FixtureFolder is a folder; Kind is "folder" (default), "link" or "search".
type FixtureFolder struct {
	// ID is the folder's id; empty ids are numbered when the account is
	// added (the root is 1).
	ID      string          `json:"id,omitempty"`
	Name    string          `json:"name"`              // the folder's name (not its path)
	View    string          `json:"view,omitempty"`    // the default item type, e.g. message, appointment
	Kind    string          `json:"kind,omitempty"`    // "" (a folder), "link" or "search"
	Count   int64           `json:"count,omitempty"`   // items in the folder
	Size    int64           `json:"size,omitempty"`    // their size in bytes
	UIDNext int64           `json:"uidnext,omitempty"` // the IMAP UIDNEXT
	ModSeq  int64           `json:"modseq,omitempty"`  // the last change sequence
	Folders []FixtureFolder `json:"folders,omitempty"` // subfolders
	// Grants are the folder's shares, served as its "acl".
	Grants []FixtureGrant `json:"grants,omitempty"`
	// Color is the folder's color index.
	Color int `json:"color,omitempty"`
	// Owner, OwnerID and RemoteID describe a link: the owner's address,
	// account id and the shared folder's id.
	Owner    string `json:"owner,omitempty"`
	OwnerID  string `json:"owner_id,omitempty"`  // see Owner
	RemoteID string `json:"remote_id,omitempty"` // see Owner
	// Query, Types and SortBy describe a saved search.
	Query  string `json:"query,omitempty"`
	Types  string `json:"types,omitempty"`   // see Query
	SortBy string `json:"sort_by,omitempty"` // see Query
}

// FixtureGrant is one share of a folder: grantee type ("usr", "grp",
// "dom", "all", "pub", ...), grantee name and rights ("r", "rwidx", ...).
type FixtureGrant struct {
	Type    string `json:"type"`    // the grantee type: usr, grp, dom, cos, all, pub, guest
	Grantee string `json:"grantee"` // the grantee's name
	Perm    string `json:"perm"`    // the rights, e.g. r, rwidx
	// ZID is the grantee's id; empty means a made-up one.
	ZID string `json:"zid,omitempty"`
}

// LoadFixture reads a JSON fixture file.
func LoadFixture(path string) (*Fixture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("carboniotest: %w", err)
	}
	var f Fixture
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("carboniotest: fixture %s: %w", path, err)
	}
	return &f, nil
}

// DefaultFolders is the folder tree of a new account.
func DefaultFolders() []FixtureFolder {
	return []FixtureFolder{
		{Name: "Inbox", View: "message", UIDNext: 1},
		{Name: "Sent", View: "message", UIDNext: 1},
		{Name: "Drafts", View: "message", UIDNext: 1},
		{Name: "Junk", View: "message", UIDNext: 1},
		{Name: "Trash", UIDNext: 1},
		{Name: "Calendar", View: "appointment"},
		{Name: "Contacts", View: "contact"},
		{Name: "Emailed Contacts", View: "contact"},
		{Name: "Tasks", View: "task"},
		{Name: "Briefcase", View: "document"},
	}
}

// DefaultFixture is a small source-like directory: domain example.com with
// three users, a system account, an alias, a list, one mailbox server and
// its volumes. alice has a subfolder, a mountpoint, a saved search and a
// calendar shared with bob.
func DefaultFixture() *Fixture {
	alice := DefaultFolders()
	alice[0].Count, alice[0].Size, alice[0].UIDNext, alice[0].ModSeq = 3, 12000, 4, 10
	alice[0].Folders = []FixtureFolder{{Name: "Projects", View: "message", Count: 2, Size: 5000, UIDNext: 3, ModSeq: 7}}
	alice[5].Grants = []FixtureGrant{{Type: "usr", Grantee: "bob@example.com", Perm: "r"}} // Calendar, shared with bob
	alice = append(alice,
		FixtureFolder{Name: "Bob's Calendar", View: "appointment", Kind: "link"},
		FixtureFolder{Name: "Unread", View: "message", Kind: "search"})
	return &Fixture{
		Domains: []string{"example.com"},
		Accounts: []FixtureAccount{
			{Name: "alice@example.com", Attrs: map[string][]string{"displayName": {"Alice"}, "zimbraMailHost": {"mbox1.example.com"}}, Folders: alice},
			{Name: "bob@example.com", Attrs: map[string][]string{"displayName": {"Bob"}, "zimbraMailHost": {"mbox1.example.com"}}},
			{Name: "carol@example.com", Attrs: map[string][]string{"displayName": {"Carol"}, "zimbraMailHost": {"mbox1.example.com"}}},
			{Name: "galsync@example.com", System: true},
		},
		Aliases:           []FixtureAlias{{Name: "al@example.com", Target: "alice@example.com"}},
		DistributionLists: []FixtureList{{Name: "team@example.com", Members: []string{"alice@example.com", "bob@example.com"}}},
		Servers:           []FixtureServer{{Name: "mbox1.example.com", Services: []string{"mailbox", "mta", "proxy"}}},
		Volumes: []FixtureVolume{
			{Name: "message1", Type: 1, Current: true, RootPath: "/opt/zextras/store"},
			{Name: "hsm1", Type: 2, RootPath: "/mnt/hsm"},
			{Name: "index1", Type: 10, Current: true, RootPath: "/opt/zextras/index"},
		},
	}
}

// DestinationFixture is an empty Carbonio as the migration procedure wants
// it: a local domain (carbonio.local) with its admin, one server, volumes.
func DestinationFixture() *Fixture {
	f := DefaultFixture()
	return &Fixture{
		Domains:  []string{"carbonio.local"},
		Accounts: []FixtureAccount{{Name: "admin@carbonio.local"}},
		Servers:  []FixtureServer{{Name: "mbox1.carbonio.local", Services: []string{"mailbox", "mta", "proxy"}}},
		Volumes:  f.Volumes,
	}
}

func domainOf(addr string) string {
	_, d, _ := strings.Cut(strings.ToLower(addr), "@")
	return d
}
