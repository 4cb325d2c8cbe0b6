// Package carbonio is a client for the Carbonio (and Zimbra) admin API:
// the provisioning phase of a Zextras Suite to Carbonio migration.
//
// It speaks the admin SOAP API in its JSON form (AuthRequest, directory
// and inventory requests, DelegateAuth, GetFolder acting as a user) and
// lists, watches and stops module operations with the zextras SOAP
// requests the admin console sends. The module commands whose SOAP fields
// no public source shows (backup doSmartScan, doExternalRestore, doExport,
// powerstore doDeduplicate) run on the carbonio command line, locally or
// over SSH (CLI, Local, SSH); their guessed SOAP form is an explicit
// opt-in (Client.UnverifiedSOAP). Both transports are built from one
// table, Commands, whose comments cite the public sources.
//
// An operation succeeds only when its outcome (OutcomeOf its raw state
// and type) is OutcomeSucceeded; Wait returns an *OperationError for a
// failed or unknown outcome.
//
// Quick start:
//
//	c := &carbonio.Client{URL: "https://mbox.example.com:7071", Admin: "admin@example.com",
//		Password: secret.New(pw),
//		Transport: &carbonio.CLI{Runner: &carbonio.SSH{Addr: "mbox.example.com", User: "root", RunAs: "zextras"}}}
//	op, err := c.SmartScan(ctx, carbonio.SmartScanOptions{})
//	if err == nil {
//		op, err = c.Wait(ctx, op, func(o carbonio.Operation) { fmt.Println(o.State, o.Type) })
//	}
//	op, err = c.ExternalRestore(ctx, "/tmp/export", carbonio.RestoreOptions{
//		Domains: []string{"example.com"}, ProvisioningOnly: true})
//	// ... Wait, then:
//	rep, err := c.CheckProvisioning(ctx, expected)
//
// Example (in example_test.go) runs these steps against the fake server
// of carboniotest.
//
// TLS verification is on unless HTTPClient says otherwise. Passwords and
// tokens are secret.Secret values: they never reach logs or errors.
//
// carboniotest is an in-process fake of the admin API and of the carbonio
// command for tests.
package carbonio
