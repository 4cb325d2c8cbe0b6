package carboniotest_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
)

var update = flag.Bool("update", false, "rewrite testdata/default.json")

func TestLoadFixture(t *testing.T) {
	golden := filepath.Join("testdata", "default.json")
	if *update {
		b, _ := json.MarshalIndent(carboniotest.DefaultFixture(), "", "  ")
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := carboniotest.LoadFixture(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(carboniotest.DefaultFixture(), got); diff != "" {
		t.Errorf("LoadFixture(default.json) (-want +got):\n%s", diff)
	}
	if _, err := carboniotest.LoadFixture(filepath.Join("testdata", "missing.json")); err == nil {
		t.Error("loading a missing fixture succeeded")
	}
}

// post sends a raw envelope and returns the status and body.
func post(t *testing.T, s *carboniotest.Server, body string) (int, string) {
	t.Helper()
	resp, err := s.Client().Post(s.URL+"/service/admin/soap", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func token(t *testing.T, s *carboniotest.Server) string {
	t.Helper()
	code, body := post(t, s, `{"Body":{"AuthRequest":{"_jsns":"urn:zimbraAdmin","name":"admin@carbonio.local","password":{"_content":"admin-password"}}}}`)
	var ans struct {
		Body struct {
			AuthResponse struct {
				AuthToken []struct {
					Content string `json:"_content"`
				} `json:"authToken"`
			} `json:"AuthResponse"`
		} `json:"Body"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &ans) != nil || len(ans.Body.AuthResponse.AuthToken) != 1 {
		t.Fatalf("AuthRequest: %d %s", code, body)
	}
	return ans.Body.AuthResponse.AuthToken[0].Content
}

func TestWire(t *testing.T) {
	s := carboniotest.New(carboniotest.Options{})
	defer s.Close()
	tok := token(t, s)
	hdr := `{"Header":{"context":{"_jsns":"urn:zimbra","authToken":"` + tok + `"}},`
	tests := []struct {
		name, body string
		code       int
		want       string
	}{
		{"no token", `{"Body":{"GetAllDomainsRequest":{}}}`, 500, "service.AUTH_REQUIRED"},
		{"arrays in the answer", hdr + `"Body":{"GetAllDomainsRequest":{}}}`, 200, `"domain":[{`},
		{"unknown request", hdr + `"Body":{"FlyRequest":{}}}`, 500, "service.UNKNOWN_DOCUMENT"},
		{"module content is a string", hdr + `"Body":{"zextras":{"module":"ZxCore","action":"getAllOperations","targetServers":"all_servers"}}}`, 200, `"content":"{`},
		{"unknown module field", hdr + `"Body":{"zextras":{"module":"ZxBackup","action":"doSmartScan","speed":"max"}}}`, 200, `unknown parameter`},
		{"xml", `<soap:Envelope/>`, 500, "JSON only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, s, tt.body)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %s, want %d with %q", code, body, tt.code, tt.want)
			}
		})
	}
}

func TestRunCLI(t *testing.T) {
	s := carboniotest.New(carboniotest.Options{})
	defer s.Close()
	tests := []struct {
		argv     []string
		code     int
		want     string
		inStderr bool
	}{
		{[]string{"carbonio", "--json", "backup", "doSmartScan", "start"}, 0, `"operationId"`, false},
		{[]string{"carbonio", "--json", "backup", "doSmartScan", "stop"}, 2, "must be start", true},
		{[]string{"carbonio", "backup", "doSmartScan", "start"}, 2, "--json", true},
		{[]string{"carbonio", "--json", "backup", "doExternalRestore", "/tmp/export", "password", "x"}, 2, "unknown parameter", true},
		{[]string{"carbonio", "--json", "backup", "doExternalRestore", "/nowhere"}, 1, "holds no backup", false},
		{[]string{"carbonio", "--json", "powerstore", "doDeduplicate", "message1", "dry_run", "true"}, 0, `"ok":true`, false},
		{[]string{"carbonio", "--json", "core", "getAllOperations"}, 0, `"nested":true`, false},
		{[]string{"zmmtactl", "stop"}, 0, "stop", false},
		{[]string{"rm", "-rf", "/"}, 127, "not found", true},
	}
	for _, tt := range tests {
		out, errOut, code := s.RunCLI(tt.argv)
		where := out
		if tt.inStderr {
			where = errOut
		}
		if code != tt.code || !strings.Contains(where, tt.want) {
			t.Errorf("RunCLI(%q) = %d, stdout %q, stderr %q; want %d with %q", tt.argv, code, out, errOut, tt.code, tt.want)
		}
	}
	if s.MTARunning() {
		t.Error("zmmtactl stop left the MTA running")
	}
	if got := len(s.StartedOperations()); got != 2 {
		t.Errorf("started operations = %d, want 2", got)
	}
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(s.Snapshot())
	if !strings.Contains(b.String(), "alice@example.com") {
		t.Error("Snapshot lacks the fixture's accounts")
	}
}
