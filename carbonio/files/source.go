package files

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/pace"
)

// Document is one Briefcase document of the source.
type Document struct {
	// ID is the source item id.
	ID string
	// Name is the document's name.
	Name string
	// Version is the current revision number.
	Version int
	// Size is the current revision's size in bytes.
	Size int64
	// ContentType is the current revision's MIME type.
	ContentType string
}

// Revision is one revision of a document.
type Revision struct {
	// Version is the revision number, from 1.
	Version int
	// Size is the revision's size in bytes.
	Size int64
	// ContentType is the revision's MIME type.
	ContentType string
}

// Source reads a Zimbra 8.8.15 Briefcase over REST. Set the fields before
// the first call; the methods are then safe for concurrent use.
type Source struct {
	// URL is the mailstore's origin, e.g. https://zimbra.example.com:7071.
	// On an admin port (7071, 6071) the token travels in the
	// ZM_ADMIN_AUTH_TOKEN cookie, elsewhere in ZM_AUTH_TOKEN (see
	// dav.TokenCookie).
	URL string
	// Tokens gives the token sent for each account.
	Tokens TokenSource
	// HTTPClient sends the requests; nil means httpx's default client
	// paced per host. Requests never leave URL's origin.
	HTTPClient *http.Client

	mu sync.Mutex
	hc *http.Client
}

func (s *Source) client() (*http.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hc != nil {
		return s.hc, nil
	}
	scope, err := httpx.NewScope(s.URL, nil, false)
	if err != nil {
		return nil, err
	}
	hc := s.HTTPClient
	if hc == nil {
		hc = httpx.NewClient(httpx.Options{Wrap: pace.Default().Wrap})
	}
	s.hc = httpx.RestrictClient(hc, scope)
	return s.hc, nil
}

func (s *Source) do(ctx context.Context, account string, req *http.Request) (*http.Response, error) {
	hc, err := s.client()
	if err != nil {
		return nil, err
	}
	tok, err := s.Tokens.UserToken(ctx, account)
	if err != nil {
		return nil, err
	}
	req.AddCookie(&http.Cookie{Name: dav.TokenCookie(s.URL), Value: tok.Reveal()})
	return hc.Do(req.WithContext(ctx))
}

func (s *Source) home(account string, folder string) string {
	p := "/home/" + url.PathEscape(account) + "/"
	for _, seg := range strings.Split(strings.Trim(folder, "/"), "/") {
		if seg != "" {
			p += url.PathEscape(seg) + "/"
		}
	}
	return strings.TrimRight(s.URL, "/") + p
}

// Documents lists the documents of one Briefcase folder (path from the
// mailbox root, e.g. "Briefcase/Projects") with the UserServlet's JSON
// format: GET /home/<user>/<folder>?fmt=json. JsonFormatter is XmlFormatter
// with JSON elements: an "items" root holding each item as
// ToXML.encodeItem writes it, documents as "doc" elements with id, name,
// ver, s and ct (Zimbra/zm-mailbox
// store/src/java/com/zimbra/cs/service/formatter/JsonFormatter.java,
// XmlFormatter.java, store/src/java/com/zimbra/cs/service/mail/ToXML.java).
// The JSON shape of that root is inferred, not seen on a live server.
// Sub-folders are not descended into; list them from the inventory.
func (s *Source) Documents(ctx context.Context, account, folder string) ([]Document, error) {
	req, err := http.NewRequest(http.MethodGet, s.home(account, folder)+"?fmt=json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.do(ctx, account, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSON))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Status: resp.StatusCode, Message: "list " + folder}
	}
	var ans struct {
		Doc []wireDoc `json:"doc"`
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &ans); err != nil {
			return nil, fmt.Errorf("files: briefcase listing of %s: %w", folder, err)
		}
	}
	docs := make([]Document, 0, len(ans.Doc))
	for _, w := range ans.Doc {
		docs = append(docs, Document{ID: w.ID, Name: w.Name, Version: w.Ver, Size: w.S, ContentType: w.CT})
	}
	return docs, nil
}

// maxRevisions is the smallest count asked of ListDocumentRevisions.
const maxRevisions = 1000

type wireDoc struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Ver  int    `json:"ver"`
	S    int64  `json:"s"`
	CT   string `json:"ct"`
}

// Revisions lists a document's revisions, oldest first, with the mail SOAP
// ListDocumentRevisionsRequest doc{id, count} (Zimbra/zm-mailbox
// soap/src/java/com/zimbra/soap/mail/message/ListDocumentRevisionsRequest.java,
// soap/src/java/com/zimbra/soap/mail/type/ListDocumentRevisionsSpec.java):
// count revisions back from the current one. Purged revisions are absent.
// count is at least maxRevisions, so that a listing without ver loses
// none.
func (s *Source) Revisions(ctx context.Context, account string, d Document) ([]Revision, error) {
	count := max(d.Version, maxRevisions)
	env := map[string]any{
		"Header": map[string]any{"context": map[string]any{
			"_jsns":   "urn:zimbra",
			"account": map[string]any{"by": "name", "_content": account},
		}},
		"Body": map[string]any{"ListDocumentRevisionsRequest": map[string]any{
			"_jsns": "urn:zimbraMail",
			"doc":   map[string]any{"id": d.ID, "count": count},
		}},
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(s.URL, "/")+"/service/soap/ListDocumentRevisionsRequest", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.do(ctx, account, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSON))
	if err != nil {
		return nil, err
	}
	var ans struct {
		Body struct {
			Resp *struct {
				Doc []wireDoc `json:"doc"`
			} `json:"ListDocumentRevisionsResponse"`
			Fault *struct {
				Reason struct {
					Text string `json:"Text"`
				} `json:"Reason"`
			} `json:"Fault"`
		} `json:"Body"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("files: ListDocumentRevisions (HTTP %d): %w", resp.StatusCode, err)
	}
	if ans.Body.Fault != nil {
		return nil, &Error{Status: resp.StatusCode, Message: ans.Body.Fault.Reason.Text}
	}
	if ans.Body.Resp == nil {
		return nil, fmt.Errorf("files: ListDocumentRevisions: no answer (HTTP %d)", resp.StatusCode)
	}
	revs := make([]Revision, 0, len(ans.Body.Resp.Doc))
	for _, w := range ans.Body.Resp.Doc {
		revs = append(revs, Revision{Version: w.Ver, Size: w.S, ContentType: w.CT})
	}
	slices.SortFunc(revs, func(a, b Revision) int { return a.Version - b.Version })
	return revs, nil
}

// Open streams one revision: GET /home/<user>/?id=<id>&ver=<n> (the
// UserServlet's id and ver parameters, Zimbra/zm-mailbox
// store/src/java/com/zimbra/cs/service/UserServlet.java QP_ID, QP_VERSION).
// It returns the body's length, -1 when the server does not say. The
// caller closes the body.
func (s *Source) Open(ctx context.Context, account, id string, ver int) (io.ReadCloser, int64, error) {
	q := url.Values{"id": {id}, "ver": {strconv.Itoa(ver)}}
	req, err := http.NewRequest(http.MethodGet, s.home(account, "")+"?"+q.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := s.do(ctx, account, req)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, 0, &Error{Status: resp.StatusCode, Message: fmt.Sprintf("revision %d of %s", ver, id)}
	}
	return resp.Body, resp.ContentLength, nil
}
