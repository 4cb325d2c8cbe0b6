package dashboard

import (
	"context"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/state"
)

// TestStoreCountsPostgres: a runner's metrics count the accounts of a
// shared PostgreSQL state, all runners' together.
func TestStoreCountsPostgres(t *testing.T) {
	pg := testserver.StartPostgres(t, testserver.PostgresOptions{})
	ctx := context.Background()
	url, err := pg.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIGRATE_STATE_PASSWORD_FILE", pg.PasswordFile)
	st, err := state.OpenURL(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, a := range []string{"a@example.com", "b@example.com"} {
		if err := st.PutAccount(ctx, a, a, 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetAccountStatus(ctx, "a@example.com", "mail", "done", ""); err != nil {
		t.Fatal(err)
	}
	c, err := StoreCounts(url)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range c {
		total += n
	}
	if c["done"] != 1 || total != 2 {
		t.Errorf("counts from PostgreSQL: %v, want 2 accounts, 1 done", c)
	}
}
