package migrate

import (
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
