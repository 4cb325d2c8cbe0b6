// Package secret is the public face of zxmigrate's credential type, so that
// programs embedding the SDK can fill the Password fields of imapcopy,
// caldav, carddav and carbonio:
//
//	acct.Password = secret.New(os.Getenv("IMAP_PASSWORD"))
//
// A Secret prints as REDACTED through fmt, slog, JSON and YAML; only Reveal
// returns the value.
package secret

import "github.com/zxmigrate/zxmigrate/internal/secret"

// Secret is a password or token that never prints its value.
type Secret = secret.Secret

// Redacted is what a Secret prints as.
const Redacted = secret.Redacted

// New wraps s in a Secret.
func New(s string) Secret { return secret.New(s) }

// Load reads a secret from file when it is not empty, else from the
// environment variable env; see the internal package for the rules.
func Load(env, file string) (Secret, error) { return secret.Load(env, file) }
