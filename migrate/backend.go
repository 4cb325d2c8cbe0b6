package migrate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/internal/pace"
	"github.com/zxmigrate/zxmigrate/secret"
)

// TokenSource gives a per-user token for DAV (sent as the ZM_AUTH_TOKEN
// cookie). *carbonio.Client satisfies it through admin DelegateAuth.
type TokenSource interface {
	UserToken(ctx context.Context, account string) (secret.Secret, error) // returns account's token
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
	gate     *budgets    // the run's global budgets, nil without
	seed     seedBackend // export and transfer
}

func newServerBackend(p *Plan, log *slog.Logger, hooks Hooks) (*serverBackend, error) {
	b := &serverBackend{p: p, log: log, hooks: hooks, budget: imapcopy.NewConnBudget(p.Concurrency.Connections())}
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
	b.srcHTTP = httpClient(b.srcTLS, p.Source.DAV.IdleTimeout, b.pacer, "source")
	b.dstHTTP = httpClient(b.dstTLS, p.Destination.DAV.IdleTimeout, b.pacer, "destination")
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
		tr, err := b.commandLine("destination", hooks.DestinationCLI, p.Destination.CLI).Transport()
		if err != nil {
			return nil, err
		}
		if tr != nil {
			b.dstAdmin.Transport = tr
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
		for _, side := range []struct {
			key string
			ep  IMAPEndpoint
			tls *tls.Config
		}{{"source.imap", b.p.Source.IMAP, b.srcTLS}, {"destination.imap", b.p.Destination.IMAP, b.dstTLS}} {
			errs = append(errs, b.gate.dial(ctx, side.ep.Address, func() error {
				return dialCheck(ctx, side.key, side.ep.Address, side.ep.Security, side.tls)
			}))
		}
	}
	if need.dav {
		errs = append(errs, httpCheck(ctx, "source.dav", b.p.Source.DAV.URL, b.srcHTTP))
		errs = append(errs, httpCheck(ctx, "destination.dav", b.p.Destination.DAV.URL, b.dstHTTP))
	}
	errs = append(errs, b.checkSeed(ctx))
	return errors.Join(errs...)
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
	return b.imapExists(ctx, "source.imap", src)
}

// CheckIMAP logs in as the admin on behalf of one account on each side
// (the destination only when destination is true), so that refused admin
// credentials stop the run before anything is written.
func (b *serverBackend) CheckIMAP(ctx context.Context, a AccountPlan, destination bool) error {
	dst, src := b.imapAccounts(a)
	if _, err := b.imapExists(ctx, "source.imap", src); err != nil {
		return err
	}
	if destination {
		if _, err := b.imapExists(ctx, "destination.imap", dst); err != nil {
			return err
		}
	}
	return nil
}

// imapExists logs in as the admin on behalf of the account: a refused
// authorisation means the mailbox does not exist (or may not be opened).
func (b *serverBackend) imapExists(ctx context.Context, key string, a *imapcopy.Account) (bool, error) {
	err := b.gate.dial(ctx, a.Addr, func() error {
		c, err := a.Dial(ctx)
		if err == nil {
			_ = c.Logout().Wait()
			_ = c.Close()
		}
		return err
	})
	if err == nil {
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
		return b.imapExists(ctx, "destination.imap", dst)
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
