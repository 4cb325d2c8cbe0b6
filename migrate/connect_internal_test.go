package migrate

import (
	"log/slog"
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/retry"
)

// The public defaults are the values the internal packages apply.
func TestDefaultsMatchInternal(t *testing.T) {
	if DefaultIdleTimeout != httpx.DefaultIdleTimeout {
		t.Errorf("DefaultIdleTimeout %v, httpx applies %v", DefaultIdleTimeout, httpx.DefaultIdleTimeout)
	}
	if DefaultHTTPRate != pace.DefaultRate {
		t.Errorf("DefaultHTTPRate %v, pace applies %v", DefaultHTTPRate, pace.DefaultRate)
	}
	if DefaultRetryAttempts != retry.DefaultAttempts {
		t.Errorf("DefaultRetryAttempts %v, retry applies %v", DefaultRetryAttempts, retry.DefaultAttempts)
	}
}

// TestMailFolderConcurrency: a plan without folders_per_account leaves the
// number of folders in parallel to imapcopy, which raises it over a slow
// link; a set value is passed through.
func TestMailFolderConcurrency(t *testing.T) {
	b := &serverBackend{p: &Plan{}, log: slog.New(slog.DiscardHandler)}
	if got := b.copier(AccountPlan{Source: "a@x", Destination: "a@x"}, nil, &recorder{}).Concurrency; got != 0 {
		t.Errorf("folders_per_account unset: Copier.Concurrency %d, want 0 (imapcopy chooses)", got)
	}
	b.p.Concurrency.FoldersPerAccount = 5
	if got := b.copier(AccountPlan{Source: "a@x", Destination: "a@x"}, nil, &recorder{}).Concurrency; got != 5 {
		t.Errorf("folders_per_account 5: Copier.Concurrency %d, want 5", got)
	}
}

// TestConnectionsDefault: without connections_per_server the budget grows
// with the accounts in flight, so that each gets the connections a folder
// copy needs, and stays well under Zimbra's 200.
func TestConnectionsDefault(t *testing.T) {
	for _, tc := range []struct {
		c    Concurrency
		want int
	}{
		{Concurrency{}, DefaultConnectionsPerServer},
		{Concurrency{ConcurrentAccounts: 8}, DefaultConnectionsPerServer},
		{Concurrency{ConcurrentAccounts: 20}, 60},
		{Concurrency{ConcurrentAccounts: 200}, MaxDefaultConnectionsPerServer},
		{Concurrency{ConcurrentAccounts: 20, ConnectionsPerServer: 24}, 24},
	} {
		if got := tc.c.Connections(); got != tc.want {
			t.Errorf("%+v: %d connections per server, want %d", tc.c, got, tc.want)
		}
	}
}
