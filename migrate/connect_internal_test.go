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
