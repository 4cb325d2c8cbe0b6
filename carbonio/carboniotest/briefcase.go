package carboniotest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Briefcase is a fake Zimbra 8.8.15 Briefcase read over REST: the
// UserServlet folder listing GET /home/<user>/<folder>?fmt=json (documents
// under "doc"), a revision GET /home/<user>/?id=<id>&ver=<n>, and the mail
// SOAP ListDocumentRevisionsRequest doc{id, ver, count} at /service/soap
// (Zimbra/zm-mailbox soap/src/java/com/zimbra/soap/mail/message/
// ListDocumentRevisionsRequest.java). It accepts one token in either the
// ZM_AUTH_TOKEN or the ZM_ADMIN_AUTH_TOKEN cookie; a doc field other than
// id, ver and count is refused like an unknown JAXB element. Serve it with
// httptest.NewServer.
type Briefcase struct {
	// Token is the accepted token.
	Token string
	// TokenCheck, when set, also accepts a token for which it returns
	// true for the account of the path or the SOAP context, e.g.
	// (*Server).ValidUserToken.
	TokenCheck func(account, token string) bool

	mu   sync.Mutex
	docs map[string]*briefDoc // id → document
	next int
	// Fetches counts revision downloads.
	Fetches int
}

type briefDoc struct {
	id, account, folder, name, ct string
	revs                          [][]byte
}

// NewBriefcase returns an empty Briefcase accepting token.
func NewBriefcase(token string) *Briefcase {
	return &Briefcase{Token: token, docs: map[string]*briefDoc{}, next: 256}
}

// AddDocument stores a document with its revisions, oldest first, and
// returns its id.
func (b *Briefcase) AddDocument(account, folder, name, contentType string, revisions ...[]byte) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := strconv.Itoa(b.next)
	b.docs[id] = &briefDoc{id: id, account: account, folder: strings.Trim(folder, "/"), name: name, ct: contentType, revs: slices.Clone(revisions)}
	return id
}

// AddRevision adds a revision to document id.
func (b *Briefcase) AddRevision(id string, rev []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.docs[id].revs = append(b.docs[id].revs, rev)
}

func (b *Briefcase) authorized(r *http.Request, account string) bool {
	for _, n := range []string{"ZM_AUTH_TOKEN", "ZM_ADMIN_AUTH_TOKEN"} {
		if c, err := r.Cookie(n); err == nil && (c.Value == b.Token || b.TokenCheck != nil && account != "" && b.TokenCheck(account, c.Value)) {
			return true
		}
	}
	return false
}

// ServeHTTP implements http.Handler.
func (b *Briefcase) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/service/soap") && r.Method == http.MethodPost:
		b.soap(w, r)
	case strings.HasPrefix(r.URL.Path, "/home/") && r.Method == http.MethodGet:
		b.home(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (b *Briefcase) home(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/home/")
	acct, folder, _ := strings.Cut(rest, "/")
	acct, _ = url.PathUnescape(acct)
	if !b.authorized(r, acct) {
		http.Error(w, "must authenticate", http.StatusUnauthorized)
		return
	}
	folder = strings.Trim(folder, "/")
	q := r.URL.Query()
	b.mu.Lock()
	defer b.mu.Unlock()
	if id := q.Get("id"); id != "" {
		d := b.docs[id]
		if d == nil || d.account != acct {
			http.Error(w, "no such item", http.StatusNotFound)
			return
		}
		ver := len(d.revs)
		if v := q.Get("ver"); v != "" {
			ver, _ = strconv.Atoi(v)
		}
		if ver < 1 || ver > len(d.revs) {
			http.Error(w, "no such revision", http.StatusNotFound)
			return
		}
		b.Fetches++
		w.Header().Set("Content-Type", d.ct)
		w.Header().Set("Content-Length", strconv.Itoa(len(d.revs[ver-1])))
		_, _ = w.Write(d.revs[ver-1])
		return
	}
	if q.Get("fmt") != "json" {
		http.Error(w, "this fake serves fmt=json only", http.StatusBadRequest)
		return
	}
	var docs []map[string]any
	for _, d := range b.sorted() {
		if d.account == acct && d.folder == folder {
			docs = append(docs, map[string]any{"id": d.id, "name": d.name, "ver": len(d.revs), "s": len(d.revs[len(d.revs)-1]), "ct": d.ct, "l": "16"})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"doc": docs})
}

func (b *Briefcase) sorted() []*briefDoc {
	out := make([]*briefDoc, 0, len(b.docs))
	for _, d := range b.docs {
		out = append(out, d)
	}
	slices.SortFunc(out, func(x, y *briefDoc) int { return strings.Compare(x.name, y.name) })
	return out
}

func briefFault(w http.ResponseWriter, code, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_ = json.NewEncoder(w).Encode(map[string]any{"Body": map[string]any{"Fault": map[string]any{
		"Code": map[string]any{"Value": "soap:Sender"}, "Reason": map[string]any{"Text": text},
		"Detail": map[string]any{"Error": map[string]any{"Code": code}}}}})
}

func (b *Briefcase) soap(w http.ResponseWriter, r *http.Request) {
	var env struct {
		Header struct {
			Context struct {
				Account struct {
					Content string `json:"_content"`
				} `json:"account"`
			} `json:"context"`
		}
		Body map[string]json.RawMessage
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&env); err != nil {
		briefFault(w, "service.PARSE_ERROR", "bad json")
		return
	}
	if !b.authorized(r, env.Header.Context.Account.Content) {
		briefFault(w, "service.AUTH_REQUIRED", "no valid authtoken present")
		return
	}
	raw, ok := env.Body["ListDocumentRevisionsRequest"]
	if !ok || len(env.Body) != 1 {
		briefFault(w, "service.UNKNOWN_DOCUMENT", "unknown document")
		return
	}
	var req struct {
		Doc map[string]any `json:"doc"`
	}
	if err := json.Unmarshal(raw, &req); err != nil || req.Doc == nil {
		briefFault(w, "service.INVALID_REQUEST", "missing doc")
		return
	}
	for k := range req.Doc {
		if k != "id" && k != "ver" && k != "count" {
			briefFault(w, "service.INVALID_REQUEST", "unknown attribute "+k)
			return
		}
	}
	id, _ := req.Doc["id"].(string)
	count := 1
	if c, ok := req.Doc["count"].(float64); ok {
		count = int(c)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.docs[id]
	if d == nil || (env.Header.Context.Account.Content != "" && env.Header.Context.Account.Content != d.account) {
		briefFault(w, "mail.NO_SUCH_DOC", "no such document: "+id)
		return
	}
	ver := len(d.revs)
	if v, ok := req.Doc["ver"].(float64); ok {
		ver = int(v)
	}
	var out []map[string]any
	for v := ver; v >= 1 && len(out) < count; v-- {
		out = append(out, map[string]any{"id": d.id, "name": d.name, "ver": v, "s": len(d.revs[v-1]), "ct": d.ct})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"Body": map[string]any{"ListDocumentRevisionsResponse": map[string]any{"_jsns": "urn:zimbraMail", "doc": out}}})
}
