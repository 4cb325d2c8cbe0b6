package testserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
)

// xandikosServe is the aiohttp wrapper: Xandikos has no
// authentication of its own and serves one principal per process.
const xandikosServe = `import base64, sys
from aiohttp import web
from xandikos.web import XandikosBackend, XandikosApp, WELLKNOWN_DAV_PATHS
data, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.stdin.readline().rstrip('\n')
principal = f'/{user}/'
backend = XandikosBackend(data)
backend._mark_as_principal(principal)
if not backend.get_resource(principal):
    backend.create_principal(principal, create_defaults=True)
dav = XandikosApp(backend, current_user_principal=principal, strict=True)
want = 'Basic ' + base64.b64encode(f'{user}:{pw}'.encode()).decode()

@web.middleware
async def auth(req, handler):
    if req.path == '/health' or req.headers.get('Authorization') == want:
        return await handler(req)
    return web.Response(status=401, headers={'WWW-Authenticate': 'Basic realm="x"'})

async def wellknown(req):
    raise web.HTTPFound(principal)

app = web.Application(middlewares=[auth], client_max_size=100 << 20)
app.router.add_get('/health', lambda r: web.Response(text='ok'))
for p in WELLKNOWN_DAV_PATHS:
    app.router.add_route('*', p, wellknown)
app.router.add_route('*', '/{path_info:.*}', lambda r: dav.aiohttp_handler(r, '/'))
web.run_app(app, host='127.0.0.1', port=port, print=None)
`

// xandikosPython is Debian's interpreter; a venv python lacks aiohttp.
const xandikosPython = "/usr/bin/python3"

// Xandikos is a running Xandikos server with one principal: the lenient DAV
// server. It creates the collections calendars/calendar and
// contacts/addressbook by itself.
type Xandikos struct {
	// URL is the server root, e.g. "http://127.0.0.1:8000/".
	URL            string
	User, Password string
	// Dir is the instance directory; data in Dir/data.
	Dir string

	proc *process
}

// StartXandikos starts Xandikos for t and stops it in t.Cleanup. It skips
// t when xandikos or /usr/bin/python3 is missing (fails it when $CI is set).
func StartXandikos(t testing.TB, user, password string) *Xandikos {
	t.Helper()
	requireBinary(t, "xandikos")
	requireBinary(t, xandikosPython)
	x, err := NewXandikos(context.Background(), user, password)
	if err != nil {
		t.Fatal(err)
	}
	cleanupTB(t, "xandikos", x.Close, x.Log)
	return x
}

// NewXandikos starts Xandikos for one user and waits for /health. The
// caller must Close it.
func NewXandikos(ctx context.Context, user, password string) (*Xandikos, error) {
	if err := passwdField(user, password); err != nil || user != filepath.Base(user) {
		return nil, fmt.Errorf("testserver: xandikos: user %q: bad name or password", user)
	}
	return withRetry(func() (*Xandikos, error) { return newXandikos(ctx, user, password) })
}

func newXandikos(ctx context.Context, user, password string) (*Xandikos, error) {
	if _, err := lookBinary(xandikosPython); err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	dir, err := tempDir("zxx")
	if err != nil {
		return nil, err
	}
	x := &Xandikos{URL: fmt.Sprintf("http://127.0.0.1:%d/", ports[0]), User: user, Password: password, Dir: dir}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("testserver: xandikos: %w", err)
	}
	script := filepath.Join(dir, "serve.py")
	if err := os.WriteFile(script, []byte(xandikosServe), 0o644); err != nil {
		return nil, fmt.Errorf("testserver: xandikos: %w", err)
	}
	// The password goes through stdin, never argv.
	x.proc, err = startProcessStdin("xandikos", dir, password+"\n", xandikosPython, script, filepath.Join(dir, "data"), strconv.Itoa(ports[0]), user)
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, x.proc, func(ctx context.Context) error { return httpOK(ctx, x.URL+"health") }, x.Log); err != nil {
		x.proc.stop()
		return nil, err
	}
	ok = true
	return x, nil
}

// CalendarHome returns the calendar home URL; user must be x.User.
func (x *Xandikos) CalendarHome(user string) string { return x.URL + user + "/calendars/" }

// AddressBookHome returns the address-book home URL; user must be x.User.
func (x *Xandikos) AddressBookHome(user string) string { return x.URL + user + "/contacts/" }

// Seed stores calendars under the calendar home and address books under
// the address-book home with SeedDAV.
func (x *Xandikos) Seed(ctx context.Context, calendars, addressBooks []corpus.Collection) error {
	err1 := SeedDAV(ctx, x.CalendarHome(x.User), x.User, x.Password, calendars, nil)
	err2 := SeedDAV(ctx, x.AddressBookHome(x.User), x.User, x.Password, nil, addressBooks)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("testserver: xandikos: seed: %w", errors.Join(err1, err2))
	}
	return nil
}

// Snapshot reads both homes with SnapshotDAV.
func (x *Xandikos) Snapshot(ctx context.Context) (calendars, addressBooks []corpus.Collection, err error) {
	calendars, _, err = SnapshotDAV(ctx, x.CalendarHome(x.User), x.User, x.Password)
	if err != nil {
		return nil, nil, err
	}
	_, addressBooks, err = SnapshotDAV(ctx, x.AddressBookHome(x.User), x.User, x.Password)
	if err != nil {
		return nil, nil, err
	}
	return calendars, addressBooks, nil
}

// Log returns the server output.
func (x *Xandikos) Log() string { return x.proc.out.String() }

// Close stops the server and removes its directory.
func (x *Xandikos) Close() error {
	err := x.proc.stop()
	if rerr := os.RemoveAll(x.Dir); rerr != nil && err == nil {
		err = fmt.Errorf("testserver: xandikos: %w", rerr)
	}
	return err
}
