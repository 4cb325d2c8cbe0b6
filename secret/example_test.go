package secret_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/zxmigrate/zxmigrate/secret"
)

// A Secret prints, logs and marshals as REDACTED; only Reveal gives the
// value, where it goes on the wire.
func ExampleSecret() {
	pw := secret.New("hunter2")
	fmt.Println(pw, fmt.Sprintf("%q %v %#v", pw, pw, pw))
	b, _ := json.Marshal(struct{ Password secret.Secret }{pw})
	fmt.Println(string(b))
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // keep the output stable
			}
			return a
		}}))
	log.Info("login", "password", pw)
	fmt.Println(len(pw.Reveal()))
	// Output:
	// REDACTED REDACTED REDACTED REDACTED
	// {"Password":"REDACTED"}
	// level=INFO msg=login password=REDACTED
	// 7
}

// Load reads a password from a file when one is named, else from an
// environment variable: never from a command line argument.
func ExampleLoad() {
	os.Setenv("EXAMPLE_PASSWORD", "s3cret")
	defer os.Unsetenv("EXAMPLE_PASSWORD")
	pw, err := secret.Load("EXAMPLE_PASSWORD", "")
	fmt.Println(pw.Reveal() == "s3cret", err)

	_, err = secret.Load("EXAMPLE_UNSET_PASSWORD", "")
	fmt.Println(err)
	// Output:
	// true <nil>
	// secret: environment variable EXAMPLE_UNSET_PASSWORD is not set
}
