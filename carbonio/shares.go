package carbonio

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// The calls in this file re-create a mailbox's shares: folder grants,
// mountpoints and saved searches. They are urn:zimbraMail requests sent to
// the admin SOAP endpoint with the admin token and Header.context.account
// naming the mailbox owner, as Folders does: MailService is registered on
// the admin servlet (zextras/carbonio-mailbox
// store/src/main/java/com/zextras/mailbox/MailboxAPIs.java), and the
// handlers act on the requested account (getRequestedMailbox).
//
// Wire shapes, all from zextras/carbonio-mailbox:
//   - FolderActionRequest action{op:"grant", id, grant{perm, gt, zid|d}}:
//     soap/src/main/java/com/zimbra/soap/mail/type/ActionGrantSelector.java,
//     handled by store/src/main/java/com/zimbra/cs/service/mail/FolderAction.java;
//   - CreateMountpointRequest link{name, view, l, owner|zid, rid|path, color}:
//     soap/src/main/java/com/zimbra/soap/mail/type/NewMountpointSpec.java,
//     store/src/main/java/com/zimbra/cs/service/mail/CreateMountpoint.java;
//   - CreateSearchFolderRequest search{name, query, types, sortBy, l}:
//     soap/src/main/java/com/zimbra/soap/mail/type/NewSearchFolderSpec.java.
//
// No live server has answered these calls from this code: the shapes are
// read from the sources above.

// CodeAlreadyExists is the fault of a create whose name is taken in the
// parent folder (MailServiceException.ALREADY_EXISTS).
const CodeAlreadyExists = "mail.ALREADY_EXISTS"

// ErrAlreadyExists matches a *Fault with CodeAlreadyExists.
var ErrAlreadyExists error = &faultSentinel{CodeAlreadyExists}

// RootFolderID is the id of a mailbox's root folder (USER_ROOT,
// Mailbox.ID_FOLDER_USER_ROOT), the parent of top-level folders.
const RootFolderID = "1"

// Grantee types of a folder grant (ACL.stringToType).
const (
	GranteeUser   = "usr"
	GranteeGroup  = "grp"
	GranteeDomain = "dom"
	GranteeCOS    = "cos"
	GranteeAll    = "all" // all authenticated users
	GranteePublic = "pub"
	GranteeGuest  = "guest"
	GranteeKey    = "key"
)

// GranteeID looks a grantee up in the directory by name and returns its
// id: an account (GetAccountRequest) for "usr", a distribution list
// (GetDistributionListRequest) for "grp", a domain (GetDomainRequest) for
// "dom". A missing grantee is a *Fault matching ErrNoSuchAccount,
// ErrNoSuchDistList or ErrNoSuchDomain.
//
// FolderAction must be given the id: with only a name, a "usr" grant to
// an address the server does not know silently becomes a guest grant
// (FolderAction.java, the NO_SUCH_ACCOUNT branch of OP_GRANT).
func (c *Client) GranteeID(ctx context.Context, typ, name string) (string, error) {
	switch typ {
	case GranteeUser:
		a, err := c.Account(ctx, name)
		if err != nil {
			return "", err
		}
		return a.ID, nil
	case GranteeDomain:
		d, err := c.Domain(ctx, name)
		if err != nil {
			return "", err
		}
		return d.ID, nil
	case GranteeGroup:
		// soap/src/main/java/com/zimbra/soap/admin/message/GetDistributionListRequest.java
		var ans struct {
			DL list[namedJSON] `json:"dl"`
		}
		err := c.call(ctx, "GetDistributionListRequest", map[string]any{
			"dl": map[string]any{"by": "name", "_content": name},
		}, callOpts{idempotent: true}, &ans)
		if err != nil {
			return "", err
		}
		if len(ans.DL) == 0 {
			return "", shapeErr("GetDistributionListRequest", "no dl in the answer")
		}
		return string(ans.DL[0].ID), nil
	}
	return "", fmt.Errorf("carbonio: no directory lookup for grantee type %q", typ)
}

// Grant gives g on folder folderID of account (FolderActionRequest,
// op "grant"). For "usr", "grp" and "dom" g.ZID must hold the grantee's id
// on this server (see GranteeID); for "all" and "pub" no grantee is sent.
// A grant to a grantee that already has one replaces its rights
// (Mailbox.grantAccess keeps one grant per grantee). Guest and key grants
// are refused here: their password or access key is never returned by the
// source, so they cannot be copied.
func (c *Client) Grant(ctx context.Context, account, folderID string, g Grant) error {
	gr := map[string]any{"perm": g.Perm, "gt": g.Type}
	switch g.Type {
	case GranteeAll, GranteePublic:
	case GranteeUser, GranteeGroup, GranteeDomain, GranteeCOS:
		if g.ZID == "" {
			return fmt.Errorf("carbonio: grant on folder %s of %s: no id for %s grantee %s", folderID, account, g.Type, g.Grantee)
		}
		gr["zid"] = g.ZID
	default:
		return fmt.Errorf("carbonio: grant on folder %s of %s: %s grants carry a secret and cannot be copied", folderID, account, g.Type)
	}
	err := c.call(ctx, "FolderActionRequest", map[string]any{
		"action": map[string]any{"op": "grant", "id": folderID, "grant": gr},
	}, callOpts{ns: nsMail, account: account, idempotent: true}, nil)
	if err != nil {
		return fmt.Errorf("carbonio: grant %s %s on folder %s of %s: %w", g.Type, g.Grantee, folderID, account, err)
	}
	return nil
}

// Mountpoint is a link in one mailbox to another account's folder.
type Mountpoint struct {
	// Name is the link's name in its parent folder.
	Name string
	// ParentID is the parent folder's id ("l"); "" means RootFolderID.
	ParentID string
	// View is the default item type ("message", "appointment", ...);
	// "" lets the server take the shared folder's.
	View string
	// Owner is the owner's address; OwnerID, when set, is sent instead.
	Owner, OwnerID string
	// RemoteID is the shared folder's id in the owner's mailbox; when
	// empty, Path is sent instead.
	RemoteID, Path string
	// Color is the color index (0-127; 0 is not sent).
	Color int
}

// CreateMountpoint creates m in account's mailbox (CreateMountpointRequest)
// and returns the new link's id. A name already taken in the parent is a
// *Fault matching ErrAlreadyExists.
func (c *Client) CreateMountpoint(ctx context.Context, account string, m Mountpoint) (string, error) {
	link := map[string]any{"name": m.Name, "l": parentOrRoot(m.ParentID)}
	if m.View != "" {
		link["view"] = m.View
	}
	if m.OwnerID != "" {
		link["zid"] = m.OwnerID
	} else {
		link["owner"] = m.Owner
	}
	if m.RemoteID != "" {
		rid, err := strconv.Atoi(LocalID(m.RemoteID))
		if err != nil {
			return "", fmt.Errorf("carbonio: mountpoint %s of %s: remote id %q is not a number", m.Name, account, m.RemoteID)
		}
		link["rid"] = rid
	} else {
		link["path"] = m.Path
	}
	if m.Color > 0 {
		link["color"] = m.Color
	}
	var ans struct {
		Link list[folderJSON] `json:"link"`
	}
	err := c.call(ctx, "CreateMountpointRequest", map[string]any{"link": link},
		callOpts{ns: nsMail, account: account}, &ans)
	if err != nil {
		return "", fmt.Errorf("carbonio: mountpoint %s of %s: %w", m.Name, account, err)
	}
	if len(ans.Link) == 0 {
		return "", shapeErr("CreateMountpointRequest", "no link in the answer")
	}
	return string(ans.Link[0].ID), nil
}

// SearchFolder is a saved search.
type SearchFolder struct {
	Name string // the saved search's name
	// ParentID is the parent folder's id ("l"); "" means RootFolderID.
	ParentID string
	Query    string // the search query
	// Types and SortBy are sent when set ("message", "dateDesc", ...).
	Types, SortBy string
	// Color is the color index (0-127; 0 is not sent).
	Color int
}

// CreateSearchFolder creates s in account's mailbox
// (CreateSearchFolderRequest) and returns its id. A name already taken in
// the parent is a *Fault matching ErrAlreadyExists.
func (c *Client) CreateSearchFolder(ctx context.Context, account string, s SearchFolder) (string, error) {
	sf := map[string]any{"name": s.Name, "query": s.Query, "l": parentOrRoot(s.ParentID)}
	if s.Types != "" {
		sf["types"] = s.Types
	}
	if s.SortBy != "" {
		sf["sortBy"] = s.SortBy
	}
	if s.Color > 0 {
		sf["color"] = s.Color
	}
	var ans struct {
		Search list[folderJSON] `json:"search"`
	}
	err := c.call(ctx, "CreateSearchFolderRequest", map[string]any{"search": sf},
		callOpts{ns: nsMail, account: account}, &ans)
	if err != nil {
		return "", fmt.Errorf("carbonio: saved search %s of %s: %w", s.Name, account, err)
	}
	if len(ans.Search) == 0 {
		return "", shapeErr("CreateSearchFolderRequest", "no search in the answer")
	}
	return string(ans.Search[0].ID), nil
}

// LocalID returns the item number of a folder id. The server qualifies ids
// with their mailbox's account id ("<account id>:257") when the
// authenticated account is not the mailbox's, as when the admin acts as a
// user (store/src/main/java/com/zimbra/cs/service/util/ItemIdFormatter.java,
// ItemId.toString); a mountpoint's "rid" is always a bare number.
func LocalID(id string) string {
	if i := strings.LastIndexByte(id, ':'); i >= 0 {
		return id[i+1:]
	}
	return id
}

func parentOrRoot(id string) string {
	if id == "" {
		return RootFolderID
	}
	return id
}
