package carbonio_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carbonio/carboniotest"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// The provisioning phase against the fake admin server: a SmartScan, an
// external restore of the source's export with provisioning only, then a
// check that every domain, account, alias and list arrived. The module
// commands run on the carbonio command line, here the fake's in-process
// one; on a real server a &carbonio.SSH{Addr: ..., User: "root", RunAs:
// "zextras"} or carbonio.Local{} runs them.
func Example() {
	source := carboniotest.New(carboniotest.Options{}) // alice, bob and carol at example.com
	defer source.Close()
	dest := carboniotest.New(carboniotest.Options{Admin: "admin@example.com", Password: "pw",
		Fixture: &carboniotest.Fixture{}})
	defer dest.Close()
	dest.AddBackup("/opt/zextras/migration/export", source.Snapshot())
	ctx := context.Background()

	src := &carbonio.Client{URL: source.URL, Admin: "admin@carbonio.local", Password: secret.New("admin-password"),
		HTTPClient: source.Client()} // the fake's own CA; nil means the system roots
	expected, err := src.Directory(ctx, "example.com")
	if err != nil {
		log.Fatal(err)
	}

	c := &carbonio.Client{URL: dest.URL, Admin: "admin@example.com", Password: secret.New("pw"),
		HTTPClient: dest.Client(), Transport: &carbonio.CLI{Runner: dest.CLIRunner()},
		PollInterval: 10 * time.Millisecond}
	op, err := c.SmartScan(ctx, carbonio.SmartScanOptions{})
	if err == nil {
		op, err = c.Wait(ctx, op, nil)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(op.Outcome)
	op, err = c.ExternalRestore(ctx, "/opt/zextras/migration/export", carbonio.RestoreOptions{
		Domains: []string{"example.com"}, ProvisioningOnly: true})
	if err == nil {
		op, err = c.Wait(ctx, op, nil)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(op.Outcome)
	rep, err := c.CheckProvisioning(ctx, *expected)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("provisioned:", rep.OK())
	// Output:
	// succeeded
	// succeeded
	// provisioned: true
}

// Accounts lists a domain's accounts; a refused password is
// zxerrors.ErrAuth.
func ExampleClient_Accounts() {
	srv := carboniotest.New(carboniotest.Options{Admin: "admin@example.com", Password: "pw"})
	defer srv.Close()
	ctx := context.Background()

	c := &carbonio.Client{URL: srv.URL, Admin: "admin@example.com", Password: secret.New("pw"), HTTPClient: srv.Client()}
	accts, err := c.Accounts(ctx, "example.com")
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range accts {
		if !a.IsSystem() {
			fmt.Println(a.Name)
		}
	}

	wrong := &carbonio.Client{URL: srv.URL, Admin: "admin@example.com", Password: secret.New("wrong"), HTTPClient: srv.Client()}
	_, err = wrong.Accounts(ctx, "example.com")
	fmt.Println(errors.Is(err, zxerrors.ErrAuth))
	// Output:
	// alice@example.com
	// bob@example.com
	// carol@example.com
	// true
}
