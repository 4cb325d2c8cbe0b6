package caldav_test

import (
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/davtest"
)

// Real-server pairs (internal/testserver). Radicale handles ~20 PUT/s, so
// sizes stay small; bench/dav.sh measures bigger runs.
func TestConformanceServers(t *testing.T) {
	pairs := []struct {
		name     string
		src, dst func(testing.TB, string) davtest.Side
	}{
		{"radicale-xandikos", davtest.Radicale, davtest.Xandikos},
		{"xandikos-radicale", davtest.Xandikos, davtest.Radicale},
		{"radicale-radicale", davtest.Radicale, davtest.Radicale},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			src := p.src(t, "src")
			dst := p.dst(t, "dst")
			davtest.RunCalendars(t, src, dst, davtest.Options{Events: 10, Malformed: true})
		})
	}
}
