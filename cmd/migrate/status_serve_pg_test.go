package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zxmigrate/zxmigrate/internal/testserver"
	"github.com/zxmigrate/zxmigrate/state"
)

// TestStatusServePostgres: `migrate status --serve` serves the dashboard
// and /metrics from a shared PostgreSQL state alone, with the accounts
// every runner recorded, and the password never shows in the page.
func TestStatusServePostgres(t *testing.T) {
	pg := testserver.StartPostgres(t, testserver.PostgresOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, err := pg.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MIGRATE_STATE_PASSWORD_FILE", pg.PasswordFile)
	st, err := state.OpenURL(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if err := st.PutAccount(ctx, a, a, int64(1000*(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetAccountStatus(ctx, "a@example.com", "mail", "done", ""); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAccountStatus(ctx, "b@example.com", "mail", "failed", "refused"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var out, errb syncBuffer
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, []string{"status", "--state", url, "--serve", "127.0.0.1:0"}, &out, &errb)
	}()
	at := regexp.MustCompile(`(http://127\.0\.0\.1:\d+/)`)
	var base string
	for deadline := time.Now().Add(time.Minute); base == ""; time.Sleep(50 * time.Millisecond) {
		if m := at.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		select {
		case code := <-codec:
			t.Fatalf("status --serve exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dashboard served\nstdout:\n%s\nstderr:\n%s", out.String(), errb.String())
		}
	}
	get := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, b)
		}
		return string(b)
	}
	var s struct {
		Total    int            `json:"total"`
		Accounts map[string]int `json:"accounts"`
	}
	body := get("api/status")
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("api/status: %v\n%s", err, body)
	}
	if s.Total != 3 || s.Accounts["done"] != 1 || s.Accounts["failed"] != 1 {
		t.Errorf("api/status from PostgreSQL: %+v, want 3 accounts, 1 done, 1 failed\n%s", s, body)
	}
	metrics := get("metrics")
	if !strings.Contains(metrics, `zxmigrate_accounts{state="failed"} 1`) {
		t.Errorf("metrics lack the store's account counts:\n%.2000s", metrics)
	}
	for name, text := range map[string]string{"api/status": body, "metrics": metrics, "stdout": out.String(), "stderr": errb.String()} {
		if strings.Contains(text, pg.Password) {
			t.Errorf("%s shows the database password", name)
		}
	}
	cancel()
	select {
	case <-codec:
	case <-time.After(10 * time.Second):
		t.Fatal("status --serve did not stop within 10 s of Ctrl-C")
	}
}
