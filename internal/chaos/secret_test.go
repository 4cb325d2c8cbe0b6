package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/memimap"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/state"
)

// Sentinel passwords: distinctive strings no legitimate output contains.
const (
	sentinelUser  = "S3ntinel-user-pw-7f3a9c"
	sentinelAdmin = "S3ntinel-admin-pw-2b8e41"
	sentinelWrong = "S3ntinel-wrong-pw-91d0aa"
	sentinelSOAP  = "S3ntinel-soap-pw-c44e17"
)

// sink collects everything a run wrote, by name, for the scan.
type sink struct {
	mu    sync.Mutex
	parts map[string]*bytes.Buffer
}

func newSink() *sink { return &sink{parts: map[string]*bytes.Buffer{}} }

func (s *sink) buf(name string) *bytes.Buffer {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.parts[name]
	if !ok {
		b = &bytes.Buffer{}
		s.parts[name] = b
	}
	return b
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// loggers returns a debug-level logger writing both text and JSON records
// into the sink.
func (s *sink) logger(name string) *slog.Logger {
	var mu sync.Mutex
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	text := slog.NewTextHandler(lockedWriter{&mu, s.buf(name + ".log.txt")}, opts)
	js := slog.NewJSONHandler(lockedWriter{&mu, s.buf(name + ".log.json")}, opts)
	return slog.New(fanout{text, js})
}

func (s *sink) add(name string, b []byte) { s.buf(name).Write(b) }

func (s *sink) addf(name, format string, args ...any) { fmt.Fprintf(s.buf(name), format+"\n", args...) }

func (s *sink) addFile(t *testing.T, name, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	s.add(name, b)
}

// scan returns "part: secret" for every sentinel found anywhere.
func (s *sink) scan(secrets ...string) (found []string, scanned int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, b := range s.parts {
		scanned += b.Len()
		for _, sec := range secrets {
			if n := bytes.Count(b.Bytes(), []byte(sec)); n > 0 {
				found = append(found, fmt.Sprintf("%s: %q ×%d", name, sec, n))
			}
		}
	}
	return found, scanned
}

// fanout sends each record to several handlers.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool { return true }
func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		errs = append(errs, h.Handle(ctx, r.Clone()))
	}
	return errors.Join(errs...)
}
func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}
func (f fanout) WithGroup(g string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(g)
	}
	return out
}

// TestSecretHygieneSDK runs the mail copy (user and admin login, a wrong
// password, a dry run), the admin API (login, reads, a user token, an
// operation, a refused login) with sentinel passwords and debug logging,
// and scans text and JSON logs, stats and reports, error messages and the
// state database for the sentinels.
func TestSecretHygieneSDK(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := newSink()
	var secrets = []string{sentinelUser, sentinelAdmin, sentinelWrong, sentinelSOAP}

	// Mail.
	admins := map[string]string{"admin": sentinelAdmin}
	src, dst := startMemPair(t, memimap.Options{Admins: admins}, memimap.Options{Admins: admins}, sentinelUser)
	if err := src.Seed("user1", corpus.Generate("user1", corpus.Options{Seed: 3, Messages: 1, Events: -1, Contacts: -1}).Mail); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(ctx, statePath)
	if err != nil {
		t.Fatal(err)
	}
	srcAcct := &imapcopy.Account{Addr: src.Addr(), Security: imapcopy.Plaintext, User: "user1", Password: secret.New(sentinelUser)}
	dstAcct := &imapcopy.Account{Addr: dst.Addr(), Security: imapcopy.Plaintext, User: "user1", Admin: "admin", Password: secret.New(sentinelAdmin)}
	var events []string
	var evMu sync.Mutex
	cp := &imapcopy.Copier{
		Checkpoint: st.Mail(srcAcct.String() + " -> " + dstAcct.String()),
		Logger:     out.logger("imapcopy"),
		OnEvent: func(e imapcopy.Event) {
			evMu.Lock()
			events = append(events, fmt.Sprintf("%#v", e))
			evMu.Unlock()
		},
	}
	for _, dry := range []bool{true, false} {
		cp.DryRun = dry
		stats, err := cp.Copy(ctx, dstAcct, srcAcct)
		if err != nil {
			t.Fatalf("copy (dry run %v): %v", dry, err)
		}
		b, _ := json.Marshal(stats)
		out.add("imapcopy.stats.json", b)
		out.addf("imapcopy.stats.txt", "%+v %v %s %s", stats, stats, srcAcct, dstAcct)
	}
	wrong := *srcAcct
	wrong.Password = secret.New(sentinelWrong)
	_, err = cp.Copy(ctx, dstAcct, &wrong)
	if !errors.Is(err, retry.ErrAuth) {
		t.Errorf("copy with a wrong password: %v, want an auth error", err)
	}
	out.addf("imapcopy.errors", "%v | %+v | %#v", err, err, err)
	out.addf("imapcopy.accounts", "%v %+v %#v", wrong, wrong, &wrong)
	st.Close()
	out.addFile(t, "state.db", statePath)
	out.addFile(t, "state.db-wal", statePath+"-wal")
	evMu.Lock()
	out.add("imapcopy.events", []byte(strings.Join(events, "\n")))
	evMu.Unlock()

	// Admin API.
	srv := carboniotest.New(carboniotest.Options{Password: sentinelSOAP})
	defer srv.Close()
	c := &carbonio.Client{URL: srv.URL, Admin: "admin@carbonio.local", Password: secret.New(sentinelSOAP),
		HTTPClient: srv.Client(), Logger: out.logger("carbonio"), Retry: fastRetry, PollInterval: time.Millisecond,
		// The fake accepts the guessed SOAP fields; the secrets must stay out of that path too.
		UnverifiedSOAP: true}
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Domains(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := c.UserToken(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, tok.Reveal())
	out.addf("carbonio.token", "%v %+v %#v", tok, tok, tok)
	op, err := c.SmartScan(ctx, carbonio.SmartScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, nil); err != nil {
		t.Fatal(err)
	}
	out.addf("carbonio.client", "%v %+v", c.Password, c.Password)
	bad := &carbonio.Client{URL: srv.URL, Admin: "admin@carbonio.local", Password: secret.New(sentinelWrong),
		HTTPClient: srv.Client(), Logger: out.logger("carbonio-bad"), Retry: fastRetry}
	err = bad.Login(ctx)
	if !errors.Is(err, retry.ErrAuth) {
		t.Errorf("admin login with a wrong password: %v, want an auth error", err)
	}
	out.addf("carbonio.errors", "%v | %+v | %#v", err, err, err)

	// The scanner itself must find a planted secret, in both log formats.
	probe := newSink()
	probe.logger("probe").Info("planted", "password", sentinelUser)
	if f, _ := probe.scan(sentinelUser); len(f) != 2 {
		t.Fatalf("scanner found %v in a planted log line, want text and JSON", f)
	}

	found, scanned := out.scan(secrets...)
	t.Logf("secret hygiene (SDK): scanned %d bytes in %d outputs (text and JSON logs, stats, events, errors, state DB): %d sentinels found",
		scanned, len(out.parts), len(found))
	for _, f := range found {
		t.Errorf("secret leaked: %s", f)
	}
	if out.buf("imapcopy.log.json").Len() == 0 && out.buf("carbonio.log.json").Len() == 0 {
		t.Error("no log was written at debug level: the scan proves nothing")
	}
}
