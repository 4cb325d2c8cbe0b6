package files_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/carbonio/files"
	"github.com/zxmigrate/zxmigrate/secret"
)

type tokens map[string]string

func (t tokens) UserToken(_ context.Context, account string) (secret.Secret, error) {
	v, ok := t[account]
	if !ok {
		return secret.Secret{}, fmt.Errorf("no token for %s", account)
	}
	return secret.New(v), nil
}

const (
	srcUser = "alice@zimbra.example"
	dstUser = "alice@carbonio.example"
)

type bench struct {
	src   *carboniotest.Briefcase
	dst   *carboniotest.Files
	m     *files.Migrator
	store *files.MemStore
	hc    *http.Client
	revs  map[string][][]byte // "folder/name" → revisions
}

func newBench(t *testing.T) *bench {
	t.Helper()
	b := &bench{src: carboniotest.NewBriefcase("src-token"), dst: carboniotest.NewFiles(), store: &files.MemStore{},
		hc: &http.Client{}, revs: map[string][][]byte{}}
	b.dst.AddUser(dstUser, "dst-token")
	ss := httptest.NewServer(b.src)
	ds := httptest.NewServer(b.dst)
	t.Cleanup(ss.Close)
	t.Cleanup(ds.Close)
	b.add("Briefcase", "report.txt", "text/plain", "one\n", "one\ntwo\n", "one\ntwo\nthree\n")
	b.add("Briefcase", "photo.jpg", "image/jpeg", "\xff\xd8jpeg")
	b.add("Briefcase/Projects", "plan.odt", "application/vnd.oasis.opendocument.text", "v1", "v2 longer")
	b.m = b.migrator(ss.URL, ds.URL, b.hc)
	return b
}

func (b *bench) migrator(srcURL, dstURL string, hc *http.Client) *files.Migrator {
	return &files.Migrator{
		Src:   &files.Source{URL: srcURL, Tokens: tokens{srcUser: "src-token"}, HTTPClient: hc},
		Dst:   &files.Dest{URL: dstURL, Tokens: tokens{dstUser: "dst-token"}, HTTPClient: hc},
		Store: b.store,
	}
}

func (b *bench) add(folder, name, ct string, revs ...string) string {
	var rb [][]byte
	for _, r := range revs {
		rb = append(rb, []byte(r))
	}
	b.revs[folder+"/"+name] = rb
	return b.src.AddDocument(srcUser, folder, name, ct, rb...)
}

var folders = []string{"Briefcase", "Briefcase/Projects"}

func (b *bench) run(ctx context.Context, m *files.Migrator) ([]files.Item, error) {
	var all []files.Item
	for _, f := range folders {
		items, err := m.Folder(ctx, srcUser, dstUser, f)
		all = append(all, items...)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// check asserts that the destination holds every source document once,
// with its revisions in order, and no other file.
func (b *bench) check(t *testing.T) {
	t.Helper()
	tree := b.dst.Tree(dstUser)
	if len(tree) != len(b.revs) {
		t.Fatalf("destination has %d files, want %d: %+v", len(tree), len(b.revs), tree)
	}
	for _, f := range tree {
		want, ok := b.revs[f.Path]
		if !ok {
			t.Fatalf("unexpected destination file %s", f.Path)
		}
		if len(f.Versions) != len(want) {
			t.Fatalf("%s: %d versions, want %d", f.Path, len(f.Versions), len(want))
		}
		for i := range want {
			if !bytes.Equal(f.Versions[i], want[i]) {
				t.Fatalf("%s version %d = %q, want %q", f.Path, i+1, f.Versions[i], want[i])
			}
		}
	}
	if got := strings.Join(b.dst.FolderPaths(dstUser), ","); got != "Briefcase,Briefcase/Projects" {
		t.Fatalf("destination folders %s", got)
	}
}

func outcomes(items []files.Item) map[files.Outcome]int {
	m := map[files.Outcome]int{}
	for _, it := range items {
		m[it.Outcome]++
	}
	return m
}

func TestMigrateRevisionsInOrderAndRerunCreatesNothing(t *testing.T) {
	b := newBench(t)
	ctx := context.Background()
	items, err := b.run(ctx, b.m)
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes(items); o[files.Created] != 3 || len(items) != 3 {
		t.Fatalf("first run outcomes %v (%+v)", o, items)
	}
	b.check(t)
	if b.dst.Uploads != 3 || b.dst.VersionUploads != 3 || b.dst.Folders != 2 {
		t.Fatalf("uploads %d, version uploads %d, folders %d; want 3, 3, 2", b.dst.Uploads, b.dst.VersionUploads, b.dst.Folders)
	}
	fetches := b.src.Fetches
	// A second run, with a fresh migrator (no folder cache) and the same
	// state, uploads and creates nothing and fetches no revision.
	items, err = b.run(ctx, b.migrator(b.m.Src.URL, b.m.Dst.URL, b.hc))
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes(items); o[files.Unchanged] != 3 {
		t.Fatalf("re-run outcomes %v", o)
	}
	if b.dst.Uploads != 3 || b.dst.VersionUploads != 3 || b.dst.Folders != 2 || b.src.Fetches != fetches {
		t.Fatalf("re-run wrote or fetched: uploads %d, versions %d, folders %d, fetches %d→%d", b.dst.Uploads, b.dst.VersionUploads, b.dst.Folders, fetches, b.src.Fetches)
	}
	b.check(t)
}

func TestNewRevisionOnRerunIsAddedAsVersion(t *testing.T) {
	b := newBench(t)
	ctx := context.Background()
	if _, err := b.run(ctx, b.m); err != nil {
		t.Fatal(err)
	}
	id := b.add("Briefcase", "notes.txt", "text/plain", "n1")
	b.src.AddRevision(id, []byte("n2"))
	b.revs["Briefcase/notes.txt"] = append(b.revs["Briefcase/notes.txt"], []byte("n2"))
	var reportID string
	for _, d := range mustDocs(t, b, "Briefcase") {
		if d.Name == "report.txt" {
			reportID = d.ID
		}
	}
	b.src.AddRevision(reportID, []byte("four"))
	b.revs["Briefcase/report.txt"] = append(b.revs["Briefcase/report.txt"], []byte("four"))
	items, err := b.run(ctx, b.m)
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes(items); o[files.Created] != 1 || o[files.Updated] != 1 || o[files.Unchanged] != 2 {
		t.Fatalf("outcomes %v", o)
	}
	b.check(t)
	if b.dst.Uploads != 4 || b.dst.VersionUploads != 5 {
		t.Fatalf("uploads %d, version uploads %d; want 4 and 5", b.dst.Uploads, b.dst.VersionUploads)
	}
}

func TestResumeAfterCutUpload(t *testing.T) {
	for nth := 1; nth <= 6; nth++ {
		t.Run(fmt.Sprint("upload", nth), func(t *testing.T) {
			b := newBench(t)
			ctx := context.Background()
			b.dst.CutUpload(nth, 2)
			items, err := b.run(ctx, b.m)
			if err != nil {
				t.Fatal(err)
			}
			if o := outcomes(items); o[files.Failed] != 1 {
				t.Fatalf("cut run outcomes %v", o)
			}
			if _, err := b.run(ctx, b.migrator(b.m.Src.URL, b.m.Dst.URL, b.hc)); err != nil {
				t.Fatal(err)
			}
			b.check(t)
		})
	}
}

func TestResumeAfterLostReply(t *testing.T) {
	// The server stores the upload but the client never learns it: the
	// state does not know the node or the version. The resumed run finds
	// the node by parent and name and counts its versions.
	for nth := 1; nth <= 6; nth++ {
		t.Run(fmt.Sprint("upload", nth), func(t *testing.T) {
			b := newBench(t)
			ctx := context.Background()
			b.dst.DropReply(nth)
			if _, err := b.run(ctx, b.m); err != nil {
				t.Fatal(err)
			}
			items, err := b.run(ctx, b.migrator(b.m.Src.URL, b.m.Dst.URL, b.hc))
			if err != nil {
				t.Fatal(err)
			}
			if o := outcomes(items); o[files.Failed] != 0 {
				t.Fatalf("resume outcomes %v", o)
			}
			b.check(t)
			if b.dst.Uploads != 3 || b.dst.VersionUploads != 3 {
				t.Fatalf("uploads %d, version uploads %d; want 3 and 3", b.dst.Uploads, b.dst.VersionUploads)
			}
		})
	}
}

// cancelAfter cancels a context once n upload answers have arrived.
type cancelAfter struct {
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if strings.Contains(r.URL.Path, "/upload") {
		c.mu.Lock()
		c.n--
		if c.n == 0 {
			c.cancel()
		}
		c.mu.Unlock()
	}
	return resp, err
}

func TestKillMidPhaseThenResume(t *testing.T) {
	for n := 1; n <= 5; n++ {
		t.Run(fmt.Sprint("after", n), func(t *testing.T) {
			b := newBench(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hc := &http.Client{Transport: &cancelAfter{n: n, cancel: cancel}}
			_, err := b.run(ctx, b.migrator(b.m.Src.URL, b.m.Dst.URL, hc))
			if err == nil {
				t.Fatal("a cancelled run returned no error")
			}
			items, err := b.run(context.Background(), b.migrator(b.m.Src.URL, b.m.Dst.URL, b.hc))
			if err != nil {
				t.Fatal(err)
			}
			if o := outcomes(items); o[files.Failed] != 0 || o[files.Skipped] != 0 {
				t.Fatalf("resume outcomes %v", o)
			}
			b.check(t)
			if b.dst.Uploads != 3 || b.dst.VersionUploads != 3 {
				t.Fatalf("uploads %d, version uploads %d; want 3 and 3", b.dst.Uploads, b.dst.VersionUploads)
			}
		})
	}
}

func TestLimitsReportedPerItem(t *testing.T) {
	b := newBench(t)
	b.add("Briefcase", "page.html", "application/x-zimbra-doc", "<html>wiki</html>")
	b.add("Briefcase", "big.bin", "application/octet-stream", "small", strings.Repeat("x", 100))
	b.m.Limits.MaxSize = 50
	items, err := b.run(context.Background(), b.m)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, it := range items {
		if it.Outcome == files.Skipped {
			reasons[it.Name] = it.Reason
		}
	}
	if !strings.Contains(reasons["page.html"], "application/x-zimbra-doc") || !strings.Contains(reasons["big.bin"], "100 bytes, over the 50-byte limit") || len(reasons) != 2 {
		t.Fatalf("skipped: %v", reasons)
	}
	for _, f := range b.dst.Tree(dstUser) {
		if f.Path == "Briefcase/page.html" || f.Path == "Briefcase/big.bin" {
			t.Fatalf("%s uploaded despite a limit", f.Path)
		}
	}
	// Verification leaves the skipped documents out: they are reported once.
	checks, err := b.m.Verify(context.Background(), srcUser, dstUser, "Briefcase")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Outcome != files.Verified {
			t.Errorf("verify %s: %s %s", c.Name, c.Outcome, c.Reason)
		}
	}
	if len(checks) != 2 {
		t.Errorf("verify checked %d documents, want 2", len(checks))
	}
}

func TestVerifyCatchesChangedByteAndVersionCount(t *testing.T) {
	b := newBench(t)
	ctx := context.Background()
	if _, err := b.run(ctx, b.m); err != nil {
		t.Fatal(err)
	}
	verify := func() map[string]files.Item {
		out := map[string]files.Item{}
		for _, f := range folders {
			items, err := b.m.Verify(ctx, srcUser, dstUser, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				out[it.Name] = it
			}
		}
		return out
	}
	for name, it := range verify() {
		if it.Outcome != files.Verified {
			t.Fatalf("%s: %s %s", name, it.Outcome, it.Reason)
		}
	}
	if !b.dst.Corrupt(dstUser, "Briefcase/report.txt") {
		t.Fatal("corrupt found no file")
	}
	b.add("Briefcase/Projects", "late.txt", "text/plain", "x")
	planID := ""
	for _, d := range mustDocs(t, b, "Briefcase/Projects") {
		if d.Name == "plan.odt" {
			planID = d.ID
		}
	}
	b.src.AddRevision(planID, []byte("v3"))
	got := verify()
	if it := got["plan.odt"]; it.Outcome != files.Mismatch || !strings.Contains(it.Reason, "2 versions on the destination, 3 revisions") {
		t.Fatalf("plan.odt: %+v", it)
	}
	if it := got["report.txt"]; it.Outcome != files.Mismatch || !strings.Contains(it.Reason, "latest version differs") {
		t.Fatalf("report.txt: %+v", it)
	}
	if it := got["late.txt"]; it.Outcome != files.Mismatch {
		t.Fatalf("late.txt: %+v", it)
	}
	if it := got["photo.jpg"]; it.Outcome != files.Verified {
		t.Fatalf("photo.jpg: %+v", it)
	}
}

func mustDocs(t *testing.T, b *bench, folder string) []files.Document {
	t.Helper()
	docs, err := b.m.Src.Documents(context.Background(), srcUser, folder)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func TestFilesFakeFailsLikeTheServer(t *testing.T) {
	b := newBench(t)
	ctx := context.Background()
	d := b.m.Dst
	f, err := d.CreateFolder(ctx, dstUser, files.LocalRoot, "Docs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateFolder(ctx, dstUser, files.LocalRoot, "Docs"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second createFolder: %v", err)
	}
	if _, err := d.Upload(ctx, dstUser, f.ID, "a.txt", "text/plain", 1, strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	_, err = d.Upload(ctx, dstUser, f.ID, "a.txt", "text/plain", 1, strings.NewReader("b"))
	var fe *files.Error
	if !errorsAs(err, &fe) || fe.Status != http.StatusConflict {
		t.Fatalf("second upload: %v", err)
	}
	// A field the schema does not have is a validation error.
	req, _ := http.NewRequest(http.MethodPost, d.URL+"/services/files/graphql",
		strings.NewReader(`{"query":"query { getNode(node_id: \"LOCAL_ROOT\") { id nodeSize } }"}`))
	req.AddCookie(&http.Cookie{Name: "ZM_AUTH_TOKEN", Value: "dst-token"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if !strings.Contains(buf.String(), "FieldUndefined") || !strings.Contains(buf.String(), "nodeSize") {
		t.Fatalf("unknown field answer: %s", buf.String())
	}
	// Without the cookie, nothing.
	if _, err := (&files.Dest{URL: d.URL, Tokens: tokens{dstUser: "wrong"}, HTTPClient: b.hc}).Children(ctx, dstUser, files.LocalRoot); err == nil {
		t.Fatal("a wrong token listed the home")
	}
}

func errorsAs(err error, target **files.Error) bool { return errors.As(err, target) }

func TestTokenStaysOnItsOrigin(t *testing.T) {
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("ZM_AUTH_TOKEN"); err == nil {
			leaked = append(leaked, c.Value)
		}
		w.Write([]byte(`{"nodeId":"x"}`))
	}))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	d := &files.Dest{URL: redirect.URL, Tokens: tokens{dstUser: "dst-token"}, HTTPClient: &http.Client{}}
	if _, err := d.Upload(context.Background(), dstUser, files.LocalRoot, "a.txt", "text/plain", 1, strings.NewReader("a")); err == nil {
		t.Error("an upload redirected to another origin succeeded")
	}
	s := &files.Source{URL: redirect.URL, Tokens: tokens{srcUser: "src-token"}, HTTPClient: &http.Client{}}
	if _, err := s.Documents(context.Background(), srcUser, "Briefcase"); err == nil {
		t.Error("a listing redirected to another origin succeeded")
	}
	if len(leaked) != 0 {
		t.Errorf("token sent to another origin: %d times", len(leaked))
	}
}

func TestBriefcaseFakeRefusesUnknownFieldsAndStrangers(t *testing.T) {
	b := newBench(t)
	post := func(token, body string) string {
		req, _ := http.NewRequest(http.MethodPost, b.m.Src.URL+"/service/soap/ListDocumentRevisionsRequest", strings.NewReader(body))
		req.AddCookie(&http.Cookie{Name: "ZM_AUTH_TOKEN", Value: token})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return buf.String()
	}
	id := mustDocs(t, b, "Briefcase")[0].ID
	if got := post("src-token", `{"Body":{"ListDocumentRevisionsRequest":{"doc":{"id":"`+id+`","count":5,"limit":1}}}}`); !strings.Contains(got, "unknown attribute limit") {
		t.Errorf("unknown attribute answer: %s", got)
	}
	if got := post("wrong", `{"Body":{"ListDocumentRevisionsRequest":{"doc":{"id":"`+id+`"}}}}`); !strings.Contains(got, "AUTH_REQUIRED") {
		t.Errorf("wrong token answer: %s", got)
	}
	if _, err := (&files.Source{URL: b.m.Src.URL, Tokens: tokens{srcUser: "wrong"}, HTTPClient: b.hc}).Documents(context.Background(), srcUser, "Briefcase"); err == nil {
		t.Error("a wrong token listed the Briefcase")
	}
}
