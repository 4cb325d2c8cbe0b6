package dashboard

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/testpki"
)

// fixed is a Source with canned answers.
type fixed struct {
	st   Status
	rows [][]any
}

func (f *fixed) Status(context.Context) (*Status, error) { s := f.st; return &s, nil }

func (f *fixed) Accounts(_ context.Context, v int64) (*Accounts, error) {
	a := &Accounts{Version: 1, Columns: accountColumns}
	if v != 1 {
		a.Rows = f.rows
	}
	return a, nil
}

// TestNonLoopbackNeedsToken binds every interface: without a token the
// listener refuses to start; with one, a request without it gets 401 on
// every route, also from loopback, and with it 200.
func TestNonLoopbackNeedsToken(t *testing.T) {
	src := &fixed{rows: [][]any{{"user01@example.com", "done", "", 1, 1.0, 1, 1, 0}}}
	if _, err := Listen(Options{Addr: "0.0.0.0:0"}, Handler(src, NewMetrics(nil))); !errors.Is(err, ErrTokenRequired) {
		t.Fatalf("0.0.0.0 without a token: %v, want ErrTokenRequired", err)
	}
	if _, err := Listen(Options{Addr: ":0"}, Handler(src, NewMetrics(nil))); err == nil {
		t.Fatal(":0 (every interface) without a token started")
	}
	s, err := Listen(Options{Addr: "0.0.0.0:0", Token: sentinelToken}, Handler(src, NewMetrics(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	port := s.Addr().(*net.TCPAddr).Port
	bases := []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/"}
	if ip := nonLoopbackIP(); ip != "" {
		bases = append(bases, "http://"+net.JoinHostPort(ip, strconv.Itoa(port))+"/")
	}
	for _, base := range bases {
		for _, path := range []string{"", "index.html", "app.js", "api/status", "api/accounts", "metrics"} {
			code, body := get(t, http.DefaultClient, base+path, "")
			if code != http.StatusUnauthorized {
				t.Errorf("GET %s%s without the token: %d, want 401", base, path, code)
			}
			if strings.Contains(body, "example.com") || strings.Contains(body, sentinelToken) {
				t.Errorf("GET %s%s without the token shows data: %q", base, path, body)
			}
			if code, _ := get(t, http.DefaultClient, base+path, "wrong-"+sentinelToken); code != http.StatusUnauthorized {
				t.Errorf("GET %s%s with a wrong token: %d, want 401", base, path, code)
			}
			code, body = get(t, http.DefaultClient, base+path, sentinelToken)
			if code != http.StatusOK {
				t.Errorf("GET %s%s with the token: %d", base, path, code)
			}
			if strings.Contains(body, sentinelToken) {
				t.Errorf("GET %s%s shows the token", base, path)
			}
		}
		// A browser sends the token as the basic password after its prompt.
		req, _ := http.NewRequest(http.MethodGet, base+"api/status", nil)
		req.SetBasicAuth("any", sentinelToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("basic auth with the token: %d", resp.StatusCode)
		}
	}
}

// nonLoopbackIP returns an address of this machine that is not loopback,
// or "".
func nonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// TestReadOnly: only GET and HEAD are answered, also with the token.
func TestReadOnly(t *testing.T) {
	s, err := Listen(Options{Addr: "127.0.0.1:0", Token: sentinelToken}, Handler(&fixed{}, NewMetrics(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, path := range []string{"", "api/status", "metrics"} {
			req, _ := http.NewRequest(m, s.URL()+path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer "+sentinelToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s /%s: %d, want 405", m, path, resp.StatusCode)
			}
		}
	}
}

// TestLoopbackRejectsForeignHost: without a token, a page of another site
// resolving its name to 127.0.0.1 (DNS rebinding) gets nothing.
func TestLoopbackRejectsForeignHost(t *testing.T) {
	s, err := Listen(Options{}, Handler(&fixed{}, NewMetrics(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"api/status", nil)
	req.Host = "attacker.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: %d, want 403", resp.StatusCode)
	}
	if code, _ := get(t, http.DefaultClient, s.URL()+"api/status", ""); code != http.StatusOK {
		t.Errorf("loopback Host: %d", code)
	}
}

// TestTLS serves HTTPS with the given certificate.
func TestTLS(t *testing.T) {
	ca, err := testpki.New()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Listen(Options{Addr: "127.0.0.1:0", TLSCert: cert, TLSKey: key}, Handler(&fixed{}, NewMetrics(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s", s.URL())
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	if code, _ := get(t, c, s.URL()+"metrics", ""); code != http.StatusOK {
		t.Errorf("GET over TLS: %d", code)
	}
	// Plain HTTP to the TLS listener gets no data.
	if resp, err := http.Get("http://" + s.Addr().String() + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered on the TLS listener")
		}
	}
}

// TestLoadToken reads a private token file and refuses one others can read.
func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "token")
	if err := os.WriteFile(f, []byte(sentinelToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := LoadToken(f); err != nil || tok != sentinelToken {
		t.Errorf("LoadToken = %q, %v", tok, err)
	}
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadToken(f); err == nil {
		t.Error("a token file readable by others was accepted")
	}
	t.Setenv(TokenEnv, " "+sentinelToken+" ")
	if tok, err := LoadToken(""); err != nil || tok != sentinelToken {
		t.Errorf("LoadToken from the environment = %q, %v", tok, err)
	}
}
