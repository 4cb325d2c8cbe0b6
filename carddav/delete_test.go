package carddav_test

import (
	"testing"

	"github.com/zxmigrate/zxmigrate/internal/davtest"
)

func TestContactDeleteMemory(t *testing.T) {
	src, _ := davtest.MemSide(t, "mem-src")
	dst, _ := davtest.MemSide(t, "mem-dst")
	davtest.RunContactDeletes(t, src, dst)
}

// TestContactDeleteServers runs the deletion checks with each real server as the
// destination (and as the source).
func TestContactDeleteServers(t *testing.T) {
	pairs := []struct {
		name     string
		src, dst func(testing.TB, string) davtest.Side
	}{
		{"radicale-xandikos", davtest.Radicale, davtest.Xandikos},
		{"xandikos-radicale", davtest.Xandikos, davtest.Radicale},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			davtest.RunContactDeletes(t, p.src(t, "src"), p.dst(t, "dst"))
		})
	}
}
