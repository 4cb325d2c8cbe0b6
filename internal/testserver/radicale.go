package testserver

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// radicaleConf is the configuration of TESTBENCH.md §3.
const radicaleConf = `[server]
hosts = 127.0.0.1:${PORT}
max_connections = 20
max_content_length = 100000000
timeout = 30
[auth]
type = htpasswd
htpasswd_filename = ${DIR}/users
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = ${DIR}/collections
[web]
type = none
`

// Radicale is a running Radicale server: the strict DAV reference. Each
// user's principal, calendar home and address-book home is /<user>/.
type Radicale struct {
	// URL is the server root, e.g. "http://127.0.0.1:5232/".
	URL string
	// Users maps user names to passwords.
	Users map[string]string
	// Dir is the instance directory; collections live in Dir/collections.
	Dir string

	proc *process
}

// StartRadicale starts Radicale for t with users (nil means
// {"user1": "pass1"}) and stops it in t.Cleanup. It skips t when radicale
// is not installed (fails it when $CI is set).
func StartRadicale(t testing.TB, users map[string]string) *Radicale {
	t.Helper()
	requireBinary(t, "radicale")
	r, err := NewRadicale(context.Background(), users)
	if err != nil {
		t.Fatal(err)
	}
	cleanupTB(t, "radicale", r.Close, r.Log)
	return r
}

// NewRadicale starts Radicale and waits until it answers HTTP. The caller
// must Close it.
func NewRadicale(ctx context.Context, users map[string]string) (*Radicale, error) {
	if users == nil {
		users = map[string]string{DefaultUser: DefaultPassword}
	}
	return withRetry(func() (*Radicale, error) { return newRadicale(ctx, users) })
}

func newRadicale(ctx context.Context, users map[string]string) (*Radicale, error) {
	bin, err := lookBinary("radicale")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("zxr")
	if err != nil {
		return nil, err
	}
	r := &Radicale{URL: fmt.Sprintf("http://127.0.0.1:%d/", ports[0]), Users: users, Dir: dir}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	var lines []string
	for u, p := range users {
		if err := passwdField(u, p); err != nil {
			return nil, fmt.Errorf("testserver: radicale: user %q: %w", u, err)
		}
		lines = append(lines, u+":"+p+"\n")
	}
	sort.Strings(lines)
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(strings.Join(lines, "")), 0o644); err != nil {
		return nil, fmt.Errorf("testserver: radicale: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "collections"), 0o755); err != nil {
		return nil, fmt.Errorf("testserver: radicale: %w", err)
	}
	conf := os.Expand(radicaleConf, func(k string) string {
		return map[string]string{"PORT": strconv.Itoa(ports[0]), "DIR": dir}[k]
	})
	confPath := filepath.Join(dir, "config")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("testserver: radicale: %w", err)
	}
	r.proc, err = startProcess("radicale", dir, bin, "-C", confPath)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, r.proc, func(ctx context.Context) error { return httpAnswers(ctx, r.URL) }, r.Log); err != nil {
		r.proc.stop()
		return nil, err
	}
	ok = true
	return r, nil
}

// httpAnswers succeeds when u answers any HTTP status.
func httpAnswers(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// CalendarHome returns the calendar home URL of user.
func (r *Radicale) CalendarHome(user string) string { return r.URL + user + "/" }

// AddressBookHome returns the address-book home URL of user.
func (r *Radicale) AddressBookHome(user string) string { return r.URL + user + "/" }

// Log returns the server output.
func (r *Radicale) Log() string { return r.proc.out.String() }

// Close stops the server and removes its directory.
func (r *Radicale) Close() error {
	err := r.proc.stop()
	if rerr := os.RemoveAll(r.Dir); rerr != nil && err == nil {
		err = fmt.Errorf("testserver: radicale: %w", rerr)
	}
	return err
}
