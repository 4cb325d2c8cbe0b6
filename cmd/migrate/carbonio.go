package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/migrate"
	"github.com/zxmigrate/zxmigrate/termsafe"
)

// carbonioFlags are the flags shared by every `migrate carbonio` command.
type carbonioFlags struct {
	url, user, pwFile, caFile string
	ssh, knownHosts, runAs    string
	sshKeys                   []string
	localCLI, unverifiedSOAP  bool
	program                   string
	json, verbose             bool
	poll                      time.Duration
}

// newCarbonioCmd is `migrate carbonio`: the Carbonio admin API and module commands.
func newCarbonioCmd(e *env) *cobra.Command {
	f := &carbonioFlags{}
	cmd := &cobra.Command{
		Use:   "carbonio",
		Short: "Drive the Carbonio admin API: directory, SmartScan, external restore, dedup, operations, MTA",
		Long: `Drive the Carbonio admin API for the provisioning phase.

Directory calls go over the admin SOAP API (--url, --user; the password comes
from MIGRATE_CARBONIO_PASSWORD or --password-file). Listing, watching and
stopping operations (operations, wait, stop) go over the same SOAP API: the
admin console's requests are public.

smartscan, restore, dedup and export run "carbonio --json ..." on the Mailstore
& Provisioning node, with --ssh USER@HOST or --local-cli: no public source shows
their SOAP field names. --unverified-soap sends them over SOAP anyway, with
guessed names. Without --url, operations are listed and watched through the
command line too. "mta stop|start" needs --ssh or --local-cli.

Exit status: 0 when an operation's outcome is succeeded; 3 when it is failed or
unknown; 1 when the operation vanished without an outcome.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.url, "url", "", "admin API URL, https://HOST:7071 (or the proxy's :6071)")
	fl.StringVar(&f.user, "user", "", "admin account (password from MIGRATE_CARBONIO_PASSWORD or --password-file)")
	fl.StringVar(&f.pwFile, "password-file", "", "file holding the admin password")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of CA certificates to trust besides the system roots")
	fl.StringVar(&f.ssh, "ssh", "", "run module commands over SSH as USER@HOST[:PORT]")
	fl.StringVar(&f.knownHosts, "ssh-known-hosts", "", "known_hosts file for --ssh (default ~/.ssh/known_hosts; unknown hosts are refused)")
	fl.StringSliceVar(&f.sshKeys, "ssh-key", nil, "private key file for --ssh (default: the SSH agent, then ~/.ssh/id_*)")
	fl.StringVar(&f.runAs, "run-as", "", "run the commands through sudo as this user, e.g. zextras")
	fl.BoolVar(&f.localCLI, "local-cli", false, "run module commands with the local carbonio command")
	fl.StringVar(&f.program, "carbonio-path", "carbonio", "the carbonio command (zxsuite for a Zextras Suite source)")
	fl.BoolVar(&f.unverifiedSOAP, "unverified-soap", false, "send smartscan, restore, dedup and export over SOAP with guessed field names (no public source shows them)")
	fl.BoolVar(&f.json, "json", false, "print JSON")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log requests to stderr")
	fl.DurationVar(&f.poll, "poll", 2*time.Second, "first wait between operation polls")

	cmd.AddCommand(
		carbonioAccountsCmd(e, f),
		carbonioFoldersCmd(e, f),
		carbonioSmartScanCmd(e, f),
		carbonioRestoreCmd(e, f),
		carbonioDedupCmd(e, f),
		carbonioOperationsCmd(e, f),
		carbonioStopCmd(e, f),
		carbonioWaitCmd(e, f),
		carbonioVerifyCmd(e, f),
		carbonioMTACmd(e, f),
		carbonioExportCmd(e, f),
	)
	return cmd
}

// session is a configured client and what closes it.
type session struct {
	c     *carbonio.Client
	close func()
}

// client builds the client. soap says whether the command needs the admin
// SOAP API (then --url, --user and a password are required).
func (f *carbonioFlags) client(e *env, soap bool) (*session, error) {
	s := &session{c: &carbonio.Client{URL: f.url, Admin: f.user, PollInterval: f.poll, UnverifiedSOAP: f.unverifiedSOAP}, close: func() {}}
	if f.verbose {
		s.c.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if soap {
		if f.url == "" || f.user == "" {
			return nil, usageError{errors.New("carbonio: this command needs --url and --user")}
		}
		if !strings.HasPrefix(f.url, "https://") {
			return nil, usageError{fmt.Errorf("carbonio: --url %q must be https://", f.url)}
		}
		pw, err := loadPassword("MIGRATE_CARBONIO_PASSWORD", f.pwFile, "password-file")
		if err != nil {
			return nil, err
		}
		s.c.Password = pw
		tc, err := tlsConfig(f.caFile)
		if err != nil {
			return nil, err
		}
		s.c.HTTPClient = migrate.NewHTTPClient(migrate.HTTPOptions{TLSConfig: tc})
	}
	cl := carbonio.CommandLine{Local: f.localCLI, RunAs: f.runAs, Program: f.program}
	if f.ssh != "" {
		r, err := carbonio.ParseSSH(f.ssh)
		if err != nil {
			return nil, usageError{fmt.Errorf("--ssh: %w", err)}
		}
		r.KnownHostsFile, r.KeyFiles = f.knownHosts, f.sshKeys
		cl.SSH = r
		s.close = func() { r.Close() }
	}
	tr, err := cl.Transport()
	if err != nil {
		return nil, usageError{fmt.Errorf("%w (give --ssh or --local-cli)", err)}
	}
	if tr != nil {
		s.c.Transport = tr
	}
	return s, nil
}

// cliOnly reports whether a command line is configured.
func (f *carbonioFlags) cliOnly() bool { return f.ssh != "" || f.localCLI }

// needSOAP says whether a module command needs the SOAP API configured:
// when there is no command line, or when --url is given (listing and
// watching operations then go over SOAP).
func (f *carbonioFlags) needSOAP() bool { return !f.cliOnly() || f.url != "" }

func (f *carbonioFlags) printJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// opView is an operation as printed by --json: the computed outcome
// (succeeded, failed, running, unknown) next to the raw state and type.
type opView struct {
	ID       string `json:"id"`
	Outcome  string `json:"outcome"`
	State    string `json:"state"`
	Type     string `json:"type"`
	Module   string `json:"module,omitempty"`
	Name     string `json:"name,omitempty"`
	Host     string `json:"host,omitempty"`
	ServerID string `json:"server_id,omitempty"`
	Error    string `json:"error,omitempty"`
}

func viewOf(o carbonio.Operation) opView {
	return opView{ID: o.ID, Outcome: string(o.Outcome), State: o.State, Type: o.Type, Module: o.Module, Name: o.Name,
		Host: o.Host, ServerID: o.ServerID}
}

func progressText(o carbonio.Operation) string {
	s := fmt.Sprintf("%s %s: %s", o.Name, o.ID, o.Outcome)
	if o.State != "" || o.Type != "" {
		s += fmt.Sprintf(" (state %s, type %s)", orDash(o.State), orDash(o.Type))
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runOperation starts an operation, waits for it unless noWait, and prints
// the outcome. A failed or unknown outcome gives errPartial (exit 3).
func (f *carbonioFlags) runOperation(e *env, ctx context.Context, s *session, noWait bool, start func() (carbonio.Operation, error)) error {
	op, err := start()
	if err != nil {
		return err
	}
	termsafe.Fprintf(e.stderr, "%s queued\n", progressText(op))
	if noWait {
		return f.printOutcome(e, op, nil)
	}
	return f.wait(e, ctx, s, op)
}

// wait waits for op and prints its outcome.
func (f *carbonioFlags) wait(e *env, ctx context.Context, s *session, op carbonio.Operation) error {
	op, err := s.c.Wait(ctx, op, func(o carbonio.Operation) { termsafe.Fprintf(e.stderr, "%s\n", progressText(o)) })
	var oe *carbonio.OperationError
	if err != nil && !errors.As(err, &oe) {
		return err
	}
	return f.printOutcome(e, op, err)
}

// printOutcome prints op; opErr (an *OperationError) gives errPartial.
func (f *carbonioFlags) printOutcome(e *env, op carbonio.Operation, opErr error) error {
	if f.json {
		v := viewOf(op)
		if opErr != nil {
			v.Error = opErr.Error()
		}
		if perr := f.printJSON(e, v); perr != nil {
			return perr
		}
	} else {
		termsafe.Fprintf(e.stdout, "%s\n", progressText(op))
	}
	if opErr != nil {
		termsafe.Fprintf(e.stderr, "migrate: %v\n", opErr)
		return errPartial
	}
	return nil
}

func carbonioAccountsCmd(e *env, f *carbonioFlags) *cobra.Command {
	var domain string
	cmd := &cobra.Command{
		Use:   "accounts",
		Short: "List accounts (of one domain with --domain)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := f.client(e, true)
			if err != nil {
				return err
			}
			defer s.close()
			accts, err := s.c.Accounts(c.Context(), domain, "zimbraMailHost", "zimbraIsSystemAccount")
			if err != nil {
				return err
			}
			if f.json {
				type view struct {
					Name     string `json:"name"`
					ID       string `json:"id"`
					MailHost string `json:"mail_host,omitempty"`
					System   bool   `json:"system,omitempty"`
				}
				out := make([]view, 0, len(accts))
				for _, a := range accts {
					out = append(out, view{a.Name, a.ID, a.Attr("zimbraMailHost"), a.IsSystem()})
				}
				return f.printJSON(e, out)
			}
			for _, a := range accts {
				termsafe.Fprintf(e.stdout, "%s\n", a.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&domain, "domain", "", "only this domain")
	return cmd
}

func carbonioFoldersCmd(e *env, f *carbonioFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "folders ACCOUNT",
		Short: "Show an account's folder tree with views, kinds (folder, link, search) and counts",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := f.client(e, true)
			if err != nil {
				return err
			}
			defer s.close()
			fs, err := s.c.Folders(c.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json {
				return f.printJSON(e, fs)
			}
			for _, x := range fs {
				var shared string
				for i, g := range x.Grants {
					if i == 0 {
						shared = "  shared:"
					}
					shared += fmt.Sprintf(" %s:%s=%s", g.Type, g.Grantee, g.Perm)
				}
				termsafe.Fprintf(e.stdout, "%-40s %-7s %-12s %8d%s\n", x.Path, x.Kind, x.View, x.Count, shared)
			}
			return nil
		},
	}
}

func carbonioSmartScanCmd(e *env, f *carbonioFlags) *cobra.Command {
	var deep, noWait, remoteMeta, fakeBlob bool
	cmd := &cobra.Command{
		Use:   "smartscan",
		Short: "Run backup doSmartScan start and wait for it",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := f.client(e, f.needSOAP())
			if err != nil {
				return err
			}
			defer s.close()
			return f.runOperation(e, c.Context(), s, noWait, func() (carbonio.Operation, error) {
				return s.c.SmartScan(c.Context(), carbonio.SmartScanOptions{Deep: deep, RemoteMetadataUpload: remoteMeta, CreateFakeBlob: fakeBlob})
			})
		},
	}
	cmd.Flags().BoolVar(&deep, "deep", false, "deep scan")
	cmd.Flags().BoolVar(&remoteMeta, "remote-metadata-upload", false, "pass remote_metadata_upload true (documented doSmartScan option)")
	cmd.Flags().BoolVar(&fakeBlob, "create-fake-blob", false, "pass create_fake_blob true (documented doSmartScan option)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once queued")
	return cmd
}

func carbonioRestoreCmd(e *env, f *carbonioFlags) *cobra.Command {
	var (
		o                                     carbonio.RestoreOptions
		skipSystem, filterDeleted, datasource bool
		noWait, verify                        bool
	)
	cmd := &cobra.Command{
		Use:   "restore PATH",
		Short: "Run backup doExternalRestore PATH (e.g. --provisioning-only) and wait for it",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			fl := c.Flags()
			if fl.Changed("skip-system-accounts") {
				o.SkipSystemAccounts = &skipSystem
			}
			if fl.Changed("filter-deleted") {
				o.FilterDeleted = &filterDeleted
			}
			if fl.Changed("restore-datasource") {
				o.RestoreDatasource = &datasource
			}
			if o.ConcurrentAccounts < 0 || o.MaxFileSize < 0 {
				return usageError{errors.New("carbonio: --concurrent-accounts and --max-file-size must not be negative")}
			}
			if verify && f.url == "" {
				return usageError{errors.New("carbonio: --verify needs --url")}
			}
			s, err := f.client(e, f.needSOAP() || verify)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := c.Context()
			if err := f.runOperation(e, ctx, s, noWait, func() (carbonio.Operation, error) {
				return s.c.ExternalRestore(ctx, args[0], o)
			}); err != nil || !verify || noWait {
				return err
			}
			accts, err := s.c.AvailableAccounts(ctx, args[0], o.Domains...)
			if err != nil {
				return err
			}
			return f.report(e, ctx, s, carbonio.Directory{Domains: o.Domains, Accounts: accts})
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&o.Domains, "domains", nil, "restore only these domains")
	fl.StringSliceVar(&o.Accounts, "accounts", nil, "restore only these accounts")
	fl.StringVar(&o.InputFile, "input-file", "", "file on the server listing accounts, one per line")
	fl.BoolVar(&o.ProvisioningOnly, "provisioning-only", false, "create domains, accounts, aliases and lists, no items")
	fl.IntVar(&o.ConcurrentAccounts, "concurrent-accounts", 0, "accounts restored in parallel; 0 leaves it to the server")
	fl.BoolVar(&o.SkipAliases, "skip-aliases", false, "do not restore aliases")
	fl.BoolVar(&o.SkipDistributionLists, "skip-distribution-lists", false, "do not restore distribution lists")
	fl.BoolVar(&o.SkipCOSes, "skip-coses", false, "do not restore classes of service")
	fl.BoolVar(&skipSystem, "skip-system-accounts", true, "skip system accounts (server default true)")
	fl.BoolVar(&o.SkipDomainProvisioning, "skip-domain-provisioning", false, "restore only account attributes in phase 1")
	fl.BoolVar(&o.SkipAccountProvisioning, "skip-account-provisioning", false, "do not provision accounts")
	fl.BoolVar(&filterDeleted, "filter-deleted", true, "skip deleted items (server default true)")
	fl.StringSliceVar(&o.Notifications, "notifications", nil, "addresses notified at the end")
	fl.IntVar(&o.MaxFileSize, "max-file-size", 0, "largest file restored; 0 means no limit")
	fl.BoolVar(&datasource, "restore-datasource", true, "restore data sources (server default true)")
	fl.BoolVar(&o.ForceAsExternalRestore, "force-as-external-restore", false, "pass force_as_external_restore true (server default false)")
	fl.StringVar(&o.BlobsArchive, "blobs-archive", "", "pass blobs_archive VALUE (documented doExternalRestore option)")
	fl.BoolVar(&noWait, "no-wait", false, "return once queued")
	fl.BoolVar(&verify, "verify", false, "afterwards, check that every account of the backup exists (needs --url)")
	return cmd
}

func carbonioDedupCmd(e *env, f *carbonioFlags) *cobra.Command {
	var dryRun, noWait bool
	cmd := &cobra.Command{
		Use:   "dedup [VOLUME]",
		Short: "Run powerstore doDeduplicate on VOLUME (default: the current primary volume) and wait",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			vol := ""
			if len(args) == 1 {
				vol = args[0]
			}
			s, err := f.client(e, f.needSOAP() || vol == "")
			if err != nil {
				return err
			}
			defer s.close()
			return f.runOperation(e, c.Context(), s, noWait, func() (carbonio.Operation, error) {
				return s.c.Deduplicate(c.Context(), vol, dryRun)
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report only")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once queued")
	return cmd
}

func carbonioOperationsCmd(e *env, f *carbonioFlags) *cobra.Command {
	var withLog bool
	cmd := &cobra.Command{
		Use:   "operations",
		Short: "List running and queued operations (with --log, the finished ones too)",
		Long: `List operations (ZxCore getAllOperations; with --log also ZxCore
getOperationLog). With --json each carries "id", "outcome" (succeeded, failed,
running or unknown), and the raw "state" and "type" the server sent.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := f.client(e, f.needSOAP())
			if err != nil {
				return err
			}
			defer s.close()
			ops, err := s.c.Operations(c.Context())
			if err != nil {
				return err
			}
			if withLog {
				done, err := s.c.OperationLog(c.Context())
				if err != nil {
					return err
				}
				ops = append(ops, done...)
			}
			if f.json {
				out := make([]opView, 0, len(ops))
				for _, o := range ops {
					out = append(out, viewOf(o))
				}
				return f.printJSON(e, out)
			}
			for _, o := range ops {
				termsafe.Fprintf(e.stdout, "%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Outcome, orDash(o.State), orDash(o.Type), orDash(o.Module), orDash(o.Name))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&withLog, "log", false, "also list finished operations")
	return cmd
}

func carbonioStopCmd(e *env, f *carbonioFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stop OPERATION_ID",
		Short: "Stop a running operation (ZxCore doStopOperation; without --url, carbonio backup|powerstore doStopOperation)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := f.client(e, f.needSOAP())
			if err != nil {
				return err
			}
			defer s.close()
			return s.c.StopOperation(c.Context(), args[0])
		},
	}
}

func carbonioWaitCmd(e *env, f *carbonioFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "wait OPERATION_ID",
		Short: "Wait for an operation; exit 0 only when its outcome is succeeded",
		Long: `Wait for an operation to leave the list of running operations and read its
outcome from the operation log. Exit status 0 when the outcome is succeeded, 3
when it is failed or unknown, 1 when the operation is in neither list.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := f.client(e, f.needSOAP())
			if err != nil {
				return err
			}
			defer s.close()
			return f.wait(e, c.Context(), s, carbonio.Operation{ID: args[0], Outcome: carbonio.OutcomeRunning})
		},
	}
}

func carbonioVerifyCmd(e *env, f *carbonioFlags) *cobra.Command {
	var fromURL, fromUser, fromPwFile, fromCA, fromBackup string
	var domains []string
	cmd := &cobra.Command{
		Use:   "verify-provisioning",
		Short: "Check that the source's accounts, aliases and lists exist on the destination",
		Long: `Check provisioning: the expected directory comes from the source admin API
(--from-url, --from-user, password from MIGRATE_FROM_PASSWORD or
--from-password-file) or from a backup's available accounts (--from-backup
PATH, accounts only; a command on the server: --ssh or --local-cli, or
--unverified-soap). Exit status 3 when something is missing.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if (fromURL == "") == (fromBackup == "") {
				return usageError{errors.New("carbonio: verify-provisioning needs --from-url or --from-backup")}
			}
			s, err := f.client(e, true)
			if err != nil {
				return err
			}
			defer s.close()
			ctx := c.Context()
			var want *carbonio.Directory
			if fromBackup != "" {
				accts, err := s.c.AvailableAccounts(ctx, fromBackup, domains...)
				if err != nil {
					return err
				}
				want = &carbonio.Directory{Domains: domains, Accounts: accts}
			} else {
				if fromUser == "" {
					return usageError{errors.New("carbonio: --from-url needs --from-user")}
				}
				pw, err := loadPassword("MIGRATE_FROM_PASSWORD", fromPwFile, "from-password-file")
				if err != nil {
					return err
				}
				tc, err := tlsConfig(fromCA)
				if err != nil {
					return err
				}
				src := &carbonio.Client{URL: fromURL, Admin: fromUser, Password: pw, HTTPClient: migrate.NewHTTPClient(migrate.HTTPOptions{TLSConfig: tc}), Logger: s.c.Logger}
				if want, err = src.Directory(ctx, domains...); err != nil {
					return fmt.Errorf("source: %w", err)
				}
			}
			return f.report(e, ctx, s, *want)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&fromURL, "from-url", "", "source admin API URL, https://HOST:7071")
	fl.StringVar(&fromUser, "from-user", "", "source admin account")
	fl.StringVar(&fromPwFile, "from-password-file", "", "file holding the source admin password")
	fl.StringVar(&fromCA, "from-ca-file", "", "PEM CA file for the source")
	fl.StringVar(&fromBackup, "from-backup", "", "backup path on the destination to take the expected accounts from")
	fl.StringSliceVar(&domains, "domains", nil, "only these domains (default: all of the source)")
	return cmd
}

// report runs the provisioning check and prints it; missing entries give
// errPartial.
func (f *carbonioFlags) report(e *env, ctx context.Context, s *session, want carbonio.Directory) error {
	rep, err := s.c.CheckProvisioning(ctx, want)
	if err != nil {
		return err
	}
	if f.json {
		if err := f.printJSON(e, struct {
			OK bool `json:"ok"`
			*carbonio.ProvisioningReport
		}{rep.OK(), rep}); err != nil {
			return err
		}
	} else {
		fmt.Fprint(e.stdout, rep.String())
	}
	if !rep.OK() {
		return errPartial
	}
	if !f.json {
		fmt.Fprintln(e.stdout, "provisioning verified: nothing missing")
	}
	return nil
}

func carbonioMTACmd(e *env, f *carbonioFlags) *cobra.Command {
	return &cobra.Command{
		Use:       "mta stop|start",
		Short:     "Stop or start the MTA (needs --ssh or --local-cli)",
		ValidArgs: []string{"stop", "start"},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "stop" && args[0] != "start") {
				return usageError{fmt.Errorf("carbonio: mta wants stop or start, got %q", args)}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if !f.cliOnly() {
				return usageError{errors.New("carbonio: mta needs --ssh USER@HOST or --local-cli")}
			}
			s, err := f.client(e, false)
			if err != nil {
				return err
			}
			defer s.close()
			if err := s.c.MTA(c.Context(), args[0] == "start"); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "mta %s: done\n", args[0])
			return nil
		},
	}
}

func carbonioExportCmd(e *env, f *carbonioFlags) *cobra.Command {
	var domains []string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "export PATH",
		Short: "On a Zextras Suite source, run backup doExport PATH (use --ssh to the source and --carbonio-path zxsuite)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := f.client(e, f.needSOAP())
			if err != nil {
				return err
			}
			defer s.close()
			return f.runOperation(e, c.Context(), s, noWait, func() (carbonio.Operation, error) {
				return s.c.Export(c.Context(), args[0], carbonio.ExportOptions{Domains: domains})
			})
		},
	}
	cmd.Flags().StringSliceVar(&domains, "domains", nil, "only these domains")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once queued")
	return cmd
}
