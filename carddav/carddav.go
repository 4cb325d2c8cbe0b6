package carddav

import (
	"context"
	"fmt"

	webcarddav "github.com/emersion/go-webdav/carddav"

	"github.com/zxmigrate/zxmigrate/dav"
)

// Protocol implements dav.Rules: Rules handle CardDAV objects.
func (Rules) Protocol() *dav.Protocol { return dav.CardDAV }

// NewDAV returns the CardDAV server at e, a dav.Source, dav.Destination and
// dav.Deleter. e.URL is a server, principal, address-book home or
// address-book URL.
// Nothing is sent until first use.
func NewDAV(e dav.Endpoint) (*dav.Remote, error) {
	r, err := dav.NewRemote(dav.CardDAV, e)
	if err != nil {
		return nil, fmt.Errorf("carddav: %w", err)
	}
	return r, nil
}

// FindAddressBooks lists address books with go-webdav's client, following
// the current user principal and address-book home set (for callers that
// want its view; dav.Copier uses its own discovery).
func FindAddressBooks(ctx context.Context, e dav.Endpoint) ([]webcarddav.AddressBook, error) {
	c, err := webcarddav.NewClient(e.HTTP(), e.URL)
	if err != nil {
		return nil, fmt.Errorf("carddav: %w", err)
	}
	p, err := c.FindCurrentUserPrincipal(ctx)
	if err != nil {
		return nil, fmt.Errorf("carddav: principal: %w", err)
	}
	home, err := c.FindAddressBookHomeSet(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("carddav: home set: %w", err)
	}
	return c.FindAddressBooks(ctx, home)
}
