package caldav

import (
	"context"
	"fmt"

	webcaldav "github.com/emersion/go-webdav/caldav"

	"github.com/zxmigrate/zxmigrate/dav"
)

// Protocol implements dav.Rules: Rules handle CalDAV objects.
func (Rules) Protocol() *dav.Protocol { return dav.CalDAV }

// NewDAV returns the CalDAV server at e, a dav.Source, dav.Destination and
// dav.Deleter. e.URL is a server, principal, calendar home or calendar URL.
// Nothing is sent until first use.
func NewDAV(e dav.Endpoint) (*dav.Remote, error) {
	r, err := dav.NewRemote(dav.CalDAV, e)
	if err != nil {
		return nil, fmt.Errorf("caldav: %w", err)
	}
	return r, nil
}

// FindCalendars lists calendars with go-webdav's client, following the
// current user principal and calendar home set (for callers that want its
// view; dav.Copier uses its own discovery, which also reads colours).
func FindCalendars(ctx context.Context, e dav.Endpoint) ([]webcaldav.Calendar, error) {
	c, err := webcaldav.NewClient(e.HTTP(), e.URL)
	if err != nil {
		return nil, fmt.Errorf("caldav: %w", err)
	}
	p, err := c.FindCurrentUserPrincipal(ctx)
	if err != nil {
		return nil, fmt.Errorf("caldav: principal: %w", err)
	}
	home, err := c.FindCalendarHomeSet(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("caldav: home set: %w", err)
	}
	return c.FindCalendars(ctx, home)
}
