package testserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
)

// radicaleConf is the configuration: htpasswd auth, multifilesystem storage under the temporary directory.
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
	} else {
		users = maps.Clone(users)
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

// SeedFS is a fast path for SeedDAV on Radicale: it writes the collections
// and objects straight into Radicale's filesystem storage
// (collection-root/<user>/<collection>/ with a .Radicale.props file and one
// file per object), as Radicale itself lays them out. Radicale reads the
// storage on every request, so this is safe while it runs as long as no
// client writes to the same collections meanwhile.
//
// The files hold the bytes as given; Radicale still serves them
// re-serialised through vobject, as it does after a PUT (so vCard 4.0
// data: URI photos come back cut at the comma either way). Objects marked
// Broken are not written: a
// strict server would refuse them, and one unparsable file would make
// Radicale fail the whole collection. An object whose file exists already
// is an error, as with If-None-Match: *.
func (r *Radicale) SeedFS(user string, calendars, addressBooks []corpus.Collection) error {
	if _, ok := r.Users[user]; !ok {
		return fmt.Errorf("testserver: radicale: seed: no user %q", user)
	}
	home := filepath.Join(r.Dir, "collections", "collection-root", user)
	var errs []error
	write := func(cols []corpus.Collection, cal bool) {
		for _, col := range cols {
			if !safeSegment(col.Name) {
				errs = append(errs, fmt.Errorf("testserver: radicale: collection %q: bad name", col.Name))
				continue
			}
			dir := filepath.Join(home, col.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				errs = append(errs, fmt.Errorf("testserver: radicale: collection %q: %w", col.Name, err))
				continue
			}
			props := map[string]string{"tag": "VADDRESSBOOK"}
			if cal {
				props["tag"] = "VCALENDAR"
				if len(col.Components) > 0 {
					props["C:supported-calendar-component-set"] = strings.Join(col.Components, ",")
				}
				if col.Description != "" {
					props["C:calendar-description"] = col.Description
				}
				if col.Color != "" {
					props["ICAL:calendar-color"] = col.Color
				}
			} else if col.Description != "" {
				props["CR:addressbook-description"] = col.Description
			}
			if col.DisplayName != "" {
				props["D:displayname"] = col.DisplayName
			}
			b, err := json.Marshal(props)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, ".Radicale.props"), b, 0o644)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("testserver: radicale: collection %q: %w", col.Name, err))
				continue
			}
			for _, o := range col.Objects {
				if o.Broken {
					continue
				}
				if !safeSegment(o.Name) {
					errs = append(errs, fmt.Errorf("testserver: radicale: collection %q: object %q: bad resource name %q", col.Name, o.UID, o.Name))
					continue
				}
				f, err := os.OpenFile(filepath.Join(dir, o.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err == nil {
					_, err = f.Write(o.Data)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("testserver: radicale: collection %q: object %q: %w", col.Name, o.UID, err))
				}
			}
		}
	}
	write(calendars, true)
	write(addressBooks, false)
	return errors.Join(errs...)
}

// safeSegment reports whether s is a usable single path segment that
// Radicale does not treat as internal (dot files).
func safeSegment(s string) bool {
	return s != "" && !strings.HasPrefix(s, ".") && !strings.ContainsAny(s, "/\\\x00")
}
