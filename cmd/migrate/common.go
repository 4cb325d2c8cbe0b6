package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"

	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/state"
)

// loadPassword reads a password from file when given, else from the env var.
// A missing source is a usage error naming both ways to give it.
func loadPassword(env, file, flagName string) (secret.Secret, error) {
	s, err := secret.Load(env, file)
	if err != nil {
		return secret.Secret{}, usageError{fmt.Errorf("%w (set %s or --%s)", err, env, flagName)}
	}
	return s, nil
}

// tlsConfig returns a TLS configuration with verification on, trusting the
// system roots plus the PEM certificates in caFile when it is not empty
// (migrate.LoadTLSConfig); a bad --ca-file is a usage error.
func tlsConfig(caFile string) (*tls.Config, error) {
	cfg, err := migrate.LoadTLSConfig(caFile)
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe):
		return nil, usageError{fmt.Errorf("read --ca-file: %w", err)}
	case err != nil:
		return nil, usageError{fmt.Errorf("--ca-file %w", err)}
	}
	return cfg, nil
}

// openState opens the --state of a command that writes one, under the
// state's lock (state.OpenLocked). A path in a missing or unwritable
// directory is a usage error like a foreign file or a held lock.
func openState(ctx context.Context, path string) (state.Store, error) {
	st, err := state.OpenLocked(ctx, path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil, usageError{fmt.Errorf("--state %s: %w", path, errors.Unwrap(err))}
	}
	return st, err
}
