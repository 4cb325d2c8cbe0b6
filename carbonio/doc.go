// Package carbonio is a client for the Carbonio (and Zimbra) admin API:
// the provisioning phase of a Zextras Suite to Carbonio migration.
//
// It speaks the admin SOAP API in its JSON form (AuthRequest, directory
// and inventory requests, DelegateAuth, GetFolder acting as a user) and
// runs module commands (backup doSmartScan, doExternalRestore, powerstore
// doDeduplicate, operations) either through the zextras SOAP request or,
// because their SOAP field names are not documented, through the carbonio
// command line, locally or over SSH (CLI, Local, SSH). Both transports are
// built from one table, Commands.
//
// Quick start:
//
//	c := &carbonio.Client{URL: "https://mbox.example.com:7071", Admin: "admin@example.com",
//		Password: secret.New(pw)}
//	op, err := c.SmartScan(ctx, carbonio.SmartScanOptions{})
//	if err == nil {
//		op, err = c.Wait(ctx, op, func(o carbonio.Operation) { fmt.Println(o.State, o.Progress) })
//	}
//	op, err = c.ExternalRestore(ctx, "/tmp/export", carbonio.RestoreOptions{
//		Domains: []string{"example.com"}, ProvisioningOnly: true})
//	// ... Wait, then:
//	rep, err := c.CheckProvisioning(ctx, expected)
//
// TLS verification is on unless HTTPClient says otherwise. Passwords and
// tokens are secret.Secret values: they never reach logs or errors.
//
// carboniotest is an in-process fake of the admin API and of the carbonio
// command for tests.
package carbonio
