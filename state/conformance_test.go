package state_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/state"
	"github.com/zxmigrate/zxmigrate/state/statetest"
)

func TestSQLiteConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		s, err := state.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func openPostgres(t *testing.T, p *testserver.Postgres) state.Store {
	t.Helper()
	u, err := p.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s, err := state.OpenPostgres(context.Background(), u, state.PostgresOptions{PasswordFile: p.PasswordFile})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPostgresConformance(t *testing.T) {
	p := testserver.StartPostgres(t, testserver.PostgresOptions{})
	statetest.Run(t, func(t *testing.T) state.Store { return openPostgres(t, p) })
}
