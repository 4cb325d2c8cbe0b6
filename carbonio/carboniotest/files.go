package carboniotest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Files is a fake Carbonio Files service: the GraphQL queries and
// mutations the files phase sends (zextras/carbonio-files-ce
// core/src/main/resources/api/schema.graphql: getNode, Folder.children,
// getVersions, createFolder) and the REST upload, upload-version and
// download endpoints (rest.yaml). It fails like the real service where the
// phase depends on it: a field or argument the schema does not have is a
// validation error, a name already present in a folder is refused, and
// an upload can be cut off mid-body. Serve it with httptest.NewServer.
type Files struct {
	// TokenCheck, when set, also accepts a token for which it returns
	// true for a user added with AddUser, e.g. (*Server).ValidUserToken.
	TokenCheck func(account, token string) bool

	mu     sync.Mutex
	tokens map[string]string // token → account
	nodes  map[string]*fileNode
	roots  map[string]string // account → root node id
	next   int

	cutNth   int   // the cutNth upload from now is cut off; 0 off
	cutAfter int64 // bytes of its body read before the connection drops
	dropNth  int   // the dropNth upload from now is stored, then its connection dropped before the answer

	// Uploads and Versions count the successful upload and upload-version
	// requests; Folders counts createFolder mutations.
	Uploads, VersionUploads, Folders int
}

type fileNode struct {
	id, parent, name, owner, ct string
	folder                      bool
	versions                    [][]byte
}

// NewFiles returns an empty Files service.
func NewFiles() *Files {
	return &Files{tokens: map[string]string{}, nodes: map[string]*fileNode{}, roots: map[string]string{}}
}

// AddUser gives account a home (LOCAL_ROOT) and accepts token as its
// ZM_AUTH_TOKEN.
func (f *Files) AddUser(account, token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = account
	if _, ok := f.roots[account]; !ok {
		id := f.newID()
		f.nodes[id] = &fileNode{id: id, name: "ROOT", owner: account, folder: true}
		f.roots[account] = id
	}
}

// CutUpload makes the nth upload or upload-version from now (1 is the
// next) read n bytes of its body and then drop the connection, storing
// nothing.
func (f *Files) CutUpload(nth int, n int64) {
	f.mu.Lock()
	f.cutNth, f.cutAfter = nth, n
	f.mu.Unlock()
}

// DropReply makes the nth upload or upload-version from now store the
// file or version and then drop the connection before answering, as when
// the client is killed after the server committed.
func (f *Files) DropReply(nth int) {
	f.mu.Lock()
	f.dropNth = nth
	f.mu.Unlock()
}

// File is a stored file as a test sees it.
type File struct {
	ID       string   // the Files node id
	Path     string   // from the home, e.g. "Briefcase/a.txt"
	Versions [][]byte // the content of each version, oldest first
}

// Tree lists account's files, sorted by path.
func (f *Files) Tree(account string) []File {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []File
	for _, n := range f.nodes {
		if n.folder || n.owner != account {
			continue
		}
		out = append(out, File{ID: n.id, Path: f.path(n), Versions: slices.Clone(n.versions)})
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// FolderPaths lists account's folders below the home, sorted.
func (f *Files) FolderPaths(account string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.nodes {
		if n.folder && n.owner == account && n.parent != "" {
			out = append(out, f.path(n))
		}
	}
	slices.Sort(out)
	return out
}

// Corrupt flips the first byte of the latest version of the file at path.
func (f *Files) Corrupt(account, path string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nodes {
		if !n.folder && n.owner == account && f.path(n) == path && len(n.versions) > 0 {
			v := slices.Clone(n.versions[len(n.versions)-1])
			if len(v) == 0 {
				return false
			}
			v[0] ^= 0xff
			n.versions[len(n.versions)-1] = v
			return true
		}
	}
	return false
}

func (f *Files) path(n *fileNode) string {
	var segs []string
	for n != nil && n.parent != "" {
		segs = append([]string{n.name}, segs...)
		n = f.nodes[n.parent]
	}
	return strings.Join(segs, "/")
}

func (f *Files) newID() string {
	f.next++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", f.next)
}

// ServeHTTP implements http.Handler under /services/files/.
func (f *Files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie("ZM_AUTH_TOKEN")
	f.mu.Lock()
	acct := ""
	if err == nil {
		acct = f.tokens[c.Value]
		if acct == "" && f.TokenCheck != nil {
			for a := range f.roots {
				if f.TokenCheck(a, c.Value) {
					acct = a
				}
			}
		}
	}
	f.mu.Unlock()
	if acct == "" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/services/files")
	switch {
	case p == "/graphql" && r.Method == http.MethodPost:
		f.graphql(w, r, acct)
	case (p == "/upload" || p == "/upload-version") && r.Method == http.MethodPost:
		f.upload(w, r, acct, p == "/upload-version")
	case strings.HasPrefix(p, "/download/") && r.Method == http.MethodGet:
		f.download(w, acct, strings.TrimPrefix(p, "/download/"))
	default:
		http.NotFound(w, r)
	}
}

// The names the phase's documents may use, from schema.graphql: fields of
// Query, Mutation, Node, Folder and File, their arguments, the type
// conditions, scalar types and the NodeSort values. Any other name is a
// validation error, as in graphql-java.
var filesSchemaNames = map[string]bool{
	"query": true, "mutation": true, "on": true, "Folder": true, "File": true, "ID": true, "Int": true, "String": true, "Boolean": true,
	"getNode": true, "node_id": true, "version": true, "getVersions": true, "versions": true, "createFolder": true,
	"destination_id": true, "name": true, "id": true, "type": true, "size": true, "children": true, "limit": true,
	"cursor": true, "sort": true, "NAME_ASC": true, "mime_type": true, "extension": true, "description": true,
	"created_at": true, "updated_at": true, "flagged": true, "rootId": true, "keep_forever": true,
}

var gqlVar = regexp.MustCompile(`\$[A-Za-z_][A-Za-z0-9_]*`)
var gqlName = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
var gqlString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

type gqlError struct {
	Message string `json:"message"`
}

func gqlAnswer(w http.ResponseWriter, data any, errs ...string) {
	out := map[string]any{"data": data}
	if len(errs) > 0 {
		var es []gqlError
		for _, e := range errs {
			es = append(es, gqlError{Message: e})
		}
		out["errors"] = es
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (f *Files) graphql(w http.ResponseWriter, r *http.Request, acct string) {
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	for _, n := range gqlName.FindAllString(gqlVar.ReplaceAllString(gqlString.ReplaceAllString(req.Query, ""), ""), -1) {
		if !filesSchemaNames[n] {
			gqlAnswer(w, nil, fmt.Sprintf("Validation error (FieldUndefined): Field '%s' is undefined", n))
			return
		}
	}
	v := req.Variables
	str := func(k string) string { s, _ := v[k].(string); return s }
	f.mu.Lock()
	defer f.mu.Unlock()
	resolve := func(id string) *fileNode {
		if id == "LOCAL_ROOT" {
			id = f.roots[acct]
		}
		n := f.nodes[id]
		if n == nil || n.owner != acct {
			return nil
		}
		return n
	}
	switch {
	case strings.Contains(req.Query, "createFolder"):
		parent := resolve(str("dest"))
		name := str("name")
		if parent == nil || !parent.folder {
			gqlAnswer(w, nil, "Could not find folder with id "+str("dest"))
			return
		}
		if name == "" || strings.Contains(name, "/") {
			gqlAnswer(w, nil, "invalid name")
			return
		}
		if f.childNamed(parent.id, name) != nil {
			gqlAnswer(w, nil, "Node with name "+name+" already exists in folder "+str("dest"))
			return
		}
		id := f.newID()
		f.nodes[id] = &fileNode{id: id, parent: parent.id, name: name, owner: acct, folder: true}
		f.Folders++
		gqlAnswer(w, map[string]any{"createFolder": map[string]any{"id": id, "name": name, "type": "FOLDER"}})
	case strings.Contains(req.Query, "getVersions"):
		n := resolve(str("id"))
		if n == nil || n.folder {
			gqlAnswer(w, map[string]any{"getVersions": []any{}})
			return
		}
		var vs []map[string]any
		for i := range n.versions {
			vs = append(vs, map[string]any{"version": i + 1})
		}
		gqlAnswer(w, map[string]any{"getVersions": vs})
	case strings.Contains(req.Query, "getNode"):
		n := resolve(str("id"))
		if n == nil {
			gqlAnswer(w, map[string]any{"getNode": nil})
			return
		}
		limit, _ := v["limit"].(float64)
		if limit <= 0 {
			gqlAnswer(w, nil, "limit must be positive")
			return
		}
		var kids []*fileNode
		for _, c := range f.nodes {
			if c.parent == n.id {
				kids = append(kids, c)
			}
		}
		slices.SortFunc(kids, func(a, b *fileNode) int { return strings.Compare(a.name, b.name) })
		if cur := str("cursor"); cur != "" {
			i := slices.IndexFunc(kids, func(k *fileNode) bool { return k.id == cur })
			kids = kids[i+1:]
		}
		if len(kids) > int(limit) {
			kids = kids[:int(limit)]
		}
		var out []map[string]any
		for _, k := range kids {
			m := map[string]any{"id": k.id, "name": k.name, "type": "FOLDER"}
			if !k.folder {
				m["type"], m["version"], m["size"] = "OTHER", len(k.versions), float64(len(k.versions[len(k.versions)-1]))
			}
			out = append(out, m)
		}
		gqlAnswer(w, map[string]any{"getNode": map[string]any{"id": n.id, "children": out}})
	default:
		gqlAnswer(w, nil, "operation not served by this fake")
	}
}

func (f *Files) childNamed(parent, name string) *fileNode {
	for _, c := range f.nodes {
		if c.parent == parent && c.name == name {
			return c
		}
	}
	return nil
}

func (f *Files) upload(w http.ResponseWriter, r *http.Request, acct string, version bool) {
	nameB, err := base64.StdEncoding.DecodeString(r.Header.Get("Filename"))
	if err != nil || len(nameB) == 0 {
		http.Error(w, "Filename must be Base64", http.StatusBadRequest)
		return
	}
	name := string(nameB)
	if version && r.Header.Get("OverwriteVersion") != "false" && r.Header.Get("OverwriteVersion") != "true" {
		http.Error(w, "OverwriteVersion required", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	cut, drop := false, false
	if f.cutNth > 0 {
		f.cutNth--
		cut = f.cutNth == 0
	}
	if f.dropNth > 0 {
		f.dropNth--
		drop = f.dropNth == 0
	}
	after := f.cutAfter
	f.mu.Unlock()
	if cut {
		_, _ = io.CopyN(io.Discard, r.Body, after)
		panic(http.ErrAbortHandler)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	var ans map[string]any
	if version {
		n := f.nodes[r.Header.Get("NodeId")]
		if n == nil || n.folder || n.owner != acct {
			f.mu.Unlock()
			http.Error(w, "no such node", http.StatusNotFound)
			return
		}
		if r.Header.Get("OverwriteVersion") == "true" {
			n.versions[len(n.versions)-1] = body
		} else {
			n.versions = append(n.versions, body)
		}
		f.VersionUploads++
		ans = map[string]any{"nodeId": n.id, "version": len(n.versions)}
	} else {
		pid := r.Header.Get("ParentId")
		if pid == "" || pid == "LOCAL_ROOT" {
			pid = f.roots[acct]
		}
		p := f.nodes[pid]
		if p == nil || !p.folder || p.owner != acct {
			f.mu.Unlock()
			http.Error(w, "no such folder", http.StatusNotFound)
			return
		}
		if f.childNamed(pid, name) != nil {
			f.mu.Unlock()
			http.Error(w, "a node named "+name+" exists", http.StatusConflict)
			return
		}
		id := f.newID()
		f.nodes[id] = &fileNode{id: id, parent: pid, name: name, owner: acct, ct: r.Header.Get("Content-Type"), versions: [][]byte{body}}
		f.Uploads++
		ans = map[string]any{"nodeId": id}
	}
	f.mu.Unlock()
	if drop {
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

func (f *Files) download(w http.ResponseWriter, acct, rest string) {
	id, ver, _ := strings.Cut(rest, "/")
	f.mu.Lock()
	n := f.nodes[id]
	var b []byte
	if n != nil && !n.folder && n.owner == acct {
		i := len(n.versions)
		if ver != "" {
			i, _ = strconv.Atoi(ver)
		}
		if i >= 1 && i <= len(n.versions) {
			b = n.versions[i-1]
		}
	}
	f.mu.Unlock()
	if b == nil {
		http.NotFound(w, nil)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}
