package testserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// recordTB records how requireBinary ended the test.
type recordTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordTB) Helper()                   {}
func (r *recordTB) Skipf(f string, a ...any)  { r.skipped = fmt.Sprintf(f, a...); panic(r) }
func (r *recordTB) Fatalf(f string, a ...any) { r.failed = fmt.Sprintf(f, a...); panic(r) }
func (r *recordTB) run(fn func(testing.TB)) {
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	fn(r)
}

func TestRequireBinary(t *testing.T) {
	const missing = "zxm-no-such-server"
	t.Setenv("CI", "")
	r := &recordTB{TB: t}
	r.run(func(tb testing.TB) { requireBinary(tb, missing) })
	if r.skipped == "" || r.failed != "" || !strings.Contains(r.skipped, missing) {
		t.Errorf("without CI: skipped %q, failed %q; want a skip naming %s", r.skipped, r.failed, missing)
	}
	t.Setenv("CI", "true")
	r = &recordTB{TB: t}
	r.run(func(tb testing.TB) { requireBinary(tb, missing) })
	if r.failed == "" || r.skipped != "" || !strings.Contains(r.failed, missing) {
		t.Errorf("with CI: skipped %q, failed %q; want a failure naming %s", r.skipped, r.failed, missing)
	}
	if _, err := lookBinary(missing); err == nil {
		t.Error("lookBinary of a missing server: got nil error")
	}
}

func TestWithRetry(t *testing.T) {
	calls := 0
	v, err := withRetry(func() (int, error) {
		calls++
		if calls < 3 {
			return 0, fmt.Errorf("%w: try %d", errPortInUse, calls)
		}
		return 42, nil
	})
	if v != 42 || err != nil || calls != 3 {
		t.Errorf("port clashes then success: got %d, %v after %d calls", v, err, calls)
	}
	calls = 0
	other := errors.New("broken config")
	if _, err := withRetry(func() (int, error) { calls++; return 0, other }); !errors.Is(err, other) || calls != 1 {
		t.Errorf("other error: got %v after %d calls; want it at once", err, calls)
	}
	calls = 0
	if _, err := withRetry(func() (int, error) { calls++; return 0, errPortInUse }); !errors.Is(err, errPortInUse) || calls != startAttempts {
		t.Errorf("always clashing: got %v after %d calls; want %d tries", err, calls, startAttempts)
	}
}

// TestPortClash starts Dovecot on a port that is taken: the start must end
// with an error, not hang, and name the server.
func TestPortClash(t *testing.T) {
	t.Parallel()
	requireBinary(t, "dovecot")
	d := StartDovecot(t, DovecotOptions{Name: "first"})
	port := d.Addr[strings.LastIndexByte(d.Addr, ':')+1:]
	// Same listener address in a second instance, through ExtraConfig
	// overriding the port: Dovecot must fail to bind.
	_, err := newDovecot(context.Background(), DovecotOptions{Name: "second", ExtraConfig: "service imap-login {\n  inet_listener imap {\n    port = " + port + "\n  }\n}\n"})
	if err == nil {
		t.Fatal("second Dovecot on a taken port: got nil error")
	}
	if !errors.Is(err, errPortInUse) {
		t.Errorf("got %v, want errPortInUse", err)
	}
	if !strings.Contains(err.Error(), "second") {
		t.Errorf("error does not name the server: %v", err)
	}
}

func TestHasSession(t *testing.T) {
	out := []byte("username                              proto pid ip\nuser1 imap 123 127.0.0.1\n")
	for user, want := range map[string]bool{"user1": true, "user": false, "username": false, "user2": false} {
		if got := hasSession(out, user); got != want {
			t.Errorf("hasSession(%q) = %v, want %v", user, got, want)
		}
	}
}
