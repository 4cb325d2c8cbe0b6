package secret_test

import (
	"fmt"
	"testing"

	"github.com/zxmigrate/zxmigrate/secret"
)

func TestPublicSecret(t *testing.T) {
	s := secret.New("hunter2")
	if got := fmt.Sprint(s); got != secret.Redacted {
		t.Errorf("Sprint = %q, want %q", got, secret.Redacted)
	}
	if s.Reveal() != "hunter2" {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}
