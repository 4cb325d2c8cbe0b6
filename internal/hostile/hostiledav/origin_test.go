package hostiledav

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/memdav"
	"github.com/zxmigrate/zxmigrate/secret"
)

// destination is an in-memory CalDAV server with user bob.
func destination(t *testing.T) dav.Destination {
	t.Helper()
	s := memdav.New()
	s.AddUser("bob", "pw")
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	d, err := caldav.NewDAV(dav.Endpoint{URL: ts.URL + memdav.CalendarHome("bob"), User: "bob", Password: secret.New("pw")})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// recorder starts a Recorder on its own listener (127.0.0.1, its own
// port).
func recorder(t *testing.T) (*Recorder, *httptest.Server) {
	t.Helper()
	rec := &Recorder{}
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	return rec, ts
}

type tokens struct{}

func (tokens) UserToken(context.Context, string) (secret.Secret, error) {
	return secret.New("s3cret-token"), nil
}

// tlsClient trusts ts's certificate.
func tlsClient(ts *httptest.Server, o httpx.Options) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	o.TLSConfig = &tls.Config{RootCAs: pool}
	return httpx.NewClient(o)
}

// itemErrors returns the per-object errors of a copy.
func itemErrors(s *dav.Stats) []dav.ItemError {
	if s == nil {
		return nil
	}
	var out []dav.ItemError
	for _, c := range s.Collections {
		out = append(out, c.Errors...)
	}
	return out
}

func wantOriginError(t *testing.T, err error, url string, plaintext bool) {
	t.Helper()
	var oe *httpx.OriginError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v, want an *httpx.OriginError", err)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("error %q does not name %s", err, url)
	}
	if oe.Plaintext != plaintext {
		t.Errorf("Plaintext = %v, want %v (%v)", oe.Plaintext, plaintext, err)
	}
}

// A CalDAV source that lists its objects by absolute URL on another port
// of the same host, and on another host name: with Basic credentials and
// with a token cookie, nothing reaches the other listener and each object
// is reported failed, naming its URL.
func TestForeignObjectHrefs(t *testing.T) {
	rec, foreign := recorder(t)
	other := strings.Replace(foreign.URL, "127.0.0.1", "localhost", 1)
	hrefs := []string{foreign.URL + "/cal/a.ics", other + "/cal/b.ics"}
	src := httptest.NewServer(ForeignHrefs(hrefs...))
	t.Cleanup(src.Close)
	for _, tc := range []struct {
		name string
		ep   dav.Endpoint
	}{
		{"basic", dav.Endpoint{URL: src.URL + "/cal/", User: "alice", Password: secret.New("pw")}},
		{"token", dav.Endpoint{URL: src.URL + "/cal/", Token: tokens{}, Account: "alice@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := caldav.NewDAV(tc.ep)
			if err != nil {
				t.Fatal(err)
			}
			stats, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), destination(t), s)
			if err != nil {
				t.Fatal(err)
			}
			errs := itemErrors(stats)
			if got := stats.Totals().Failed; got != len(hrefs) || len(errs) != len(hrefs) {
				t.Fatalf("failed %d, errors %+v; want each of %d objects failed", got, errs, len(hrefs))
			}
			for _, ie := range errs {
				wantOriginError(t, ie.Err, ie.Item, false)
			}
		})
	}
	if seen := rec.Seen(); len(seen) != 0 {
		t.Errorf("the foreign listener received %+v, want nothing", seen)
	}
}

// The one exception: an origin listed in TrustedOrigins gets the requests
// and the credentials. This also shows the Recorder sees what arrives.
func TestTrustedOriginReceives(t *testing.T) {
	rec, foreign := recorder(t)
	src := httptest.NewServer(ForeignHrefs(foreign.URL + "/cal/a.ics"))
	t.Cleanup(src.Close)
	s, err := caldav.NewDAV(dav.Endpoint{URL: src.URL + "/cal/", User: "alice", Password: secret.New("pw"), TrustedOrigins: []string{foreign.URL}})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), destination(t), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := stats.Totals(); got.Created != 1 || got.Failed != 0 {
		t.Fatalf("created %d failed %d (%+v), want the trusted object copied", got.Created, got.Failed, itemErrors(stats))
	}
	if got := rec.Credentialed(); len(got) != 1 || !strings.HasPrefix(got[0].Authorization, "Basic ") {
		t.Errorf("trusted listener saw %+v, want one GET with Basic credentials", rec.Seen())
	}
}

// An https source whose listing points to plain http: refused without
// AllowPlaintext even when that origin is trusted; allowed with both.
func TestHTTPSSourceHTTPHref(t *testing.T) {
	rec, foreign := recorder(t)
	href := foreign.URL + "/cal/a.ics"
	src := httptest.NewTLSServer(ForeignHrefs(href))
	t.Cleanup(src.Close)
	copyWith := func(allow bool) *dav.Stats {
		s, err := caldav.NewDAV(dav.Endpoint{URL: src.URL + "/cal/", User: "alice", Password: secret.New("pw"),
			HTTPClient: tlsClient(src, httpx.Options{}), TrustedOrigins: []string{foreign.URL}, AllowPlaintext: allow})
		if err != nil {
			t.Fatal(err)
		}
		stats, err := (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), destination(t), s)
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	stats := copyWith(false)
	errs := itemErrors(stats)
	if len(errs) != 1 {
		t.Fatalf("errors %+v, want the http object failed", errs)
	}
	wantOriginError(t, errs[0].Err, href, true)
	if seen := rec.Seen(); len(seen) != 0 {
		t.Fatalf("plain-http listener received %+v without AllowPlaintext", seen)
	}
	if stats := copyWith(true); stats.Totals().Created != 1 || len(rec.Credentialed()) != 1 {
		t.Errorf("with AllowPlaintext: created %d, listener saw %+v; want the object copied", stats.Totals().Created, rec.Seen())
	}
}

// A principal or calendar-home-set href on another origin stops discovery
// with an error naming it (no request to it: no SSRF).
func TestForeignDiscoveryHrefs(t *testing.T) {
	rec, foreign := recorder(t)
	for _, tc := range []struct{ name, principal, home string }{
		{"principal", foreign.URL + "/principals/alice/", ""},
		{"home-set", "/principals/alice/", foreign.URL + "/calendars/alice/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := httptest.NewServer(ForeignDiscovery(tc.principal, tc.home))
			t.Cleanup(src.Close)
			s, err := caldav.NewDAV(dav.Endpoint{URL: src.URL + "/", User: "alice", Password: secret.New("pw")})
			if err != nil {
				t.Fatal(err)
			}
			_, err = (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), destination(t), s)
			want := tc.home
			if want == "" {
				want = tc.principal
			}
			wantOriginError(t, err, want, false)
		})
	}
	if seen := rec.Seen(); len(seen) != 0 {
		t.Errorf("the foreign listener received %+v, want nothing", seen)
	}
}

// A 307 to another port of the same host, and a 307 from https to http:
// the Authorization header (or cookie) is not forwarded; the request
// fails naming the target.
func TestRedirectsKeepCredentials(t *testing.T) {
	rec, foreign := recorder(t)

	// Control: Go's own client forwards Authorization to the same host name
	// on another port (net/http shouldCopyHeaderOnRedirect), so the
	// Recorder would see a leak.
	plain := httptest.NewServer(Redirect(foreign.URL, http.StatusTemporaryRedirect))
	t.Cleanup(plain.Close)
	req, _ := http.NewRequest("PROPFIND", plain.URL+"/cal/", nil)
	req.SetBasicAuth("alice", "pw")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if len(rec.Credentialed()) != 1 {
		t.Fatalf("control: net/http's client did not forward credentials (%+v); the test cannot see a leak", rec.Seen())
	}
	before := len(rec.Seen())

	tlsSrc := httptest.NewTLSServer(Redirect(foreign.URL, http.StatusTemporaryRedirect))
	t.Cleanup(tlsSrc.Close)
	for _, tc := range []struct {
		name      string
		ep        dav.Endpoint
		plaintext bool
	}{
		{"other-port-basic", dav.Endpoint{URL: plain.URL + "/cal/", User: "alice", Password: secret.New("pw")}, false},
		{"other-port-token", dav.Endpoint{URL: plain.URL + "/cal/", Token: tokens{}, Account: "alice"}, false},
		{"https-to-http", dav.Endpoint{URL: tlsSrc.URL + "/cal/", User: "alice", Password: secret.New("pw"), HTTPClient: tlsClient(tlsSrc, httpx.Options{})}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := caldav.NewDAV(tc.ep)
			if err != nil {
				t.Fatal(err)
			}
			_, err = (&dav.Copier{Rules: caldav.Rules{}}).Copy(context.Background(), destination(t), s)
			wantOriginError(t, err, foreign.URL+"/cal/", tc.plaintext)
		})
	}

	// The Carbonio admin client: a redirected AuthRequest would resend the
	// admin password in its body.
	adm := &carbonio.Client{URL: plain.URL, Admin: "admin@example.com", Password: secret.New("adminpw")}
	err := adm.Login(context.Background())
	var oe *httpx.OriginError
	if !errors.As(err, &oe) {
		t.Errorf("carbonio Login through a redirect: %v, want an *httpx.OriginError", err)
	}
	if seen := rec.Seen()[before:]; len(seen) != 0 {
		t.Errorf("the redirect target received %+v, want nothing", seen)
	}
}

// The origin rule itself: default ports, case, trusted entries.
func TestScope(t *testing.T) {
	s, err := httpx.NewScope("https://DAV.example.com/dav/", []string{"dav2.example.com:8443", "http://plain.example.com"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://dav.example.com:443/x", true},
		{"https://dav.example.com:8443/x", false},
		{"http://dav.example.com/x", false},
		{"https://dav2.example.com:8443/x", true},
		{"https://dav2.example.com/x", false},
		{"http://plain.example.com/x", false}, // listed, but plaintext not allowed
		{"https://evil.example.com/x", false},
	} {
		u, _ := url.Parse(tc.url)
		if err := s.Check(u); (err == nil) != tc.ok {
			t.Errorf("Check(%s) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}
