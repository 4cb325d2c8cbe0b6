package carboniotest

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/zxmigrate/zxmigrate/carbonio"
)

// Well-known grantee ids of "all" and "pub" grants (GuestAccount.GUID_AUTHUSER
// and GUID_PUBLIC in zextras/carbonio-mailbox).
const (
	guidAuthUser = "00000000-0000-0000-0000-000000000000"
	guidPublic   = "99999999-9999-9999-9999-999999999999"
)

func cloneFolders(fs []FixtureFolder) []FixtureFolder {
	out := slices.Clone(fs)
	for i := range out {
		out[i].Grants = slices.Clone(out[i].Grants)
		out[i].Folders = cloneFolders(out[i].Folders)
	}
	return out
}

// numberFolders gives every folder without an id the next one.
func (a *account) numberFolders(fs []FixtureFolder) {
	for i := range fs {
		if fs[i].ID == "" {
			a.lastFolder++
			fs[i].ID = strconv.Itoa(a.lastFolder)
		} else if n, err := strconv.Atoi(fs[i].ID); err == nil && n > a.lastFolder {
			a.lastFolder = n
		}
		a.numberFolders(fs[i].Folders)
	}
}

// findIn returns the folder of a with id, bare ("257") or qualified with
// a's id ("<id>:257"); the root's children for RootFolderID, with a nil
// folder.
func (a *account) findIn(id string) (*FixtureFolder, *[]FixtureFolder, bool) {
	if acct, n, ok := strings.Cut(id, ":"); ok {
		if acct != a.id {
			return nil, nil, false
		}
		id = n
	}
	return findFolder(&a.folders, id)
}

// findFolder returns the folder with id (the root's children for
// RootFolderID, with a nil folder).
func findFolder(fs *[]FixtureFolder, id string) (*FixtureFolder, *[]FixtureFolder, bool) {
	if id == carbonio.RootFolderID {
		return nil, fs, true
	}
	for i := range *fs {
		f := &(*fs)[i]
		if f.ID == id {
			return f, &f.Folders, true
		}
		if g, kids, ok := findFolder(&f.Folders, id); ok {
			return g, kids, true
		}
	}
	return nil, nil, false
}

// strictObject decodes raw (an object or a one-element array) and refuses
// fields outside allowed, as the server's JAXB binding refuses what its
// request classes do not declare.
func strictObject(raw json.RawMessage, what string, allowed ...string) (map[string]json.RawMessage, *soapFault) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var a []json.RawMessage
		if json.Unmarshal(raw, &a) != nil || len(a) != 1 {
			return nil, faultf("service.INVALID_REQUEST", "want one %s element", what)
		}
		raw = a[0]
	}
	var o map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &o) != nil || o == nil {
		return nil, faultf("service.INVALID_REQUEST", "missing %s element", what)
	}
	for k := range o {
		if k != "_jsns" && !slices.Contains(allowed, k) {
			return nil, faultf("service.INVALID_REQUEST", "unknown field %q in %s", k, what)
		}
	}
	return o, nil
}

func nameTaken(kids []FixtureFolder, name string) bool {
	for _, k := range kids {
		if strings.EqualFold(k.Name, name) {
			return true
		}
	}
	return false
}

// dispatchShares serves the share requests; the caller holds s.mu.
func (s *Server) dispatchShares(name string, body, ctx json.RawMessage) (map[string]any, *soapFault) {
	if name == "GetDistributionListRequest" {
		n := strings.ToLower(str(field(body, "dl")))
		if _, ok := s.lists[n]; !ok {
			return nil, faultf(carbonio.CodeNoSuchDL, "no such distribution list: %s", n)
		}
		return map[string]any{"dl": []any{map[string]any{"name": n, "id": "dl-" + n}}}, nil
	}
	n := strings.ToLower(str(field(ctx, "account")))
	a, ok := s.accounts[n]
	if !ok {
		return nil, faultf(carbonio.CodeNoSuchAccount, "no such account: %s", n)
	}
	switch name {
	case "FolderActionRequest":
		if _, f := strictObject(body, "FolderActionRequest", "action"); f != nil {
			return nil, f
		}
		act, f := strictObject(field(body, "action"), "action", "op", "id", "grant")
		if f != nil {
			return nil, f
		}
		if op := str(act["op"]); op != "grant" {
			return nil, faultf("service.INVALID_REQUEST", "the fake serves op grant only, not %q", op)
		}
		g, f := strictObject(act["grant"], "grant", "perm", "gt", "zid", "d", "args", "pw", "key", "expiry")
		if f != nil {
			return nil, f
		}
		id := str(act["id"])
		folder, _, ok := a.findIn(id)
		if !ok || folder == nil {
			return nil, faultf("mail.NO_SUCH_FOLDER", "no such folder id: %s", id)
		}
		perm, gt, zid := str(g["perm"]), str(g["gt"]), str(g["zid"])
		if perm == "" || gt == "" {
			return nil, faultf("service.INVALID_REQUEST", "missing required attribute: perm or gt")
		}
		d := ""
		switch gt {
		case carbonio.GranteeAll:
			zid = guidAuthUser
		case carbonio.GranteePublic:
			zid = guidPublic
		case carbonio.GranteeUser, carbonio.GranteeGroup, carbonio.GranteeDomain:
			if zid == "" {
				return nil, faultf("service.INVALID_REQUEST", "the fake wants zid for %s grants", gt)
			}
			if d = s.granteeName(gt, zid); d == "" {
				code := map[string]string{"usr": carbonio.CodeNoSuchAccount, "grp": carbonio.CodeNoSuchDL, "dom": carbonio.CodeNoSuchDomain}[gt]
				return nil, faultf(code, "no such grantee: %s", zid)
			}
		default:
			return nil, faultf("service.INVALID_REQUEST", "the fake does not serve %s grants", gt)
		}
		ng := FixtureGrant{Type: gt, Grantee: d, Perm: perm, ZID: zid}
		replaced := false
		for i, old := range folder.Grants {
			if old.ZID == zid {
				folder.Grants[i], replaced = ng, true
			}
		}
		if !replaced {
			folder.Grants = append(folder.Grants, ng)
		}
		return map[string]any{"action": map[string]any{"op": "grant", "id": id, "zid": zid, "d": d}}, nil
	case "CreateMountpointRequest":
		if _, f := strictObject(body, "CreateMountpointRequest", "link"); f != nil {
			return nil, f
		}
		l, f := strictObject(field(body, "link"), "link", "name", "view", "f", "color", "rgb", "url", "l",
			"fie", "reminder", "zid", "owner", "rid", "path")
		if f != nil {
			return nil, f
		}
		owner := s.accountByID(str(l["zid"]))
		if owner == nil {
			owner = s.accounts[strings.ToLower(str(l["owner"]))]
		}
		if owner == nil {
			return nil, faultf(carbonio.CodePermDenied, "you do not have sufficient permissions")
		}
		if owner == a {
			return nil, faultf("service.INVALID_REQUEST", "cannot mount your own folder")
		}
		// rid is an int attribute: a qualified id is refused.
		rid := str(l["rid"])
		if _, err := strconv.Atoi(rid); err != nil {
			return nil, faultf("service.INVALID_REQUEST", "invalid request: rid %q is not a number", rid)
		}
		remote, _, ok := findFolder(&owner.folders, rid)
		if !ok || remote == nil {
			return nil, faultf("mail.NO_SUCH_FOLDER", "no such folder id: %s", rid)
		}
		view := str(l["view"])
		if view == "" {
			view = remote.View
		}
		color, _ := strconv.Atoi(str(l["color"]))
		nf := FixtureFolder{Name: str(l["name"]), Kind: carbonio.KindLink, View: view, Owner: owner.name,
			OwnerID: owner.id, RemoteID: remote.ID, Color: color}
		return s.createIn(a, str(l["l"]), nf, "link")
	case "CreateSearchFolderRequest":
		if _, f := strictObject(body, "CreateSearchFolderRequest", "search"); f != nil {
			return nil, f
		}
		sf, f := strictObject(field(body, "search"), "search", "name", "query", "types", "sortBy", "f", "color", "rgb", "l")
		if f != nil {
			return nil, f
		}
		if str(sf["query"]) == "" {
			return nil, faultf("service.INVALID_REQUEST", "missing required attribute: query")
		}
		color, _ := strconv.Atoi(str(sf["color"]))
		nf := FixtureFolder{Name: str(sf["name"]), Kind: carbonio.KindSearch, Query: str(sf["query"]),
			Types: str(sf["types"]), SortBy: str(sf["sortBy"]), Color: color}
		return s.createIn(a, str(sf["l"]), nf, "search")
	}
	return nil, faultf("service.UNKNOWN_DOCUMENT", "unknown document: %s", name)
}

// createIn adds nf under parent of a and answers with it as elem.
func (s *Server) createIn(a *account, parent string, nf FixtureFolder, elem string) (map[string]any, *soapFault) {
	if nf.Name == "" || parent == "" {
		return nil, faultf("service.INVALID_REQUEST", "missing required attribute: name or l")
	}
	_, kids, ok := a.findIn(parent)
	if !ok {
		return nil, faultf("mail.NO_SUCH_FOLDER", "no such folder id: %s", parent)
	}
	if nameTaken(*kids, nf.Name) {
		return nil, faultf(carbonio.CodeAlreadyExists, "object with that name already exists: %s", nf.Name)
	}
	a.lastFolder++
	nf.ID = strconv.Itoa(a.lastFolder)
	*kids = append(*kids, nf)
	return map[string]any{elem: []any{folderTree(nf, a.id)}}, nil
}

func (s *Server) accountByID(id string) *account {
	if id == "" {
		return nil
	}
	for _, a := range s.accounts {
		if a.id == id {
			return a
		}
	}
	return nil
}

// granteeName returns the name of the grantee with id, "" when unknown.
func (s *Server) granteeName(gt, id string) string {
	switch gt {
	case carbonio.GranteeUser:
		if a := s.accountByID(id); a != nil {
			return a.name
		}
	case carbonio.GranteeGroup:
		if n, ok := strings.CutPrefix(id, "dl-"); ok {
			if _, ok := s.lists[n]; ok {
				return n
			}
		}
	case carbonio.GranteeDomain:
		if n, ok := strings.CutPrefix(id, "dom-"); ok && slices.Contains(s.domains, n) {
			return n
		}
	}
	return ""
}

// AccountID returns the id of account name ("" when unknown), for tests
// that build mountpoints or grants by id.
func (s *Server) AccountID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[strings.ToLower(name)]; ok {
		return a.id
	}
	return ""
}
