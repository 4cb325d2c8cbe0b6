package testserver

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgresStartsUnprivilegedWithPassword(t *testing.T) {
	ctx := context.Background()
	p := StartPostgres(t, PostgresOptions{})
	status, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid = f[1]
		}
	}
	if want := strconv.Itoa(os.Geteuid()); os.Geteuid() != 0 && uid != want {
		t.Errorf("server uid %s, want ours (%s)", uid, want)
	}
	if uid == "0" || uid == "" {
		t.Errorf("server runs as uid %q, want an unprivileged user", uid)
	}
	u, err := p.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, p.Password) {
		t.Fatalf("URL %s holds the password", u)
	}
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = "wrong"
	if c, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		c.Close(ctx)
		t.Fatal("a wrong password was accepted")
	}
	cfg.Password = p.Password
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	if pw, _ := os.ReadFile(p.PasswordFile); strings.TrimSpace(string(pw)) != p.Password {
		t.Errorf("password file does not hold the password")
	}
	if fi, err := os.Stat(p.PasswordFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode: %v %v", fi.Mode(), err)
	}
}
