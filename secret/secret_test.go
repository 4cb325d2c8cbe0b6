package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sentinel = "s3ntinel-Pa55"

func TestSecretNeverPrints(t *testing.T) {
	s := New(sentinel)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "password", s)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "password", s)
	j, err := json.Marshal(struct{ P Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s),
		fmt.Sprintf("%v", struct{ P Secret }{s}), logs.String(), string(j),
	} {
		if strings.Contains(got, sentinel) {
			t.Errorf("secret leaked in %q", got)
		}
	}
	if s.Reveal() != sentinel {
		t.Errorf("Reveal() = %q, want the value", s.Reveal())
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	if err := os.WriteFile(f, []byte(sentinel+"\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load("ZXM_TEST_UNSET_VAR", f)
	if err != nil || s.Reveal() != sentinel {
		t.Fatalf("Load(file) = %v, %v; want the first line", s.Reveal(), err)
	}
	t.Setenv("ZXM_TEST_PW", sentinel)
	if s, err := Load("ZXM_TEST_PW", ""); err != nil || s.Reveal() != sentinel {
		t.Fatalf("Load(env) = %v, %v", s.Reveal(), err)
	}
	_, err = Load("ZXM_TEST_UNSET_VAR", "")
	if err == nil || !strings.Contains(err.Error(), "ZXM_TEST_UNSET_VAR") {
		t.Errorf("Load(unset env) error = %v, want it to name the variable", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, err := Load("", empty); err == nil {
		t.Error("Load(empty file) succeeded, want an error")
	}
}
