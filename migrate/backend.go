package migrate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/httpx"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/zxerrors"
)

// TokenSource gives a per-user token for DAV (sent as the ZM_AUTH_TOKEN
// cookie). *carbonio.Client satisfies it through admin DelegateAuth.
type TokenSource interface {
	UserToken(ctx context.Context, account string) (secret.Secret, error)
}

// Hooks replace how a Runner reaches the servers, for programs that embed
// it (and the demo). Nil fields mean: built from the plan.
type Hooks struct {
	// SourceTokens and DestinationTokens give DAV tokens when a side's
	// dav.auth is "token" (default: that side's admin API).
	SourceTokens, DestinationTokens TokenSource
	// DestinationCLI runs carbonio and zmmtactl on the destination
	// (default: the plan's destination.cli).
	DestinationCLI carbonio.Runner
	// SourceCLI runs zxsuite on the source for the export phase (default:
	// the plan's source.cli).
	SourceCLI carbonio.Runner
	// PollInterval is the first wait between polls of a server operation
	// (default: the carbonio client's).
	PollInterval time.Duration
	// DAVCredentials, when set, gives per-account Basic credentials for a
	// side ("source" or "destination"), for DAV servers without admin
	// access to every home. ok false falls back to the plan.
	DAVCredentials func(side, account string) (user string, password secret.Secret, ok bool)
}

// serverBackend reaches the plan's servers through the leaf packages.
type serverBackend struct {
	p        *Plan
	log      *slog.Logger
	hooks    Hooks
	srcAdmin *carbonio.Client // nil when not configured
	dstAdmin *carbonio.Client
	srcTLS   *tls.Config
	dstTLS   *tls.Config
	srcHTTP  *http.Client
	dstHTTP  *http.Client
	pacer    *pace.Pacer // shared by srcHTTP and dstHTTP
	budget   *imapcopy.ConnBudget
	ssh      *carbonio.SSH
	seed     seedBackend // export and transfer
}

func loadTLS(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("migrate: ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("migrate: ca_file %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// httpClient has no overall timeout: its connections' idle deadlines
// (internal/httpx) fail a stalled request without cutting a long transfer.
// Every request goes through the run's one pacer (one pace per host).
func httpClient(cfg *tls.Config, idle time.Duration, p *pace.Pacer) *http.Client {
	return httpx.NewClient(httpx.Options{TLSConfig: cfg, IdleTimeout: idle, Wrap: p.Wrap})
}

func newServerBackend(p *Plan, log *slog.Logger, hooks Hooks) (*serverBackend, error) {
	b := &serverBackend{p: p, log: log, hooks: hooks, budget: imapcopy.NewConnBudget(p.Concurrency.connections())}
	var err error
	// One CA file per side: admin, IMAP and DAV usually share a certificate.
	ca := func(ep *Endpoint) string {
		for _, f := range []string{ep.Admin.CAFile, ep.IMAP.CAFile, ep.DAV.CAFile} {
			if f != "" {
				return f
			}
		}
		return ""
	}
	if b.srcTLS, err = loadTLS(ca(&p.Source)); err != nil {
		return nil, err
	}
	if b.dstTLS, err = loadTLS(ca(&p.Destination)); err != nil {
		return nil, err
	}
	b.pacer = pace.New(p.Limits.HTTPRate)
	b.srcHTTP = httpClient(b.srcTLS, p.Source.DAV.IdleTimeout, b.pacer)
	b.dstHTTP = httpClient(b.dstTLS, p.Destination.DAV.IdleTimeout, b.pacer)
	need := p.needs()
	if p.Source.Admin.URL != "" && (need.srcAdmin || p.Source.Admin.User != "") {
		b.srcAdmin = &carbonio.Client{URL: p.Source.Admin.URL, Admin: p.Source.Admin.User, Password: p.Source.Admin.Password,
			HTTPClient: b.srcHTTP, Logger: log, PollInterval: hooks.PollInterval}
	}
	if p.Destination.Admin.URL != "" {
		b.dstAdmin = &carbonio.Client{URL: p.Destination.Admin.URL, Admin: p.Destination.Admin.User, Password: p.Destination.Admin.Password,
			HTTPClient: b.dstHTTP, Logger: log, PollInterval: hooks.PollInterval, UnverifiedSOAP: p.Destination.Admin.UnverifiedSOAP}
		if hooks.PollInterval > 0 {
			b.dstAdmin.PollMax = 4 * hooks.PollInterval
		}
		var run carbonio.Runner
		switch {
		case hooks.DestinationCLI != nil:
			run = hooks.DestinationCLI
		case p.Destination.CLI.Mode == "local":
			run = carbonio.Local{}
		case p.Destination.CLI.Mode == "ssh":
			s := p.Destination.CLI.SSH
			b.ssh = &carbonio.SSH{Addr: s.Address, User: s.User, KnownHostsFile: s.KnownHostsFile, KeyFiles: s.KeyFiles, RunAs: s.RunAs}
			run = b.ssh
		}
		if run != nil {
			b.dstAdmin.Transport = &carbonio.CLI{Runner: run, Program: p.Destination.CLI.Program}
		}
	}
	return b, nil
}

func (b *serverBackend) Close() error {
	for _, st := range b.pacer.Stats() {
		if st.Throttled > 0 {
			b.log.Warn("server throttled HTTP requests", "host", st.Host, "requests", st.Requests, "throttled", st.Throttled,
				"retried", st.Retried, "slow_downs", st.SlowDowns, "rate", st.Rate)
		} else {
			b.log.Debug("HTTP pace", "host", st.Host, "requests", st.Requests, "waited", st.Waited)
		}
	}
	b.seed.close()
	if b.ssh != nil {
		return b.ssh.Close()
	}
	return nil
}

func (b *serverBackend) HasSourceDirectory() bool { return b.srcAdmin != nil }

// Check logs in to the admin APIs the plan needs and reaches the IMAP and
// DAV servers. Account-level IMAP logins are checked by checkAccounts.
func (b *serverBackend) Check(ctx context.Context) error {
	need := b.p.needs()
	var errs []error
	if need.srcAdmin && b.srcAdmin != nil {
		if err := b.srcAdmin.Login(ctx); err != nil {
			errs = append(errs, &ServerError{Key: "source.admin", Address: b.p.Source.Admin.URL, Err: err})
		}
	}
	if need.dstAdmin && b.dstAdmin != nil {
		if err := b.dstAdmin.Login(ctx); err != nil {
			errs = append(errs, &ServerError{Key: "destination.admin", Address: b.p.Destination.Admin.URL, Err: err})
		}
	}
	if need.imap {
		errs = append(errs, dialCheck(ctx, "source.imap", b.p.Source.IMAP.Address, b.p.Source.IMAP.Security, b.srcTLS))
		errs = append(errs, dialCheck(ctx, "destination.imap", b.p.Destination.IMAP.Address, b.p.Destination.IMAP.Security, b.dstTLS))
	}
	if need.dav {
		errs = append(errs, httpCheck(ctx, "source.dav", b.p.Source.DAV.URL, b.srcHTTP))
		errs = append(errs, httpCheck(ctx, "destination.dav", b.p.Destination.DAV.URL, b.dstHTTP))
	}
	errs = append(errs, b.checkSeed(ctx))
	return errors.Join(errs...)
}

// dialCheck connects (and, for implicit TLS, handshakes with verification).
func dialCheck(ctx context.Context, key, addr, security string, cfg *tls.Config) error {
	d := net.Dialer{Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return &ServerError{Key: key, Address: addr, Err: zxerrors.Connect(err)}
	}
	defer conn.Close()
	if security == "" || security == "tls" {
		c := cfg.Clone()
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(conn, c)
		if err := tc.HandshakeContext(ctx); err != nil {
			return &ServerError{Key: key, Address: addr, Err: fmt.Errorf("tls: %w", zxerrors.Connect(err))}
		}
	}
	return nil
}

func httpCheck(ctx context.Context, key, url string, hc *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, url, nil)
	if err != nil {
		return &ServerError{Key: key, Address: url, Err: err}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &ServerError{Key: key, Address: url, Err: err}
	}
	resp.Body.Close()
	return nil // any HTTP answer means reachable; logins are per account
}

func (b *serverBackend) SourceAccounts(ctx context.Context, domain string) ([]AccountPlan, error) {
	if b.srcAdmin == nil {
		return nil, errors.New("migrate: no source admin API configured (source.admin)")
	}
	accts, err := b.srcAdmin.Accounts(ctx, domain, "zimbraIsSystemAccount", "zimbraIsSystemResource")
	if err != nil {
		return nil, err
	}
	var out []AccountPlan
	for _, a := range accts {
		if a.IsSystem() {
			continue
		}
		ap := AccountPlan{Source: strings.ToLower(a.Name)}
		if b.p.Source.Kind != "imap" {
			// Sizes order the pool (largest first); a failure only costs
			// the ordering.
			if fs, err := b.srcAdmin.Folders(ctx, a.Name); err == nil {
				for _, f := range fs {
					if !f.Virtual() {
						ap.Size += f.Size
					}
				}
			} else {
				b.log.Debug("folder sizes", "account", a.Name, "err", err)
			}
		}
		out = append(out, ap)
	}
	return out, nil
}

// SourceExists looks an account up on the source; without an admin API
// by an admin IMAP login on its behalf.
func (b *serverBackend) SourceExists(ctx context.Context, addr string) (bool, error) {
	if b.srcAdmin != nil && b.p.Source.Kind != "imap" {
		_, err := b.srcAdmin.Account(ctx, addr)
		if errors.Is(err, carbonio.ErrNoSuchAccount) {
			return false, nil
		}
		return err == nil, err
	}
	if b.p.Source.IMAP.Address == "" {
		return true, nil
	}
	_, src := b.imapAccounts(AccountPlan{Source: addr, Destination: addr})
	return imapExists(ctx, "source.imap", src)
}

// CheckIMAP logs in as the admin on behalf of one account on each side
// (the destination only when destination is true), so that refused admin
// credentials stop the run before anything is written.
func (b *serverBackend) CheckIMAP(ctx context.Context, a AccountPlan, destination bool) error {
	dst, src := b.imapAccounts(a)
	if _, err := imapExists(ctx, "source.imap", src); err != nil {
		return err
	}
	if destination {
		if _, err := imapExists(ctx, "destination.imap", dst); err != nil {
			return err
		}
	}
	return nil
}

// imapExists logs in as the admin on behalf of the account: a refused
// authorisation means the mailbox does not exist (or may not be opened).
func imapExists(ctx context.Context, key string, a *imapcopy.Account) (bool, error) {
	c, err := a.Dial(ctx)
	if err == nil {
		_ = c.Logout().Wait()
		_ = c.Close()
		return true, nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAuthorizationFailed {
		return false, nil
	}
	return false, &ServerError{Key: key, Address: a.Addr, Err: err}
}

func (b *serverBackend) DestinationExists(ctx context.Context, addr string) (bool, error) {
	if b.dstAdmin == nil {
		if b.p.Destination.IMAP.Address == "" {
			return true, nil
		}
		dst, _ := b.imapAccounts(AccountPlan{Source: addr, Destination: addr})
		return imapExists(ctx, "destination.imap", dst)
	}
	_, err := b.dstAdmin.Account(ctx, addr)
	if errors.Is(err, carbonio.ErrNoSuchAccount) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

func (b *serverBackend) CheckDirectory(ctx context.Context, p *Plan) ([]Problem, error) {
	if b.srcAdmin == nil || b.dstAdmin == nil || p.Source.Kind == "imap" || len(p.Domains) == 0 {
		return nil, nil
	}
	want, err := b.srcAdmin.Directory(ctx, p.Domains...)
	if err != nil {
		return nil, err
	}
	// The restore keeps source names; accounts are checked one by one
	// (with the address map) by the caller.
	want.Accounts = nil
	rep, err := b.dstAdmin.CheckProvisioning(ctx, *want)
	if err != nil {
		return nil, err
	}
	var out []Problem
	for _, a := range rep.Aliases.Missing {
		out = append(out, Problem{Item: "alias " + a, Reason: "missing on the destination"})
	}
	for _, l := range rep.DistributionLists.Missing {
		out = append(out, Problem{Item: "distribution list " + l, Reason: "missing on the destination"})
	}
	for _, d := range rep.Domains.Missing {
		out = append(out, Problem{Item: "domain " + d, Reason: "missing on the destination"})
	}
	return out, nil
}

// nonMailViews are Zimbra folder views whose items are not mail.
var nonMailViews = map[string]bool{"appointment": true, "task": true, "contact": true, "document": true, "wiki": true, "chat": true}

// imapName turns a Zimbra folder path ("Inbox/Projects") into the IMAP
// name the copier sees ("INBOX/Projects").
func imapName(path string) string {
	first, rest, ok := strings.Cut(path, "/")
	if strings.EqualFold(first, "Inbox") {
		first = "INBOX"
	}
	if ok {
		return first + "/" + rest
	}
	return first
}

// granteeTypes names Zimbra's grantee types for the report.
var granteeTypes = map[string]string{"usr": "user", "grp": "group", "dom": "domain", "cos": "class of service",
	"all": "all users", "pub": "the public", "guest": "guest", "key": "key holder"}

// describeGrants lists a folder's grants as "user bob@example.com (rwidx),
// the public (r)".
func describeGrants(gs []carbonio.Grant) string {
	parts := make([]string, 0, len(gs))
	for _, g := range gs {
		who := granteeTypes[g.Type]
		if who == "" {
			who = g.Type
		}
		if g.Grantee != "" && g.Type != "all" && g.Type != "pub" {
			who += " " + g.Grantee
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", who, g.Perm))
	}
	return strings.Join(parts, ", ")
}

func (b *serverBackend) Inventory(ctx context.Context, a AccountPlan) (*Inventory, error) {
	inv := &Inventory{SkipFolders: map[string]string{}}
	if b.srcAdmin == nil || b.p.Source.Kind == "imap" {
		return inv, nil
	}
	fs, err := b.srcAdmin.Folders(ctx, a.Source)
	if err != nil {
		return nil, err
	}
	// With the shares phase, grants, mountpoints and saved searches are
	// re-created there, which reports what it cannot re-create.
	shares := b.p.HasPhase(PhaseShares)
	notMigrated := func(n NotMigrated) {
		if !shares || n.Kind == "files" {
			inv.NotMigrated = append(inv.NotMigrated, n)
		}
	}
	for _, f := range fs {
		if len(f.Grants) > 0 && f.Kind == carbonio.KindFolder {
			notMigrated(NotMigrated{Account: a.Source, Kind: "share", Name: f.Path,
				Reason: "shared with " + describeGrants(f.Grants) + ": shares are not migrated by this procedure; re-create them on the destination"})
		}
		switch {
		case f.Kind == carbonio.KindLink:
			reason := "mountpoint of another account's folder: shares are not migrated by this procedure"
			inv.SkipFolders[imapName(f.Path)] = reason
			notMigrated(NotMigrated{Account: a.Source, Kind: "mountpoint", Name: f.Path, Reason: reason})
		case f.Kind == carbonio.KindSearch:
			reason := "saved search: a view of other folders, its messages are copied from their own folders"
			inv.SkipFolders[imapName(f.Path)] = reason
			notMigrated(NotMigrated{Account: a.Source, Kind: "search", Name: f.Path, Reason: reason})
		case nonMailViews[f.View]:
			// Old sources list calendars, address books and briefcases as
			// IMAP folders; copying them would make empty mail folders that
			// clash with the destination's own. Calendars and contacts go
			// by DAV.
			inv.SkipFolders[imapName(f.Path)] = fmt.Sprintf("not a mail folder (%s view)", f.View)
			if f.View == "document" && f.Count > 0 && !b.p.HasPhase(PhaseFiles) {
				notMigrated(NotMigrated{Account: a.Source, Kind: "files", Name: f.Path,
					Reason: fmt.Sprintf("%d Files/Briefcase items: not migrated by this procedure", f.Count)})
			}
		}
	}
	return inv, nil
}

// running finds an operation of the destination that is still queued or
// started and whose name contains one of hints (case and spaces ignored).
// A run that died while watching a SmartScan, restore or dedup then waits for
// that operation instead of starting a second one. When the list cannot be
// read, the phase starts a new operation as before.
func (b *serverBackend) running(ctx context.Context, hints ...string) (carbonio.Operation, bool) {
	ops, err := b.dstAdmin.Operations(ctx)
	if err != nil {
		return carbonio.Operation{}, false
	}
	for _, op := range ops {
		if op.Outcome != carbonio.OutcomeRunning {
			continue
		}
		name := strings.ToLower(op.Name)
		for _, h := range hints {
			if strings.Contains(name, h) || strings.Contains(strings.ReplaceAll(name, " ", ""), strings.ReplaceAll(h, " ", "")) {
				return op, true
			}
		}
	}
	return carbonio.Operation{}, false
}

// wait waits for op and records it in the phase result: the operation,
// its outcome, its raw state and type, and whether it was started over
// SOAP with unverified field names. Only a succeeded outcome is a success;
// a failed or unknown one (or a lost operation) fails the phase with an
// error that names the operation and its outcome.
func (b *serverBackend) wait(ctx context.Context, op carbonio.Operation, opErr error, unverified bool, rec *recorder) error {
	if opErr != nil {
		return opErr
	}
	note := ""
	if unverified {
		note = "; started over SOAP with unverified field names (destination.admin.unverified_soap)"
	}
	rec.add(func(r *PhaseResult) { r.Reason = fmt.Sprintf("operation %s %s: running%s", op.Name, op.ID, note) })
	final, err := b.dstAdmin.Wait(ctx, op, func(o carbonio.Operation) {
		rec.Progress(0, 0, 0)
	})
	if err != nil {
		if unverified {
			return fmt.Errorf("%w%s", err, note)
		}
		return err
	}
	rec.add(func(r *PhaseResult) {
		r.Reason = fmt.Sprintf("operation %s %s: outcome %s (state %q, type %q)%s", final.Name, final.ID, final.Outcome, final.State, final.Type, note)
	})
	return nil
}

// moduleChecks tells preflight how each destination module phase of the
// plan will run: on the command line, or over SOAP with unverified field
// names.
func (b *serverBackend) moduleChecks() []Check {
	if b.dstAdmin == nil {
		return nil
	}
	var out []Check
	for _, m := range []struct {
		ph             Phase
		module, action string
	}{{PhaseSmartScan, "ZxBackup", "doSmartScan"}, {PhaseProvisioning, "ZxBackup", "doExternalRestore"}, {PhaseDedup, "ZxPowerstore", "doDeduplicate"}} {
		if !b.p.HasPhase(m.ph) {
			continue
		}
		c := Check{Name: fmt.Sprintf("%s (%s %s)", m.ph, m.module, m.action), OK: true}
		switch err := b.dstAdmin.CanRun(m.module, m.action); {
		case err != nil:
			c.OK, c.Detail = false, err.Error()
		case b.unverified(m.module, m.action):
			c.Detail = "unverified: sent over SOAP with field names no public source shows (destination.admin.unverified_soap)"
		default:
			c.Detail = "carbonio command line (destination.cli)"
		}
		out = append(out, c)
	}
	return out
}

// unverified reports whether the client sends module/action over SOAP
// with guessed field names.
func (b *serverBackend) unverified(module, action string) bool {
	return b.dstAdmin.Unverified(carbonio.Command{Module: module, Action: action})
}

func (b *serverBackend) Global(ctx context.Context, ph Phase, p *Plan, accts []AccountPlan, rec *recorder) error {
	switch ph {
	case PhaseExport:
		return b.export(ctx, p, rec)
	case PhaseTransfer:
		return b.transfer(ctx, p, accts, rec)
	}
	if b.dstAdmin == nil {
		return errors.New("migrate: no destination admin API configured (destination.admin)")
	}
	switch ph {
	case PhaseMTAStop:
		return b.dstAdmin.MTA(ctx, false)
	case PhaseMTAStart:
		return b.dstAdmin.MTA(ctx, true)
	case PhaseSmartScan:
		uv := b.unverified("ZxBackup", "doSmartScan")
		if op, ok := b.running(ctx, "smartscan", "smart scan"); ok {
			return b.wait(ctx, op, nil, uv, rec)
		}
		op, err := b.dstAdmin.SmartScan(ctx, carbonio.SmartScanOptions{})
		return b.wait(ctx, op, err, uv, rec)
	case PhaseProvisioning:
		pr := p.Provisioning
		o := carbonio.RestoreOptions{
			Domains:                p.Domains,
			ProvisioningOnly:       pr.ProvisioningOnly == nil || *pr.ProvisioningOnly,
			ConcurrentAccounts:     pr.ConcurrentAccounts,
			SkipDomainProvisioning: pr.SkipDomainProvisioning,
			SkipDistributionLists:  pr.SkipDistributionLists,
			SkipCOSes:              pr.SkipCOS,
		}
		if p.Accounts.ListFile != "" || len(p.Accounts.Include) > 0 || len(p.Accounts.Exclude) > 0 {
			for _, a := range accts {
				o.Accounts = append(o.Accounts, a.Source)
			}
		}
		op, ok := b.running(ctx, "externalrestore", "external restore")
		var err error
		if !ok {
			op, err = b.dstAdmin.ExternalRestore(ctx, pr.BackupPath, o)
		}
		if err := b.wait(ctx, op, err, b.unverified("ZxBackup", "doExternalRestore"), rec); err != nil {
			return err
		}
		if len(p.Map.Domains) > 0 || len(p.Map.Accounts) > 0 {
			rec.add(func(r *PhaseResult) {
				r.Reason += "; note: the restore keeps source addresses, the address map applies to the copy phases"
			})
		}
		return nil
	case PhaseShares:
		return b.shares(ctx, accts, rec)
	case PhaseFiles:
		return b.files(ctx, accts, rec)
	case PhaseDedup:
		uv := b.unverified("ZxPowerstore", "doDeduplicate")
		if op, ok := b.running(ctx, "deduplicate", "dedup"); ok {
			return b.wait(ctx, op, nil, uv, rec)
		}
		op, err := b.dstAdmin.Deduplicate(ctx, p.Provisioning.DedupVolume, false)
		return b.wait(ctx, op, err, uv, rec)
	}
	return fmt.Errorf("migrate: %s is not a global phase", ph)
}

func security(s string) imapcopy.Security {
	switch s {
	case "starttls":
		return imapcopy.StartTLS
	case "none":
		return imapcopy.Plaintext
	}
	return imapcopy.ImplicitTLS
}

func (b *serverBackend) imapAccounts(a AccountPlan) (dst, src *imapcopy.Account) {
	s, d := b.p.Source.IMAP, b.p.Destination.IMAP
	src = &imapcopy.Account{Addr: s.Address, Security: security(s.Security), TLSConfig: b.srcTLS,
		User: a.Source, Admin: s.Admin, Password: s.Password,
		IdleTimeout: s.IdleTimeout, MaxLine: s.MaxLineBytes, MaxLiteral: s.MaxLiteralBytes}
	dst = &imapcopy.Account{Addr: d.Address, Security: security(d.Security), TLSConfig: b.dstTLS,
		User: a.Destination, Admin: d.Admin, Password: d.Password,
		IdleTimeout: d.IdleTimeout, MaxLine: d.MaxLineBytes, MaxLiteral: d.MaxLiteralBytes}
	return dst, src
}

func (b *serverBackend) copier(a AccountPlan, inv *Inventory, rec *recorder) *imapcopy.Copier {
	m := b.p.Mail
	c := &imapcopy.Copier{
		Concurrency: b.p.Concurrency.mailFolders(),
		MaxWriters:  m.WritersPerAccount,
		Budget:      b.budget,
		Include:     m.Include,
		Exclude:     m.Exclude,
		Map:         m.Folders,
		SkipDeleted: m.SkipDeleted,
		Delete:      m.Delete,
		MaxSize:     m.MaxSize,
		Logger:      b.log.With("account", a.Source),
	}
	if rec.store != nil {
		c.Checkpoint = rec.store.Mail(a.Source + " -> " + a.Destination)
	}
	if inv != nil && len(inv.SkipFolders) > 0 {
		c.SkipFolder = func(name string) (bool, string) {
			r, ok := inv.SkipFolders[name]
			return ok, r
		}
	}
	return c
}

// mailAuthError turns a refused admin login into errAdminAuth (the whole run
// stops) and leaves a refused authorisation (no such mailbox, no right to
// open it) as the account's own failure.
func mailAuthError(err error) error {
	if err == nil || !errors.Is(err, zxerrors.ErrAuth) {
		return err
	}
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAuthorizationFailed {
		return fmt.Errorf("the admin may not open this mailbox (does it exist?): %w", err)
	}
	return fmt.Errorf("%w: %w", errAdminAuth, err)
}

func (b *serverBackend) Account(ctx context.Context, ph Phase, a AccountPlan, inv *Inventory, rec *recorder) error {
	switch ph {
	case PhaseMail:
		return b.mail(ctx, a, inv, rec)
	case PhaseCalendars:
		return b.dav(ctx, a, rec, true)
	case PhaseContacts:
		return b.dav(ctx, a, rec, false)
	case PhaseVerify:
		return b.verify(ctx, a, inv, rec)
	}
	return fmt.Errorf("migrate: %s is not an account phase", ph)
}

func (b *serverBackend) mail(ctx context.Context, a AccountPlan, inv *Inventory, rec *recorder) error {
	c := b.copier(a, inv, rec)
	c.OnEvent = func(ev imapcopy.Event) {
		switch e := ev.(type) {
		case imapcopy.FolderStarted:
			rec.AddTotal(int64(e.ToCopy))
		case imapcopy.MessageCopied:
			rec.Step(1, e.Bytes)
		case imapcopy.MessageSkipped:
			rec.Problem(fmt.Sprintf("%s UID %d", e.Folder, e.UID), true, e.Reason)
		case imapcopy.MessageFailed:
			rec.Problem(fmt.Sprintf("%s UID %d", e.Folder, e.UID), false, errText(e.Err))
		}
	}
	dst, src := b.imapAccounts(a)
	st, err := c.Copy(ctx, dst, src)
	if st != nil {
		mailResult(st, rec, false)
	}
	return mailAuthError(err)
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// mailResult folds imapcopy stats into the phase result.
func mailResult(st *imapcopy.Stats, rec *recorder, verify bool) {
	rec.add(func(r *PhaseResult) {
		cancelled := 0
		defer func() {
			if cancelled > 0 {
				r.Problems = append(r.Problems, Problem{Item: "folders", Reason: fmt.Sprintf("%d folders not copied or not finished: the run was stopped", cancelled)})
			}
		}()
		for _, f := range st.Folders {
			if f.Cancelled {
				cancelled++ // one line per account, not one per folder
				continue
			}
			d := Detail{Name: f.Source, Destination: f.Destination, SourceCount: int64(f.SourceCount), DestCount: int64(f.DestCount),
				Copied: int64(f.Copied), Existing: int64(f.AlreadyPresent), Skipped: int64(len(f.SkippedItems)), Failed: int64(len(f.Failed))}
			var notes []string
			switch {
			case f.Skipped != "":
				notes = append(notes, "skipped: "+f.Skipped)
			case f.NoSelect:
				notes = append(notes, "\\Noselect parent")
			case f.Unchanged:
				notes = append(notes, "unchanged since the last pass")
			}
			if f.Renamed != "" {
				notes = append(notes, "renamed: "+f.Renamed)
			}
			if len(f.Keywords) > 0 {
				notes = append(notes, fmt.Sprintf("%d messages with sanitised keywords", len(f.Keywords)))
			}
			if f.Deleted > 0 {
				notes = append(notes, fmt.Sprintf("%d copies deleted (gone from the source)", f.Deleted))
			}
			if !verify {
				d.Failed += int64(len(f.DeleteFailed))
			}
			if f.Err != "" {
				notes = append(notes, "error: "+f.Err)
				d.Failed++
			}
			if v := f.Verify; v != nil {
				d.SourceCount, d.DestCount = int64(v.SourceCount), int64(v.DestCount)
				if verify {
					d.Failed = int64(v.Missing + v.Duplicated + v.FlagMismatches + v.BodyMismatches)
					d.Skipped = int64(v.Skipped)
					// Of the source messages not skipped on purpose, those
					// neither missing nor different are proven copied.
					d.ToVerify = int64(max(v.SourceCount-v.Skipped, 0))
					d.Verified = max(d.ToVerify-int64(v.Missing+v.FlagMismatches), 0)
				}
				if v.Missing > 0 || v.Duplicated > 0 || v.FlagMismatches > 0 {
					notes = append(notes, fmt.Sprintf("verify: %d missing, %d duplicated, %d flag/date mismatches", v.Missing, v.Duplicated, v.FlagMismatches))
				}
				if v.BodyMismatches > 0 {
					notes = append(notes, fmt.Sprintf("verify: %d of %d sampled bodies differ", v.BodyMismatches, v.Sampled))
				}
				if v.Extra > 0 {
					notes = append(notes, fmt.Sprintf("%d extra on the destination", v.Extra))
				}
			}
			d.Note = strings.Join(notes, "; ")
			r.Details = append(r.Details, d)
			if verify {
				r.Failed += d.Failed
				r.Skipped += d.Skipped
				r.ToVerify += d.ToVerify
				r.Verified += d.Verified
				if f.Err != "" {
					r.Problems = append(r.Problems, Problem{Item: f.Source, Reason: f.Err})
				}
				if v := f.Verify; v != nil && v.Missing > 0 {
					r.Problems = append(r.Problems, Problem{Item: f.Source,
						Reason: fmt.Sprintf("%d of %d messages missing on the destination (e.g. UIDs %v)", v.Missing, v.SourceCount, v.Examples)})
				}
				if v := f.Verify; v != nil && v.Duplicated > 0 {
					r.Problems = append(r.Problems, Problem{Item: f.Source,
						Reason: fmt.Sprintf("%d duplicate copies on the destination", v.Duplicated)})
				}
				if v := f.Verify; v != nil && v.FlagMismatches > 0 {
					r.Problems = append(r.Problems, Problem{Item: f.Source, Reason: fmt.Sprintf("%d messages with different flags or dates", v.FlagMismatches)})
				}
				if v := f.Verify; v != nil && v.BodyMismatches > 0 {
					r.Problems = append(r.Problems, Problem{Item: f.Source, Reason: fmt.Sprintf("%d messages whose bytes differ on the destination (e.g. UIDs %v)", v.BodyMismatches, v.BodyExamples)})
				}
				continue
			}
			r.Copied += d.Copied
			r.Existing += d.Existing
			r.Skipped += d.Skipped
			r.Failed += d.Failed
			r.Bytes += f.Bytes
			r.Deleted += int64(f.Deleted)
			// Every keyword change is listed per message. A dropped
			// keyword loses information: counted as changed, so the phase
			// ends partial (as `migrate mail` exits 3); a keyword
			// renamed by the documented rule is counted as translated.
			for _, k := range f.Keywords {
				if k.Lost() {
					r.Changed++
				} else {
					r.Translated++
				}
			}
			for _, k := range f.Keywords {
				if len(r.Problems) >= maxProblems {
					r.ProblemsOmitted++
					continue
				}
				var ch []string
				for _, c := range k.Changes {
					to := c.To
					if to == "" {
						to = "(dropped)"
					}
					ch = append(ch, fmt.Sprintf("%s -> %s (%s)", c.From, to, c.Reason))
				}
				r.Problems = append(r.Problems, Problem{Item: fmt.Sprintf("%s UID %d", f.Source, k.UID), Changed: k.Lost(), Translated: !k.Lost(),
					Reason: "keywords changed: " + strings.Join(ch, "; ")})
			}
			if f.Err != "" {
				r.Problems = append(r.Problems, Problem{Item: f.Source, Reason: f.Err})
			}
			for _, it := range f.DeleteFailed {
				r.Problems = append(r.Problems, Problem{Item: fmt.Sprintf("%s UID %d", f.Source, it.UID), Reason: it.Reason})
			}
		}
	})
}

func (b *serverBackend) davEndpoints(a AccountPlan) (src, dst caldav.Endpoint) {
	mk := func(side string, ep DAVEndpoint, acct string, hc *http.Client, admin *carbonio.Client, hook TokenSource) caldav.Endpoint {
		e := caldav.Endpoint{URL: strings.TrimSuffix(ep.URL, "/") + "/" + acct + "/", HTTPClient: hc, Account: acct, TrustedOrigins: ep.TrustedOrigins,
			Limits: caldav.Limits{MaxMultistatus: ep.MaxMultistatusMiB << 20, MaxObject: ep.MaxObjectMiB << 20, MaxExport: ep.MaxExportMiB << 20}}
		if f := b.hooks.DAVCredentials; f != nil {
			if u, pw, ok := f(side, acct); ok {
				e.User, e.Password = u, pw
				return e
			}
		}
		if ep.Auth == "basic" {
			e.User, e.Password = ep.User, ep.Password
			return e
		}
		switch {
		case hook != nil:
			e.Token = hook
		case admin != nil:
			e.Token = admin
		}
		return e
	}
	return mk("source", b.p.Source.DAV, a.Source, b.srcHTTP, b.srcAdmin, b.hooks.SourceTokens),
		mk("destination", b.p.Destination.DAV, a.Destination, b.dstHTTP, b.dstAdmin, b.hooks.DestinationTokens)
}

func cardEndpoint(e caldav.Endpoint) carddav.Endpoint {
	return carddav.Endpoint{URL: e.URL, User: e.User, Password: e.Password, Token: e.Token, Account: e.Account, HTTPClient: e.HTTPClient,
		TrustedOrigins: e.TrustedOrigins, AllowPlaintext: e.AllowPlaintext, Limits: e.Limits, TLSConfig: e.TLSConfig, IdleTimeout: e.IdleTimeout}
}

func (b *serverBackend) davSides(a AccountPlan, cal bool) (dst caldav.Destination, src caldav.Source, err error) {
	se, de := b.davEndpoints(a)
	if cal {
		s, err := caldav.NewDAV(se)
		if err != nil {
			return nil, nil, err
		}
		d, err := caldav.NewDAV(de)
		if err != nil {
			return nil, nil, err
		}
		return d, s, nil
	}
	s, err := carddav.NewDAV(cardEndpoint(se))
	if err != nil {
		return nil, nil, err
	}
	d, err := carddav.NewDAV(cardEndpoint(de))
	if err != nil {
		return nil, nil, err
	}
	return d, s, nil
}

func (b *serverBackend) dav(ctx context.Context, a AccountPlan, rec *recorder, cal bool) error {
	return b.davCopy(ctx, a, rec, cal, false)
}

func (b *serverBackend) davDry(ctx context.Context, a AccountPlan, rec *recorder, cal bool) error {
	return b.davCopy(ctx, a, rec, cal, true)
}

func (b *serverBackend) davCopy(ctx context.Context, a AccountPlan, rec *recorder, cal, dry bool) error {
	dst, src, err := b.davSides(a, cal)
	if err != nil {
		return err
	}
	opts := b.p.Contacts
	if cal {
		opts = b.p.Calendars
	}
	onEvent := func(ev caldav.Event) {
		switch e := ev.(type) {
		case caldav.CollectionStarted:
			rec.Progress(0, 0, 0)
		case caldav.ObjectDone:
			rec.Step(1, 0)
		case caldav.ObjectFailed:
			rec.Problem(e.Collection+"/"+e.Item, false, errText(e.Err))
		}
	}
	var st *caldav.Stats
	cp := b.davCheckpoint(rec, a, cal)
	if dry && !opts.Delete {
		// With Delete a dry run reads the records to count what would be
		// deleted; the engine writes nothing in a dry run.
		cp = nil
	}
	filt := filteredSource{Source: src, include: opts.Include, exclude: opts.Exclude}
	if cal {
		c := &caldav.Copier{Concurrency: b.p.Concurrency.folders(), Checkpoint: cp, DryRun: dry, Delete: opts.Delete, OnEvent: onEvent, Logger: b.log.With("account", a.Source)}
		st, err = c.Copy(ctx, dst, filt)
	} else {
		c := &carddav.Copier{Concurrency: b.p.Concurrency.folders(), Checkpoint: cp, DryRun: dry, Delete: opts.Delete, OnEvent: onEvent, Logger: b.log.With("account", a.Source)}
		st, err = c.Copy(ctx, dst, filt)
	}
	if st != nil {
		rec.add(func(r *PhaseResult) {
			for _, c := range st.Collections {
				d := Detail{Name: c.Source, Destination: c.Destination, SourceCount: int64(c.Objects), DestCount: -1,
					Copied: int64(c.Created + c.Updated), Existing: int64(c.Unchanged), Skipped: int64(c.Skipped), Failed: int64(c.Failed)}
				var notes []string
				if c.CollectionCreated {
					notes = append(notes, "collection created")
				}
				if c.Nested != "" {
					notes = append(notes, "flattened from "+c.Nested)
				}
				if c.Repaired > 0 {
					notes = append(notes, fmt.Sprintf("%d repaired", c.Repaired))
				}
				if c.Routed > 0 {
					notes = append(notes, fmt.Sprintf("%d routed to a companion collection", c.Routed))
				}
				if c.Gone {
					notes = append(notes, "not among this run's source collections (gone, or left out by include/exclude); its copies are kept")
				}
				if c.Deleted > 0 {
					notes = append(notes, fmt.Sprintf("%d deleted (gone from the source)", c.Deleted))
				}
				if c.Kept > 0 {
					notes = append(notes, fmt.Sprintf("%d kept: changed on the destination", c.Kept))
				}
				if c.HeldBack > 0 {
					notes = append(notes, fmt.Sprintf("%d deletions held back", c.HeldBack))
				}
				d.Note = strings.Join(notes, "; ")
				r.Details = append(r.Details, d)
				r.Copied += d.Copied
				r.Existing += d.Existing
				r.Skipped += d.Skipped
				r.Failed += d.Failed
				r.Deleted += int64(c.Deleted)
				for _, e := range c.Errors {
					// Failures were reported by ObjectFailed events; the
					// skipped (invalid) ones only here.
					if len(r.Problems) < maxProblems && !hasProblem(r.Problems, c.Source+"/"+e.Item) {
						r.Problems = append(r.Problems, Problem{Item: c.Source + "/" + e.Item, Skipped: true, Reason: e.Reason})
					}
				}
			}
		})
	}
	return err
}

func hasProblem(ps []Problem, item string) bool {
	for _, p := range ps {
		if p.Item == item {
			return true
		}
	}
	return false
}

// filteredSource applies the plan's include/exclude to a DAV source's
// collections.
type filteredSource struct {
	caldav.Source
	include, exclude []string
}

func (f filteredSource) Collections(ctx context.Context) ([]caldav.Collection, error) {
	cols, err := f.Source.Collections(ctx)
	if err != nil || len(f.include)+len(f.exclude) == 0 {
		return cols, err
	}
	var out []caldav.Collection
	for _, c := range cols {
		if matchFilter(f.include, f.exclude, c.Name) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (b *serverBackend) verify(ctx context.Context, a AccountPlan, inv *Inventory, rec *recorder) error {
	var errs []error
	if b.p.HasPhase(PhaseMail) {
		c := b.copier(a, inv, rec)
		c.Checkpoint = nil // verification reads both sides only
		dst, src := b.imapAccounts(a)
		st, err := c.Verify(ctx, dst, src)
		if st != nil {
			mailResult(st, rec, true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("mail: %w", mailAuthError(err)))
		}
	}
	for _, cal := range []bool{true, false} {
		ph := PhaseContacts
		if cal {
			ph = PhaseCalendars
		}
		if !b.p.HasPhase(ph) {
			continue
		}
		dst, src, err := b.davSides(a, cal)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		opts := b.p.Contacts
		if cal {
			opts = b.p.Calendars
		}
		filt := filteredSource{Source: src, include: opts.Include, exclude: opts.Exclude}
		// Verification only reads the checkpoint: it finds there where an
		// object was adopted (Carbonio's UID conflict named another href).
		cp := b.davCheckpoint(rec, a, cal)
		var v *caldav.Verification
		if cal {
			v, err = (&caldav.Copier{Concurrency: b.p.Concurrency.folders(), Checkpoint: cp}).Verify(ctx, dst, filt)
		} else {
			v, err = (&carddav.Copier{Concurrency: b.p.Concurrency.folders(), Checkpoint: cp}).Verify(ctx, dst, filt)
		}
		if v != nil {
			rec.add(func(r *PhaseResult) {
				for _, c := range v.Collections {
					bad := int64(len(c.Missing) + len(c.Different) + len(c.Duplicates))
					d := Detail{Name: string(ph) + ": " + c.Source, Destination: c.Destination, SourceCount: int64(c.Items),
						DestCount: int64(c.Matched), Failed: bad, Skipped: int64(len(c.Invalid)),
						ToVerify: int64(c.Items), Verified: int64(c.Matched)}
					var notes []string
					if len(c.Missing) > 0 {
						notes = append(notes, fmt.Sprintf("%d missing", len(c.Missing)))
					}
					if len(c.Different) > 0 {
						notes = append(notes, fmt.Sprintf("%d different", len(c.Different)))
					}
					if len(c.Duplicates) > 0 {
						notes = append(notes, fmt.Sprintf("%d duplicated", len(c.Duplicates)))
					}
					if len(c.Invalid) > 0 {
						notes = append(notes, fmt.Sprintf("%d invalid at the source (not copied)", len(c.Invalid)))
					}
					if len(c.Adopted) > 0 {
						notes = append(notes, fmt.Sprintf("%d adopted in another collection", len(c.Adopted)))
					}
					d.Note = strings.Join(notes, "; ")
					r.Details = append(r.Details, d)
					r.Failed += bad
					r.Skipped += d.Skipped
					r.ToVerify += d.ToVerify
					r.Verified += d.Verified
					for _, u := range c.Missing {
						r.Problems = append(r.Problems, Problem{Item: c.Source + " UID " + u, Reason: "missing on the destination"})
					}
					for _, u := range c.Different {
						reason := "different on the destination"
						if w := c.ChangedIn(u); w != "" {
							reason += ": " + w
						}
						r.Problems = append(r.Problems, Problem{Item: c.Source + " UID " + u, Reason: reason})
					}
					for _, u := range c.Duplicates {
						r.Problems = append(r.Problems, Problem{Item: c.Source + " UID " + u, Reason: "more than once on the destination"})
					}
				}
			})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ph, err))
		}
	}
	return errors.Join(errs...)
}

// davCheckpoint returns the state store's DAV checkpoint of the account
// pair (nil without a store: the copiers then match objects by UID at the
// destination, which is idempotent too).
func (b *serverBackend) davCheckpoint(rec *recorder, a AccountPlan, cal bool) caldav.Checkpoint {
	if rec.store == nil {
		return nil
	}
	key := a.Source + " -> " + a.Destination
	if cal {
		return rec.store.Calendars(key)
	}
	return rec.store.Contacts(key)
}
