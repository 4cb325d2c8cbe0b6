// Package carboniotest shows how to test your own code against the fake
// Carbonio admin API of github.com/zxmigrate/zxmigrate/carbonio/carboniotest.
// MissingAccounts is the code under test; provisioned_test.go tests it.
package carboniotest

import (
	"context"
	"errors"

	"github.com/zxmigrate/zxmigrate/carbonio"
)

// MissingAccounts returns the addresses of want that do not exist on the
// server c talks to.
func MissingAccounts(ctx context.Context, c *carbonio.Client, want []string) ([]string, error) {
	var missing []string
	for _, a := range want {
		_, err := c.Account(ctx, a)
		switch {
		case errors.Is(err, carbonio.ErrNoSuchAccount):
			missing = append(missing, a)
		case err != nil:
			return nil, err
		}
	}
	return missing, nil
}
