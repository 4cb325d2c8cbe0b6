package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/caldav"
	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/carddav"
	"github.com/zxmigrate/zxmigrate/dav"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/state"
	"github.com/zxmigrate/zxmigrate/termsafe"
)

// davFlags are the flags `migrate calendars` and `migrate contacts` share.
type davFlags struct {
	from, to              string
	fromUser, toUser      string
	fromPwFile, toPwFile  string
	fromREST              string // account whose REST export is the source
	toAdmin, toAccount    string // Carbonio admin SOAP URL and the account to act as
	toREST                bool   // calendars: write through REST ?fmt=ics
	toFolder              string // with toREST: the folder written to
	folders               []string
	allowPlaintext        bool
	trustedOrigins        []string
	idleTimeout           time.Duration
	maxMultistatusMiB     int64
	maxObjectMiB          int64
	maxExportMiB          int64
	caFile                string
	statePath, reportPath string
	dryRun, verify        bool
	delete                bool
	concurrency           int
	httpRate              float64
}

func (f *davFlags) register(c *cobra.Command, kind string) {
	fl := c.Flags()
	fl.StringVar(&f.from, "from", "", "source server, principal or collection URL (with --from-rest-account: the Zimbra admin URL, e.g. https://zimbra:7071)")
	fl.StringVar(&f.to, "to", "", "destination server, principal or collection URL")
	fl.StringVar(&f.fromUser, "from-user", "", "source user (Basic auth; password from MIGRATE_FROM_PASSWORD or --from-password-file)")
	fl.StringVar(&f.toUser, "to-user", "", "destination user (Basic auth; password from MIGRATE_TO_PASSWORD or --to-password-file)")
	fl.StringVar(&f.fromPwFile, "from-password-file", "", "file holding the source password")
	fl.StringVar(&f.toPwFile, "to-password-file", "", "file holding the destination password")
	fl.StringVar(&f.fromREST, "from-rest-account", "", "read the source through Zimbra's REST export of this account (admin credentials in --from-user)")
	fl.StringVar(&f.toAdmin, "to-carbonio-admin", "", "Carbonio admin URL (https://host:7071): --to-user is an admin, and the destination is written as --to-account with a DelegateAuth token (ZM_AUTH_TOKEN cookie)")
	if kind == "calendars" {
		fl.StringVar(&f.toAccount, "to-account", "", "with --to-carbonio-admin or --to-rest: the mailbox to write to")
	} else {
		fl.StringVar(&f.toAccount, "to-account", "", "with --to-carbonio-admin: the mailbox to write to")
	}
	if kind == "calendars" {
		fl.BoolVar(&f.toREST, "to-rest", false, "write through Carbonio's REST import (/home/<account>/<folder>?fmt=ics POST; fallback when DAV is unavailable); --to is the server URL")
		fl.StringVar(&f.toFolder, "to-folder", "Calendar", "with --to-rest: the existing folder every calendar is imported into")
	}
	def := "Calendar"
	if kind == "contacts" {
		def = "Contacts"
	}
	fl.StringSliceVar(&f.folders, "from-folders", []string{def}, "with --from-rest-account: folders to export (nested ones like Work/Team are flattened)")
	fl.BoolVar(&f.allowPlaintext, "allow-plaintext", false, "allow http:// URLs (credentials travel in clear)")
	fl.StringSliceVar(&f.trustedOrigins, "trust-origin", nil, "also send credentials to this origin (https://host[:port]) when the server's hrefs or redirects point there; any other origin is refused")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", migrate.DefaultIdleTimeout, "fail a request when no byte moved on its connection for this long (a slow transfer that progresses is never cut)")
	fl.Int64Var(&f.maxMultistatusMiB, "max-multistatus-mib", dav.DefaultMaxMultistatus>>20, "refuse a DAV listing or multiget answer larger than this (MiB)")
	fl.Int64Var(&f.maxObjectMiB, "max-object-mib", dav.DefaultMaxObject>>20, "refuse one calendar or contact object larger than this (MiB)")
	fl.Int64Var(&f.maxExportMiB, "max-export-mib", dav.DefaultMaxExport>>20, "with --from-rest-account: refuse a folder export larger than this (MiB)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file with extra CA certificates to trust")
	fl.StringVar(&f.statePath, "state", "", "state file (SQLite) that makes re-runs skip unchanged objects")
	fl.StringVar(&f.reportPath, "report", "", "write a JSON report to this file")
	fl.BoolVar(&f.dryRun, "dry-run", false, "read and validate everything, write nothing")
	fl.BoolVar(&f.delete, "delete", false, "delete on the destination the objects this tool copied that the source no longer has (needs --state; objects changed on the destination since are kept)")
	fl.BoolVar(&f.verify, "verify", true, "after copying, compare source and destination by UID and content")
	fl.IntVar(&f.concurrency, "concurrency", dav.DefaultConcurrency, "parallel requests per server")
	fl.Float64Var(&f.httpRate, "http-rate", 0, "HTTP requests per second per host, all requests together; 0 means 30, Zimbra's DoSFilter limit; negative means no pacing")
}

func (f *davFlags) check() error {
	if f.from == "" || f.to == "" {
		return usageError{errors.New("--from and --to are required")}
	}
	for _, u := range []string{f.from, f.to} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return usageError{fmt.Errorf("%q is not an http(s) URL", u)}
		}
		if p.User != nil {
			return usageError{fmt.Errorf("%s: put no credentials in URLs; use --from-user/--to-user and the password variables", p.Redacted())}
		}
		if p.Scheme == "http" && !f.allowPlaintext {
			return usageError{fmt.Errorf("%s is plain http: pass --allow-plaintext to send credentials in clear", u)}
		}
	}
	if (f.toAdmin != "" || f.toREST) && f.toAccount == "" {
		return usageError{errors.New("--to-carbonio-admin and --to-rest need --to-account")}
	}
	if f.toAdmin != "" && f.toUser == "" {
		return usageError{errors.New("--to-carbonio-admin needs the admin in --to-user")}
	}
	if f.toAdmin != "" {
		p, err := url.Parse(f.toAdmin)
		if err != nil || (p.Scheme != "https" && !(p.Scheme == "http" && f.allowPlaintext)) || p.Host == "" {
			return usageError{fmt.Errorf("--to-carbonio-admin %q must be an https URL (or http with --allow-plaintext)", f.toAdmin)}
		}
	}
	if f.delete && f.statePath == "" {
		return usageError{errors.New("--delete needs --state: only objects recorded there as copied are ever deleted")}
	}
	if f.concurrency < 0 {
		return usageError{errors.New("--concurrency must not be negative")}
	}
	if err := migrate.CheckTrustedOrigins(f.trustedOrigins, f.allowPlaintext); err != nil {
		return usageError{fmt.Errorf("--trust-origin: %w (--allow-plaintext allows plain http)", err)}
	}
	if f.maxMultistatusMiB < 0 || f.maxObjectMiB < 0 || f.maxExportMiB < 0 {
		return usageError{errors.New("--max-*-mib must not be negative")}
	}
	if f.idleTimeout < 0 {
		return usageError{errors.New("--idle-timeout must not be negative")}
	}
	return nil
}

// newCalendarsCmd is `migrate calendars`: copy calendars and task lists over CalDAV or Zimbra REST.
func newCalendarsCmd(e *env) *cobra.Command {
	f := &davFlags{}
	c := &cobra.Command{
		Use:   "calendars",
		Short: "Copy calendars and task lists over CalDAV, idempotently",
		Long: `Copy every calendar and task list from --from to --to over CalDAV.

Objects are identified by UID: a re-run with --state skips unchanged objects and
updates changed ones; without state, objects are matched by UID at the destination.
Writes are conditional (If-None-Match / If-Match): nothing is blindly overwritten.
With --delete (needs --state), objects this tool copied that the source no longer
has are deleted at the destination, under If-Match: one changed there since is
kept and reported. Objects the destination had on its own are never touched.
Passwords come from MIGRATE_FROM_PASSWORD / MIGRATE_TO_PASSWORD or --*-password-file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDAV(cmd.Context(), e, f, "calendars") },
	}
	f.register(c, "calendars")
	return c
}

// newContactsCmd is `migrate contacts`: copy address books over CardDAV or Zimbra REST.
func newContactsCmd(e *env) *cobra.Command {
	f := &davFlags{}
	c := &cobra.Command{
		Use:   "contacts",
		Short: "Copy address books over CardDAV, idempotently",
		Long: `Copy every address book from --from to --to over CardDAV, vCards byte for byte.

Flags and behaviour are those of 'migrate calendars' except the REST import,
which contacts never use: Carbonio's REST vcf/csv import duplicates them on
every re-run. --from-folders defaults to Contacts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDAV(cmd.Context(), e, f, "contacts") },
	}
	f.register(c, "contacts")
	return c
}

// davCopier is what a run needs of dav.Copier.
type davCopier interface {
	Copy(ctx context.Context, dst dav.Destination, src dav.Source) (*dav.Stats, error)
	Verify(ctx context.Context, dst dav.Destination, src dav.Source) (*dav.Verification, error)
}

// davReport is the JSON report of one run.
type davReport struct {
	Version      int               `json:"version"`
	Kind         string            `json:"kind"`
	Source       string            `json:"source"`
	Destination  string            `json:"destination"`
	DryRun       bool              `json:"dry_run"`
	Delete       bool              `json:"delete,omitempty"`
	Stats        *dav.Stats        `json:"stats"`
	Verification *dav.Verification `json:"verification,omitempty"`
	Error        string            `json:"error,omitempty"`
}

func runDAV(ctx context.Context, e *env, f *davFlags, kind string) error {
	if err := f.check(); err != nil {
		return err
	}
	tlsCfg, err := tlsConfig(f.caFile)
	if err != nil {
		return err
	}
	// One pacer for both sides: each host gets its own pace.
	hc := migrate.NewHTTPClient(migrate.HTTPOptions{TLSConfig: tlsCfg, IdleTimeout: f.idleTimeout, Rate: f.httpRate})
	limits := dav.Limits{MaxMultistatus: f.maxMultistatusMiB << 20, MaxObject: f.maxObjectMiB << 20, MaxExport: f.maxExportMiB << 20}
	var fromPw, toPw secret.Secret
	if f.fromUser != "" {
		if fromPw, err = loadPassword("MIGRATE_FROM_PASSWORD", f.fromPwFile, "from-password-file"); err != nil {
			return err
		}
	}
	if f.toUser != "" {
		if toPw, err = loadPassword("MIGRATE_TO_PASSWORD", f.toPwFile, "to-password-file"); err != nil {
			return err
		}
	}
	var store state.Store
	if f.statePath != "" {
		if store, err = openState(ctx, f.statePath); err != nil {
			return err
		}
		defer store.Close()
	}
	account := f.fromREST
	if account == "" {
		account = f.fromUser + "@" + hostOf(f.from)
	}
	onEvent := func(ev dav.Event) {
		if d, ok := ev.(dav.CollectionDone); ok && e.g.progress != "none" {
			s, del := d.Stats, ""
			if f.delete {
				del = s.DeletionsText()
			}
			termsafe.Fprintf(e.stderr, "%s: %s -> %s: %d objects, %d created, %d updated, %d unchanged, %d skipped, %d failed%s\n",
				kind, s.Source, s.Destination, s.Objects, s.Created, s.Updated, s.Unchanged, s.Skipped, s.Failed, del)
		}
	}
	log, err := operatorLogger(e.stderr, e.g)
	if err != nil {
		return err
	}
	var (
		src  dav.Source
		dst  dav.Destination
		copr davCopier
	)
	switch kind {
	case "calendars":
		c := &dav.Copier{Rules: caldav.Rules{}, Concurrency: f.concurrency, DryRun: f.dryRun, Delete: f.delete, OnEvent: onEvent, Logger: log}
		if store != nil {
			c.Checkpoint = store.Calendars(account)
		}
		copr = c
		if f.fromREST != "" {
			src, err = caldav.NewZimbraREST(dav.Endpoint{URL: f.from, User: f.fromUser, Password: fromPw, Account: f.fromREST, HTTPClient: hc, TrustedOrigins: f.trustedOrigins, AllowPlaintext: f.allowPlaintext, Limits: limits}, f.folders...)
		} else {
			src, err = caldav.NewDAV(dav.Endpoint{URL: f.from, User: f.fromUser, Password: fromPw, HTTPClient: hc, TrustedOrigins: f.trustedOrigins, AllowPlaintext: f.allowPlaintext, Limits: limits})
		}
		if err != nil {
			return usageError{err}
		}
		var d dav.Destination
		switch {
		case f.toREST:
			d, err = caldav.NewZimbraRESTDestination(dav.Endpoint{URL: f.to, User: f.toUser, Password: toPw, Token: tokenSource(f, toPw, hc), Account: f.toAccount, HTTPClient: hc, TrustedOrigins: f.trustedOrigins, AllowPlaintext: f.allowPlaintext, Limits: limits}, f.toFolder)
		default:
			d, err = caldav.NewDAV(dav.Endpoint{URL: f.to, User: f.toUser, Password: toPw, Token: tokenSource(f, toPw, hc), Account: f.toAccount, HTTPClient: hc, TrustedOrigins: f.trustedOrigins, AllowPlaintext: f.allowPlaintext, Limits: limits})
		}
		if err != nil {
			return usageError{err}
		}
		dst = d
	default:
		c := &dav.Copier{Rules: carddav.Rules{}, Concurrency: f.concurrency, DryRun: f.dryRun, Delete: f.delete, OnEvent: onEvent, Logger: log}
		if store != nil {
			c.Checkpoint = store.Contacts(account)
		}
		copr = c
		if f.fromREST != "" {
			src, err = carddav.NewZimbraREST(dav.Endpoint{URL: f.from, User: f.fromUser, Password: fromPw, Account: f.fromREST, HTTPClient: hc, TrustedOrigins: f.trustedOrigins, AllowPlaintext: f.allowPlaintext, Limits: limits}, f.folders...)
		} else {
			src, err = carddav.NewDAV(dav.Endpoint{URL: f.from, User: f.fromUser, Password: fromPw, HTTPClient: hc, TrustedOrigins: f.trustedOrigins, AllowPlaintext: f.allowPlaintext, Limits: limits})
		}
		if err != nil {
			return usageError{err}
		}
		var ts dav.TokenSource
		if t := tokenSource(f, toPw, hc); t != nil {
			ts = t
		}
		d, err := carddav.NewDAV(dav.Endpoint{URL: f.to, User: f.toUser, Password: toPw, Token: ts, Account: f.toAccount, HTTPClient: hc, TrustedOrigins: f.trustedOrigins, AllowPlaintext: f.allowPlaintext, Limits: limits})
		if err != nil {
			return usageError{err}
		}
		dst = d
	}
	rep := &davReport{Version: 1, Kind: kind, Source: redact(f.from), Destination: redact(f.to), DryRun: f.dryRun, Delete: f.delete}
	stats, err := copr.Copy(ctx, dst, src)
	rep.Stats = stats
	if err == nil && f.verify && !f.dryRun {
		rep.Verification, err = copr.Verify(ctx, dst, src)
	}
	if err != nil {
		rep.Error = err.Error()
	}
	if stats != nil {
		stats.WriteText(e.stdout, kind, f.delete)
		if rep.Verification != nil {
			rep.Verification.WriteText(e.stdout)
		}
	}
	if werr := writeDAVReport(f.reportPath, rep); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return err // exitCode and describe read the chain
	}
	if !stats.OK() || (rep.Verification != nil && !rep.Verification.OK()) {
		return errPartial
	}
	return nil
}

// tokenSource returns the Carbonio admin client that hands out DelegateAuth
// tokens when --to-carbonio-admin is set, else nil.
func tokenSource(f *davFlags, adminPw secret.Secret, hc *http.Client) dav.TokenSource {
	if f.toAdmin == "" {
		return nil
	}
	c := &carbonio.Client{URL: f.toAdmin, Admin: f.toUser, Password: adminPw, HTTPClient: hc}
	if carbonio.IsAdminURL(f.to) {
		// REST on an admin port takes the admin's own token, in
		// ZM_ADMIN_AUTH_TOKEN (see carbonio.AuthCookie).
		return c.AdminTokens()
	}
	return c
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Host
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

func writeDAVReport(p string, rep *davReport) error {
	if p == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(p, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
