package carbonio

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Domain is a mail domain.
type Domain struct {
	Name  string              // e.g. example.com
	ID    string              // the directory id
	Attrs map[string][]string // attributes by name, as the server sent them
}

// Account is a mailbox account.
type Account struct {
	Name  string              // the primary address
	ID    string              // the directory id
	Attrs map[string][]string // attributes by name, as the server sent them
}

// Attr returns the first value of attribute name, "" when absent.
func (a Account) Attr(name string) string {
	if v := a.Attrs[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// IsSystem reports whether the account is a system account (GAL sync,
// spam/ham training, quarantine), which restores skip by default.
func (a Account) IsSystem() bool {
	return strings.EqualFold(a.Attr("zimbraIsSystemAccount"), "TRUE") ||
		strings.EqualFold(a.Attr("zimbraIsSystemResource"), "TRUE")
}

// Alias is an alternative address of an account or list.
type Alias struct {
	Name   string // the alias address
	Target string // the account or list it points to
}

// DistributionList is a mailing list of the directory.
type DistributionList struct {
	Name    string   // the list's address
	ID      string   // the directory id
	Members []string // member addresses
}

// Server is a server of the cluster.
type Server struct {
	Name  string              // the server's host name
	ID    string              // the directory id
	Attrs map[string][]string // attributes by name, as the server sent them
}

// Volume is a mailstore volume.
type Volume struct {
	ID       string // the volume id
	Name     string // the volume's name
	Type     int    // 1 primary, 2 secondary, 10 index
	RootPath string // the directory holding the volume's files
	Current  bool   // the volume new items go to
}

// Volume types of GetAllVolumesResponse.
const (
	VolumePrimary   = 1
	VolumeSecondary = 2
	VolumeIndex     = 10
)

// Folder is one folder of a user's mailbox, from GetFolderRequest.
type Folder struct {
	// Path is the folder path below the root, "/"-separated, e.g.
	// "Inbox/Projects" (Zimbra names: "Inbox", "Sent", not "INBOX").
	Path string
	ID   string // the folder id ("l" of its items)
	// View is the default item type: "message", "appointment", "task",
	// "contact", "document", ...; "" for plain mail folders on old servers.
	View string
	// Kind is "folder", "link" (a mountpoint of another user's folder) or
	// "search" (a saved search). Links and searches are virtual: their
	// items belong to other folders.
	Kind    string
	Count   int64 // items in the folder
	Size    int64 // their size in bytes
	UIDNext int64 // the IMAP UIDNEXT the server reports
	ModSeq  int64 // the folder's last change sequence
	// Grants are the folder's shares (its ACL): who else may see it.
	Grants []Grant
	// Color is the folder's color index (0-127; 0 when unset).
	Color int
	// Owner, OwnerID and RemoteID describe a mountpoint (Kind "link"):
	// the owner's address and account id and the shared folder's id in
	// the owner's mailbox ("owner", "zid", "rid" of the link element,
	// zextras/carbonio-mailbox soap/src/main/java/com/zimbra/soap/mail/type/Mountpoint.java).
	Owner, OwnerID, RemoteID string
	// Query, Types and SortBy describe a saved search (Kind "search")
	// (soap/src/main/java/com/zimbra/soap/mail/type/SearchFolder.java).
	Query, Types, SortBy string
}

// Grant is one entry of a folder's ACL (the "grant" elements of its "acl"
// in GetFolderResponse, as zm-mailbox's ToXML encodes them).
type Grant struct {
	// Type is the grantee type: "usr", "grp", "dom", "cos", "all" (all
	// authenticated users), "pub" (public), "guest" or "key".
	Type string
	// Grantee names the grantee (the "d" attribute: an address or a
	// domain), or is its id when the server gives no name.
	Grantee string
	// Perm is the rights string: some of r, w, i, d, a, x, p, f, c.
	Perm string
	// ZID is the grantee's id ("zid"); for "all" and "pub" a fixed
	// well-known id.
	ZID string
}

// Folder kinds.
const (
	KindFolder = "folder"
	KindLink   = "link"
	KindSearch = "search"
)

// Virtual reports whether the folder holds no items of its own.
func (f Folder) Virtual() bool { return f.Kind == KindLink || f.Kind == KindSearch }

type namedJSON struct {
	Name   text  `json:"name"`
	ID     text  `json:"id"`
	Target text  `json:"targetName"`
	A      attrs `json:"a"`
}

// Domains lists all domains (GetAllDomainsRequest).
func (c *Client) Domains(ctx context.Context) ([]Domain, error) {
	var ans struct {
		Domain list[namedJSON] `json:"domain"`
	}
	if err := c.call(ctx, "GetAllDomainsRequest", map[string]any{}, callOpts{idempotent: true}, &ans); err != nil {
		return nil, err
	}
	out := make([]Domain, 0, len(ans.Domain))
	for _, d := range ans.Domain {
		out = append(out, Domain{Name: string(d.Name), ID: string(d.ID), Attrs: d.A.Map()})
	}
	return out, nil
}

// Domain returns one domain by name (GetDomainRequest).
func (c *Client) Domain(ctx context.Context, name string) (*Domain, error) {
	var ans struct {
		Domain list[namedJSON] `json:"domain"`
	}
	err := c.call(ctx, "GetDomainRequest", map[string]any{
		"domain": map[string]any{"by": "name", "_content": name},
	}, callOpts{idempotent: true}, &ans)
	if err != nil {
		return nil, err
	}
	if len(ans.Domain) == 0 {
		return nil, shapeErr("GetDomainRequest", "no domain in the answer")
	}
	d := ans.Domain[0]
	return &Domain{Name: string(d.Name), ID: string(d.ID), Attrs: d.A.Map()}, nil
}

// searchPage is the page size of SearchDirectoryRequest.
const searchPage = 500

// search runs a paged SearchDirectoryRequest of types in domain and calls
// each for every entry of key.
func (c *Client) search(ctx context.Context, types, domain string, attrList []string, each func(kind string, e namedJSON, members []string)) error {
	for offset := 0; ; {
		// maxResults 0 lifts the server's overall cap (LC
		// zimbra_directory_max_search_result, 5000 by default), which
		// otherwise fails big domains with TOO_MANY_SEARCH_RESULTS even
		// when paging (SearchDirectory.java).
		req := map[string]any{"types": types, "limit": searchPage, "offset": offset, "sortBy": "name", "maxResults": 0}
		if domain != "" {
			req["domain"] = domain
		}
		if len(attrList) > 0 {
			req["attrs"] = strings.Join(attrList, ",")
		}
		var ans struct {
			Account list[namedJSON] `json:"account"`
			Alias   list[namedJSON] `json:"alias"`
			DL      list[struct {
				namedJSON
				DLM list[text] `json:"dlm"`
			}] `json:"dl"`
			More  text `json:"more"`
			Total text `json:"searchTotal"`
		}
		if err := c.call(ctx, "SearchDirectoryRequest", req, callOpts{idempotent: true}, &ans); err != nil {
			return err
		}
		n := len(ans.Account) + len(ans.Alias) + len(ans.DL)
		for _, e := range ans.Account {
			each("account", e, nil)
		}
		for _, e := range ans.Alias {
			each("alias", e, nil)
		}
		for _, e := range ans.DL {
			var m []string
			for _, x := range e.DLM {
				m = append(m, string(x))
			}
			each("dl", e.namedJSON, m)
		}
		if !ans.More.bool() || n == 0 {
			return nil
		}
		offset += n
	}
}

// Accounts lists the accounts of domain (all domains when empty) with
// SearchDirectoryRequest, page by page, fetching attrs (none when empty).
func (c *Client) Accounts(ctx context.Context, domain string, attrs ...string) ([]Account, error) {
	var out []Account
	err := c.search(ctx, "accounts", domain, attrs, func(_ string, e namedJSON, _ []string) {
		out = append(out, Account{Name: string(e.Name), ID: string(e.ID), Attrs: e.A.Map()})
	})
	return out, err
}

// Account returns one account by name (GetAccountRequest).
func (c *Client) Account(ctx context.Context, name string) (*Account, error) {
	var ans struct {
		Account list[namedJSON] `json:"account"`
	}
	err := c.call(ctx, "GetAccountRequest", map[string]any{
		"account": map[string]any{"by": "name", "_content": name},
	}, callOpts{idempotent: true}, &ans)
	if err != nil {
		return nil, err
	}
	if len(ans.Account) == 0 {
		return nil, shapeErr("GetAccountRequest", "no account in the answer")
	}
	a := ans.Account[0]
	return &Account{Name: string(a.Name), ID: string(a.ID), Attrs: a.A.Map()}, nil
}

// DistributionLists lists the distribution lists of domain.
func (c *Client) DistributionLists(ctx context.Context, domain string) ([]DistributionList, error) {
	var out []DistributionList
	err := c.search(ctx, "distributionlists,dynamicgroups", domain, nil, func(_ string, e namedJSON, m []string) {
		out = append(out, DistributionList{Name: string(e.Name), ID: string(e.ID), Members: m})
	})
	return out, err
}

// Aliases lists the aliases of domain with their targets.
func (c *Client) Aliases(ctx context.Context, domain string) ([]Alias, error) {
	var out []Alias
	err := c.search(ctx, "aliases", domain, nil, func(_ string, e namedJSON, _ []string) {
		out = append(out, Alias{Name: string(e.Name), Target: string(e.Target)})
	})
	return out, err
}

// Servers lists the servers running service ("mailbox"; all when empty).
func (c *Client) Servers(ctx context.Context, service string) ([]Server, error) {
	req := map[string]any{}
	if service != "" {
		req["service"] = service
	}
	var ans struct {
		Server list[namedJSON] `json:"server"`
	}
	if err := c.call(ctx, "GetAllServersRequest", req, callOpts{idempotent: true}, &ans); err != nil {
		return nil, err
	}
	out := make([]Server, 0, len(ans.Server))
	for _, s := range ans.Server {
		out = append(out, Server{Name: string(s.Name), ID: string(s.ID), Attrs: s.A.Map()})
	}
	return out, nil
}

// Volumes lists the volumes of the server the client talks to
// (GetAllVolumesRequest).
func (c *Client) Volumes(ctx context.Context) ([]Volume, error) {
	var ans struct {
		Volume list[struct {
			ID        text `json:"id"`
			Name      text `json:"name"`
			Type      text `json:"type"`
			RootPath  text `json:"rootpath"`
			IsCurrent text `json:"isCurrent"`
		}] `json:"volume"`
	}
	if err := c.call(ctx, "GetAllVolumesRequest", map[string]any{}, callOpts{idempotent: true}, &ans); err != nil {
		return nil, err
	}
	out := make([]Volume, 0, len(ans.Volume))
	for _, v := range ans.Volume {
		out = append(out, Volume{ID: string(v.ID), Name: string(v.Name), Type: int(v.Type.int64()),
			RootPath: string(v.RootPath), Current: v.IsCurrent.bool()})
	}
	return out, nil
}

// CurrentPrimaryVolume returns the name of the current primary volume, the
// default target of Deduplicate.
func (c *Client) CurrentPrimaryVolume(ctx context.Context) (string, error) {
	vols, err := c.Volumes(ctx)
	if err != nil {
		return "", err
	}
	for _, v := range vols {
		if v.Type == VolumePrimary && v.Current {
			return v.Name, nil
		}
	}
	return "", fmt.Errorf("carbonio: GetAllVolumesRequest: no current primary volume among %d volumes", len(vols))
}

// folderJSON is one node of a GetFolderResponse tree.
type folderJSON struct {
	ID      text             `json:"id"`
	Name    text             `json:"name"`
	View    text             `json:"view"`
	N       text             `json:"n"`
	S       text             `json:"s"`
	I4ms    text             `json:"i4ms"`
	I4next  text             `json:"i4next"`
	Folders list[folderJSON] `json:"folder"`
	Links   list[folderJSON] `json:"link"`
	Search  list[folderJSON] `json:"search"`
	Color   text             `json:"color"`
	Owner   text             `json:"owner"`
	ZID     text             `json:"zid"`
	RID     text             `json:"rid"`
	Query   text             `json:"query"`
	Types   text             `json:"types"`
	SortBy  text             `json:"sortBy"`
	ACL     struct {
		Grant list[grantJSON] `json:"grant"`
	} `json:"acl"`
}

type grantJSON struct {
	GT   text `json:"gt"`
	D    text `json:"d"`
	ZID  text `json:"zid"`
	Perm text `json:"perm"`
}

// Folders returns the folder tree of account, flattened in depth-first
// order, without the root. It sends GetFolderRequest (urn:zimbraMail) with
// the admin token acting as the account.
func (c *Client) Folders(ctx context.Context, account string) ([]Folder, error) {
	var ans struct {
		Folder list[folderJSON] `json:"folder"`
	}
	err := c.call(ctx, "GetFolderRequest", map[string]any{}, callOpts{ns: nsMail, account: account, idempotent: true}, &ans)
	if err != nil {
		return nil, fmt.Errorf("carbonio: folders of %s: %w", account, err)
	}
	if len(ans.Folder) == 0 {
		return nil, shapeErr("GetFolderRequest", "no root folder for %s", account)
	}
	var out []Folder
	var walk func(f folderJSON, parent, kind string, depth int)
	walk = func(f folderJSON, parent, kind string, depth int) {
		if depth > 256 {
			return
		}
		p := string(f.Name)
		if parent != "" {
			p = parent + "/" + p
		}
		if depth > 0 {
			fo := Folder{Path: p, ID: string(f.ID), View: string(f.View), Kind: kind,
				Count: f.N.int64(), Size: f.S.int64(), UIDNext: f.I4next.int64(), ModSeq: f.I4ms.int64(),
				Color: int(f.Color.int64()), Owner: string(f.Owner), OwnerID: string(f.ZID), RemoteID: string(f.RID),
				Query: string(f.Query), Types: string(f.Types), SortBy: string(f.SortBy)}
			for _, g := range f.ACL.Grant {
				who := string(g.D)
				if who == "" {
					who = string(g.ZID)
				}
				fo.Grants = append(fo.Grants, Grant{Type: string(g.GT), Grantee: who, Perm: string(g.Perm), ZID: string(g.ZID)})
			}
			out = append(out, fo)
		} else {
			p = ""
		}
		for _, ch := range f.Folders {
			walk(ch, p, KindFolder, depth+1)
		}
		for _, ch := range f.Links {
			walk(ch, p, KindLink, depth+1)
		}
		for _, ch := range f.Search {
			walk(ch, p, KindSearch, depth+1)
		}
	}
	walk(ans.Folder[0], "", KindFolder, 0)
	slices.SortStableFunc(out, func(a, b Folder) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}
