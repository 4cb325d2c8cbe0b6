// Package files moves Zimbra Briefcase documents, with their revisions, into
// Carbonio Files.
//
// The source is read over the Zimbra REST UserServlet and the mail SOAP
// ListDocumentRevisionsRequest (Zimbra/zm-mailbox
// soap/src/java/com/zimbra/soap/mail/message/ListDocumentRevisionsRequest.java);
// the destination is written over the Files GraphQL API and the Files REST
// upload endpoints (zextras/carbonio-files-ce
// core/src/main/resources/api/schema.graphql and rest.yaml). Both sides
// authenticate as the user with the ZM_AUTH_TOKEN cookie of a DelegateAuth
// token. The wire shapes are taken from those public sources and have not
// been checked against a live server.
package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TokenSource returns a user's auth token (a DelegateAuth token, sent as
// the ZM_AUTH_TOKEN cookie); *carbonio.Client satisfies it.
type TokenSource interface {
	// UserToken returns account's token.
	UserToken(ctx context.Context, account string) (secret.Secret, error)
}

// LocalRoot is the id of a user's home folder in Carbonio Files
// (schema.graphql: getRootsList, the LOCAL_ROOT root).
const LocalRoot = "LOCAL_ROOT"

// Node is a Files folder or file.
type Node struct {
	// ID is the node id, LocalRoot for the home folder.
	ID string
	// Name is the folder's or file's name.
	Name string
	// Type is the schema's NodeType (FOLDER, TEXT, IMAGE, ...).
	Type string
	// Version is a file's current version number (0 for a folder).
	Version int
	// Size is a file's size in bytes.
	Size int64
}

// IsFolder says whether the node is a folder.
func (n Node) IsFolder() bool { return n.Type == "FOLDER" || n.Type == "ROOT" }

// Error is an error answer of the Files API.
type Error struct {
	// Status is the HTTP status (200 for a GraphQL error list).
	Status int
	// Message is the server's error text.
	Message string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("files: %d %s", e.Status, e.Message) }

// Dest writes to Carbonio Files. Set the fields before the first call; the
// methods are then safe for concurrent use.
type Dest struct {
	// URL is the Carbonio web origin, e.g. https://mail.example.com; the
	// Files paths /services/files/... are appended.
	URL string
	// Tokens gives each user's token.
	Tokens TokenSource
	// HTTPClient sends the requests; nil means httpx's default client
	// paced per host (internal/pace). Requests never leave URL's origin.
	HTTPClient *http.Client

	mu sync.Mutex
	hc *http.Client
}

func (d *Dest) client() (*http.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hc != nil {
		return d.hc, nil
	}
	scope, err := httpx.NewScope(d.URL, nil, false)
	if err != nil {
		return nil, err
	}
	hc := d.HTTPClient
	if hc == nil {
		hc = httpx.NewClient(httpx.Options{Wrap: pace.Default().Wrap})
	}
	d.hc = httpx.RestrictClient(hc, scope)
	return d.hc, nil
}

// do sends req as account with the ZM_AUTH_TOKEN cookie.
func (d *Dest) do(ctx context.Context, account string, req *http.Request) (*http.Response, error) {
	hc, err := d.client()
	if err != nil {
		return nil, err
	}
	tok, err := d.Tokens.UserToken(ctx, account)
	if err != nil {
		return nil, err
	}
	req.AddCookie(&http.Cookie{Name: "ZM_AUTH_TOKEN", Value: tok.Reveal()})
	return hc.Do(req.WithContext(ctx))
}

func (d *Dest) endpoint(p string) string {
	return strings.TrimRight(d.URL, "/") + "/services/files" + p
}

// maxJSON bounds one GraphQL or upload answer.
const maxJSON = 16 << 20

// graphql posts one query with variables and decodes data into out.
func (d *Dest) graphql(ctx context.Context, account, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, d.endpoint("/graphql"), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.do(ctx, account, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSON))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(b[:min(len(b), 200)]))}
	}
	var ans struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return fmt.Errorf("files: graphql answer: %w", err)
	}
	if len(ans.Errors) > 0 {
		return &Error{Status: resp.StatusCode, Message: ans.Errors[0].Message}
	}
	return json.Unmarshal(ans.Data, out)
}

type wireNode struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Type    string  `json:"type"`
	Version int     `json:"version"`
	Size    float64 `json:"size"`
}

func (w wireNode) node() Node {
	return Node{ID: w.ID, Name: w.Name, Type: w.Type, Version: w.Version, Size: int64(w.Size)}
}

// childrenPage is the page size of Folder.children.
const childrenPage = 100

// Children lists a folder's children (schema.graphql: Query.getNode,
// Folder.children(limit, cursor, sort), the cursor being the last node id
// of the previous page).
func (d *Dest) Children(ctx context.Context, account, folderID string) ([]Node, error) {
	const q = `query($id: ID!, $limit: Int!, $cursor: String) { getNode(node_id: $id) { id ... on Folder { children(limit: $limit, cursor: $cursor, sort: NAME_ASC) { id name type ... on File { version size } } } } }`
	var all []Node
	var cursor any
	for {
		var ans struct {
			GetNode *struct {
				Children []wireNode `json:"children"`
			} `json:"getNode"`
		}
		if err := d.graphql(ctx, account, q, map[string]any{"id": folderID, "limit": childrenPage, "cursor": cursor}, &ans); err != nil {
			return nil, err
		}
		if ans.GetNode == nil {
			return nil, &Error{Status: http.StatusNotFound, Message: "no folder " + folderID}
		}
		for _, w := range ans.GetNode.Children {
			all = append(all, w.node())
		}
		if len(ans.GetNode.Children) < childrenPage {
			return all, nil
		}
		cursor = ans.GetNode.Children[len(ans.GetNode.Children)-1].ID
	}
}

// Child returns the child of folderID named name, if any.
func (d *Dest) Child(ctx context.Context, account, folderID, name string) (Node, bool, error) {
	kids, err := d.Children(ctx, account, folderID)
	if err != nil {
		return Node{}, false, err
	}
	for _, k := range kids {
		if k.Name == name {
			return k, true, nil
		}
	}
	return Node{}, false, nil
}

// CreateFolder creates a folder (schema.graphql: Mutation.createFolder(
// destination_id, name)).
func (d *Dest) CreateFolder(ctx context.Context, account, parentID, name string) (Node, error) {
	const q = `mutation($dest: String!, $name: String!) { createFolder(destination_id: $dest, name: $name) { id name type } }`
	var ans struct {
		CreateFolder wireNode `json:"createFolder"`
	}
	if err := d.graphql(ctx, account, q, map[string]any{"dest": parentID, "name": name}, &ans); err != nil {
		return Node{}, err
	}
	if ans.CreateFolder.ID == "" {
		return Node{}, errors.New("files: createFolder answered no id")
	}
	return ans.CreateFolder.node(), nil
}

// Versions lists a file's version numbers, oldest first (schema.graphql:
// Query.getVersions(node_id)).
func (d *Dest) Versions(ctx context.Context, account, nodeID string) ([]int, error) {
	const q = `query($id: ID!) { getVersions(node_id: $id) { version } }`
	var ans struct {
		GetVersions []wireNode `json:"getVersions"`
	}
	if err := d.graphql(ctx, account, q, map[string]any{"id": nodeID}, &ans); err != nil {
		return nil, err
	}
	vs := make([]int, 0, len(ans.GetVersions))
	for _, w := range ans.GetVersions {
		vs = append(vs, w.Version)
	}
	return vs, nil
}

// Upload creates a file under parentID from body (rest.yaml: POST /upload,
// headers Filename in Base64 and ParentId; the answer is {nodeId}). size
// is the body's length, or -1 when unknown (sent chunked).
func (d *Dest) Upload(ctx context.Context, account, parentID, name, contentType string, size int64, body io.Reader) (string, error) {
	req, err := http.NewRequest(http.MethodPost, d.endpoint("/upload"), body)
	if err != nil {
		return "", err
	}
	req.ContentLength = size
	req.Header.Set("Filename", base64.StdEncoding.EncodeToString([]byte(name)))
	req.Header.Set("ParentId", parentID)
	req.Header.Set("Content-Type", orOctet(contentType))
	var ans struct {
		NodeID string `json:"nodeId"`
	}
	if err := d.rest(ctx, account, req, &ans); err != nil {
		return "", err
	}
	if ans.NodeID == "" {
		return "", errors.New("files: upload answered no nodeId")
	}
	return ans.NodeID, nil
}

// UploadVersion adds a new version to nodeID (rest.yaml: POST
// /upload-version, headers NodeId, Filename in Base64, OverwriteVersion
// false; the answer is {nodeId, version}).
func (d *Dest) UploadVersion(ctx context.Context, account, nodeID, name, contentType string, size int64, body io.Reader) (int, error) {
	req, err := http.NewRequest(http.MethodPost, d.endpoint("/upload-version"), body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = size
	req.Header.Set("NodeId", nodeID)
	req.Header.Set("Filename", base64.StdEncoding.EncodeToString([]byte(name)))
	req.Header.Set("OverwriteVersion", "false")
	req.Header.Set("Content-Type", orOctet(contentType))
	var ans struct {
		NodeID  string `json:"nodeId"`
		Version int    `json:"version"`
	}
	if err := d.rest(ctx, account, req, &ans); err != nil {
		return 0, err
	}
	return ans.Version, nil
}

// Hash streams the latest version of nodeID (rest.yaml: GET
// /download/{nodeId}) and returns its SHA-256 in hex and its size.
func (d *Dest) Hash(ctx context.Context, account, nodeID string) (string, int64, error) {
	req, err := http.NewRequest(http.MethodGet, d.endpoint("/download/"+url.PathEscape(nodeID)), nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := d.do(ctx, account, req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, &Error{Status: resp.StatusCode, Message: "download " + nodeID}
	}
	return hashBody(resp.Body)
}

func hashBody(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func (d *Dest) rest(ctx context.Context, account string, req *http.Request, out any) error {
	resp, err := d.do(ctx, account, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSON))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(b[:min(len(b), 200)]))}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("files: %s answer: %w", req.URL.Path, err)
	}
	return nil
}

func orOctet(ct string) string {
	if ct == "" {
		return "application/octet-stream"
	}
	return ct
}
