package carbonio_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/internal/testssh"
	"github.com/zxmigrate/zxmigrate/secret"
)

// BenchmarkAccounts lists a 5,000-account domain (10 SearchDirectory pages).
func BenchmarkAccounts(b *testing.B) {
	srv := carboniotest.New(carboniotest.Options{Password: sentinelPass, MaxSearchResults: 100000})
	defer srv.Close()
	for i := 0; i < 5000; i++ {
		srv.AddAccount(carboniotest.FixtureAccount{Name: fmt.Sprintf("u%05d@big.example", i),
			Attrs: map[string][]string{"zimbraMailHost": {"mbox1"}}, Folders: []carboniotest.FixtureFolder{}})
	}
	c := &carbonio.Client{URL: srv.URL, Admin: "admin@carbonio.local", Password: secret.New(sentinelPass), HTTPClient: srv.Client()}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		a, err := c.Accounts(ctx, "big.example", "zimbraMailHost")
		if err != nil || len(a) != 5000 {
			b.Fatal(len(a), err)
		}
	}
}

// BenchmarkModuleCommand runs getAllOperations over each transport.
func BenchmarkModuleCommand(b *testing.B) {
	for _, tr := range []string{"soap", "cli", "ssh"} {
		b.Run(tr, func(b *testing.B) {
			srv := carboniotest.New(carboniotest.Options{Password: sentinelPass})
			defer srv.Close()
			c := &carbonio.Client{URL: srv.URL, Admin: "admin@carbonio.local", Password: secret.New(sentinelPass), HTTPClient: srv.Client()}
			switch tr {
			case "cli":
				// Without a URL, operations are listed on the command line.
				c.URL, c.Transport = "", &carbonio.CLI{Runner: srv.CLIRunner()}
			case "ssh":
				sshd := testssh.Start(b)
				bin, err := carboniotest.BuildFakeCLIBinary(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				dir := srv.InstallFakeCLI(b, bin)
				r := &carbonio.SSH{Addr: sshd.Addr, User: sshd.User, KnownHostsFile: sshd.KnownHosts, KeyFiles: []string{sshd.ClientKey}}
				defer r.Close()
				c.URL, c.Transport = "", &carbonio.CLI{Runner: r, Program: filepath.Join(dir, "carbonio")}
			}
			ctx := context.Background()
			if _, err := c.Operations(ctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Operations(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
