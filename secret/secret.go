// Package secret holds credentials so that they never reach logs, reports,
// error messages or state by accident.
package secret

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Redacted is what a Secret prints as.
const Redacted = "REDACTED"

// Secret is a password or token. Its String, Format and LogValue methods
// print Redacted; call Reveal to use the value.
type Secret struct{ v string }

// New wraps s.
func New(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value. Call it only where the value goes on the wire.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb prints Redacted.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText prints Redacted, so JSON and YAML encoders never see the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Load reads a secret from the file named by file when it is not empty, else
// from the environment variable env. It fails, naming the source, when the
// source is missing or empty. A file keeps its content up to the first
// newline.
func Load(env, file string) (Secret, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return Secret{}, fmt.Errorf("secret: read password file: %w", err)
		}
		v, _, _ := strings.Cut(string(b), "\n")
		v = strings.TrimRight(v, "\r")
		if v == "" {
			return Secret{}, fmt.Errorf("secret: password file %s is empty", file)
		}
		return New(v), nil
	}
	if env == "" {
		return Secret{}, fmt.Errorf("secret: no password source given")
	}
	v, ok := os.LookupEnv(env)
	if !ok || v == "" {
		return Secret{}, fmt.Errorf("secret: environment variable %s is not set", env)
	}
	return New(v), nil
}
