package migrate

import (
	"errors"
	"log/slog"
)

// newServerBackend wires the leaf packages (carbonio, imapcopy, caldav,
// carddav) to the plan's servers.
func newServerBackend(p *Plan, log *slog.Logger) (backend, error) {
	return nil, errors.New("migrate: server backend not wired yet")
}
