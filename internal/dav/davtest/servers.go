package davtest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/secret"
)

// need skips (or, with CI set, fails) when bin is missing.
func need(t testing.TB, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (required in CI)", bin)
		}
		t.Skipf("%s not installed", bin)
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startProc(t testing.TB, name string, cmd *exec.Cmd, health string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(health)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(log)
	t.Fatalf("%s did not come up at %s:\n%s", name, health, b)
}

// Radicale starts Radicale 3 (TESTBENCH.md §3) with user1:pass1 and
// returns it as a Side. Principal = calendar home = address-book home =
// /user1/.
func Radicale(t testing.TB, name string) Side {
	t.Helper()
	bin := need(t, "radicale")
	dir := t.TempDir()
	port := freePort(t)
	cfg := fmt.Sprintf(`[server]
hosts = 127.0.0.1:%d
max_connections = 20
max_content_length = 100000000
timeout = 30
[auth]
type = htpasswd
htpasswd_filename = %s/users
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = %s/collections
[web]
type = none
[logging]
level = warning
`, port, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte("user1:pass1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startProc(t, "radicale", exec.Command(bin, "-C", filepath.Join(dir, "config")), base+"/.web/")
	// Radicale creates the principal collection on first authenticated access.
	req, _ := http.NewRequest("PROPFIND", base+"/user1/", nil)
	req.SetBasicAuth("user1", "pass1")
	req.Header.Set("Depth", "0")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	return Side{Name: name, URL: base + "/", CalendarHome: base + "/user1/", AddressBookHome: base + "/user1/",
		User: "user1", Password: secret.New("pass1")}
}

const xandikosServe = `import base64, sys
from aiohttp import web
from xandikos.web import XandikosBackend, XandikosApp, WELLKNOWN_DAV_PATHS
data, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
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

// Xandikos starts Xandikos (TESTBENCH.md §4) behind a Basic-auth wrapper
// with user1:pass1. Calendar home /user1/calendars/, address-book home
// /user1/contacts/.
func Xandikos(t testing.TB, name string) Side {
	t.Helper()
	need(t, "xandikos")
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		need(t, py)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "serve.py")
	if err := os.WriteFile(script, []byte(xandikosServe), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	startProc(t, "xandikos", exec.Command(py, script, filepath.Join(dir, "data"), fmt.Sprint(port), "user1", "pass1"), base+"/health")
	return Side{Name: name, URL: base + "/", CalendarHome: base + "/user1/calendars/", AddressBookHome: base + "/user1/contacts/",
		User: "user1", Password: secret.New("pass1")}
}
