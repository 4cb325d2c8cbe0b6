package state_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/state"
)

func TestPostgresOpen(t *testing.T) {
	ctx := context.Background()
	p := testserver.StartPostgres(t, testserver.PostgresOptions{})

	t.Run("ConcurrentMigration", func(t *testing.T) {
		u, err := p.NewDatabase(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const runners = 6
		var wg sync.WaitGroup
		stores := make([]state.Store, runners)
		errs := make([]error, runners)
		for i := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stores[i], errs[i] = state.OpenPostgres(ctx, u, state.PostgresOptions{PasswordFile: p.PasswordFile})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("runner %d: %v", i, err)
			}
			defer stores[i].Close()
		}
		db := stores[0].(*state.Postgres).DB()
		var steps, max int
		if err := db.QueryRowContext(ctx, `SELECT count(*), max(version) FROM schema_version`).Scan(&steps, &max); err != nil {
			t.Fatal(err)
		}
		if steps != 2 || max != 2 {
			t.Fatalf("schema_version: %d steps up to %d, want 2 steps up to 2", steps, max)
		}
		if err := stores[1].PutAccount(ctx, "a@x", "a@y", 1); err != nil {
			t.Fatal(err)
		}
		if a, ok, err := stores[2].Account(ctx, "a@x"); err != nil || !ok {
			t.Fatalf("a runner does not see another's account: %+v %v", a, err)
		}
	})

	t.Run("Password", func(t *testing.T) {
		u, err := p.NewDatabase(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// A password in the URL is refused, and not repeated.
		withPW, _ := url.Parse(u)
		withPW.User = url.UserPassword(p.User, p.Password)
		for _, bad := range []string{withPW.String(), u + "&password=" + p.Password} {
			_, err := state.OpenURL(ctx, bad)
			if err == nil || strings.Contains(err.Error(), p.Password) || !strings.Contains(err.Error(), "password") {
				t.Errorf("URL with a password: %v", err)
			}
		}
		// Without any password source the server refuses us.
		t.Setenv("PGPASSFILE", "/nonexistent")
		if s, err := state.OpenURL(ctx, u); err == nil {
			s.Close()
			t.Fatal("connected without a password")
		}
		// A wrong one: the error does not show it.
		t.Setenv(state.PasswordEnv, "Wr0ng-Secret-Value")
		if _, err := state.OpenURL(ctx, u); err == nil || strings.Contains(err.Error(), "Wr0ng-Secret-Value") {
			t.Fatalf("wrong password: %v", err)
		}
		// $MIGRATE_STATE_PASSWORD.
		t.Setenv(state.PasswordEnv, p.Password)
		s, err := state.OpenURL(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if s.Backend() != "postgres" || strings.Contains(s.Path(), p.Password) {
			t.Errorf("backend %q path %q", s.Backend(), s.Path())
		}
		if err := s.PutAccount(ctx, "a@x", "a@y", 1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		// $MIGRATE_STATE_PASSWORD_FILE, read-only.
		t.Setenv(state.PasswordEnv, "")
		t.Setenv(state.PasswordFileEnv, p.PasswordFile)
		ro, err := state.OpenURLReadOnly(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		if accts, err := ro.Accounts(ctx); err != nil || len(accts) != 1 {
			t.Fatalf("read-only accounts: %v %v", accts, err)
		}
		if err := ro.PutAccount(ctx, "b@x", "b@y", 1); err == nil {
			t.Error("a read-only store accepted a write")
		}
		// libpq's own variable, read by pgx.
		t.Setenv(state.PasswordFileEnv, "")
		t.Setenv("PGPASSWORD", p.Password)
		s, err = state.OpenURL(ctx, u)
		if err != nil {
			t.Fatalf("PGPASSWORD: %v", err)
		}
		s.Close()
	})
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:s3cret@db:5432/zx?sslmode=verify-full": "postgres://u:xxxxx@db:5432/zx?sslmode=verify-full",
		"postgres://u@db/zx?password=s3cret":                 "postgres://u@db/zx?password=xxxxx",
		"postgres://u@db/zx":                                 "postgres://u@db/zx",
	} {
		if got := state.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
