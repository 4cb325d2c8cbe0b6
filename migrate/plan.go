package migrate

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/secret"
	"github.com/zxmigrate/zxmigrate/state"
)

// Phase names a step of a migration. Global phases run once per run; account
// phases run once per account, in the account pool.
type Phase string

// The phases, in the order the documented procedure runs them.
const (
	PhaseExport            Phase = "export"             // global: zxsuite backup doExport on the source
	PhaseTransfer          Phase = "transfer"           // global: bring the export to the destination (or check it is there)
	PhaseMTAStop           Phase = "mta_stop"           // global: stop the destination MTA
	PhaseSmartScan         Phase = "smartscan"          // global: backup SmartScan on the destination
	PhaseProvisioning      Phase = "provisioning"       // global: external restore, provisioning only
	PhaseProvisioningCheck Phase = "provisioning_check" // global: every selected account exists on the destination
	PhaseMail              Phase = "mail"               // account: IMAP copy
	PhaseCalendars         Phase = "calendars"          // account: CalDAV copy
	PhaseContacts          Phase = "contacts"           // account: CardDAV copy
	PhaseVerify            Phase = "verify"             // account: source-versus-destination proof
	PhaseShares            Phase = "shares"             // global, after the account pool: grants, mountpoints, saved searches
	PhaseFiles             Phase = "files"              // global, after the account pool: Briefcase documents into Carbonio Files
	PhaseDedup             Phase = "dedup"              // global: volume deduplication
	PhaseMTAStart          Phase = "mta_start"          // global: start the destination MTA
)

// AllPhases lists every phase in run order.
var AllPhases = []Phase{
	PhaseExport, PhaseTransfer, PhaseMTAStop, PhaseSmartScan, PhaseProvisioning, PhaseProvisioningCheck,
	PhaseMail, PhaseCalendars, PhaseContacts, PhaseVerify, PhaseShares, PhaseFiles, PhaseDedup, PhaseMTAStart,
}

// DefaultPhases is what a plan runs when it lists no phases: the procedure
// without the optional export and transfer, MTA stop/start and
// deduplication.
var DefaultPhases = []Phase{
	PhaseSmartScan, PhaseProvisioning, PhaseProvisioningCheck,
	PhaseMail, PhaseCalendars, PhaseContacts, PhaseVerify,
}

// IsAccountPhase reports whether p runs per account (in the pool).
func (p Phase) IsAccountPhase() bool {
	switch p {
	case PhaseMail, PhaseCalendars, PhaseContacts, PhaseVerify:
		return true
	}
	return false
}

// closing reports whether p is a global phase that runs after the account
// pool: shares (which needs every account's folders on the destination),
// dedup and mta_start.
func (p Phase) closing() bool {
	return p == PhaseShares || p == PhaseFiles || p == PhaseDedup || p == PhaseMTAStart
}

// Defaults for zero-valued plan fields.
const (
	DefaultConcurrentAccounts   = 4
	DefaultFoldersPerAccount    = 4
	DefaultConnectionsPerServer = 32
	// ConnectionsPerAccount is what one account's mail copy needs of each
	// server to copy a folder without waiting: a connection to read or
	// select, and on the destination a second one to append.
	ConnectionsPerAccount = 3
	// MaxDefaultConnectionsPerServer caps the budget derived from the
	// accounts at once: half of Zimbra's and Carbonio's
	// zimbraImapMaxConnections default of 200.
	MaxDefaultConnectionsPerServer = 100
	DefaultStatePath               = "zxmigrate.db"
	DefaultReportDir               = "zxmigrate-report"
)

// Plan is a whole-domain migration: where from, where to, which accounts,
// which phases, and how hard to push. Load it with LoadPlan or ParsePlan;
// programs may also fill it in directly and call Validate.
//
// A Plan is read-only once a Runner uses it.
type Plan struct {
	// Name is a free label shown in reports.
	Name string `yaml:"name"`
	// Source is the Zextras Suite (Zimbra) side.
	Source Endpoint `yaml:"source"`
	// Destination is the Carbonio side.
	Destination Endpoint `yaml:"destination"`
	// Domains lists the source domains to migrate.
	Domains []string `yaml:"domains"`
	// Accounts selects the accounts of those domains.
	Accounts Selection `yaml:"accounts"`
	// Map renames addresses from source to destination.
	Map Mapping `yaml:"map"`
	// Phases lists the phases to run; empty means DefaultPhases. Order in
	// the file does not matter: phases always run in AllPhases order.
	Phases []Phase `yaml:"phases"`
	// Export configures the export phase on the source.
	Export ExportPlan `yaml:"export"`
	// Transfer configures the transfer phase: how the export reaches
	// provisioning.backup_path.
	Transfer TransferPlan `yaml:"transfer"`
	// Provisioning configures the external restore and its neighbours.
	Provisioning Provisioning `yaml:"provisioning"`
	// Mail configures the IMAP copy.
	Mail MailOptions `yaml:"mail"`
	// Calendars configures the CalDAV copy.
	Calendars DAVOptions `yaml:"calendars"`
	// Contacts configures the CardDAV copy.
	Contacts DAVOptions `yaml:"contacts"`
	// Concurrency bounds the work in flight.
	Concurrency Concurrency `yaml:"concurrency"`
	// MTA configures what happens to the destination MTA when a run stops
	// between mta_stop and mta_start.
	MTA MTAOptions `yaml:"mta"`
	// Limits are the servers' request rates the run keeps under.
	Limits Limits `yaml:"limits"`
	// State is the path of the SQLite state file ("" means
	// DefaultStatePath) or the URL of a PostgreSQL database
	// (postgres://USER@HOST:PORT/DB?sslmode=...) that any number of runners
	// share; its password never goes in the URL (see state.OpenPostgres).
	State string `yaml:"state"`
	// Lease is how long a runner's claim on an account or a global phase
	// of a shared state lives without a heartbeat (0: DefaultLease). A
	// runner that dies loses its accounts to the others after it.
	Lease time.Duration `yaml:"lease"`
	// Report is the directory the JSON and HTML reports go to; "" means
	// DefaultReportDir.
	Report string `yaml:"report"`
	// Listen is the host:port where `migrate run` serves Prometheus metrics
	// and the live dashboard ("" means none; --listen overrides it). An
	// address that is not loopback needs a token.
	Listen string `yaml:"listen"`

	hash        string
	file        string // the file LoadPlan read, for the commands a report suggests
	cliInjected bool   // a Runner supplies the destination command line
	davInjected bool   // a Runner supplies per-account DAV credentials

	srcCLIInjected bool // a Runner supplies the source command line
}

// Endpoint is one side of the migration.
type Endpoint struct {
	// Kind is "zimbra" (Zextras Suite or Carbonio: virtual folders are
	// found through the admin API and skipped) or "imap" (a generic server).
	// "" means "zimbra".
	Kind string `yaml:"kind"`
	// Admin is the admin SOAP endpoint.
	Admin AdminEndpoint `yaml:"admin"`
	// IMAP is the IMAP endpoint used with admin (SASL PLAIN authzid) login.
	IMAP IMAPEndpoint `yaml:"imap"`
	// DAV is the CalDAV/CardDAV endpoint.
	DAV DAVEndpoint `yaml:"dav"`
	// Files is the Briefcase (source) or Carbonio Files (destination)
	// endpoint of the files phase.
	Files FilesEndpoint `yaml:"files"`
	// CLI runs the carbonio (or zxsuite) and zmmtactl commands on the
	// server, locally or over SSH. It is needed for the MTA phases; module
	// commands (SmartScan, restore, dedup) use it when set, else the admin
	// SOAP API.
	CLI CLIEndpoint `yaml:"cli"`
}

// FilesEndpoint says where the files phase reads or writes documents.
type FilesEndpoint struct {
	// URL is an origin (https://host[:port]). On the source it serves the
	// Zimbra REST UserServlet (/home/...) and SOAP; "" means the admin URL
	// (port 7071: the token then travels in ZM_ADMIN_AUTH_TOKEN). On the
	// destination it serves /services/files; "" means the origin of the
	// DAV URL.
	URL string `yaml:"url"`
	// MaxFileMiB skips (and reports) a document with a revision larger
	// than this; 0 means no limit.
	MaxFileMiB int64 `yaml:"max_file_mib"`
}

// CLIEndpoint says how to run commands on a server.
type CLIEndpoint struct {
	// Mode is "" (no command line: admin SOAP only), "local" (this host, as
	// the zextras user) or "ssh".
	Mode string `yaml:"mode"`
	// SSH settings, for mode ssh.
	SSH SSHEndpoint `yaml:"ssh"`
	// Program is the module command, "" meaning "carbonio".
	Program string `yaml:"program"`
}

// SSHEndpoint is an SSH login. Host keys are always checked.
type SSHEndpoint struct {
	Address        string   `yaml:"address"`          // host or host:port
	User           string   `yaml:"user"`             // the SSH login
	KnownHostsFile string   `yaml:"known_hosts_file"` // "" means ~/.ssh/known_hosts
	KeyFiles       []string `yaml:"key_files"`        // empty means the agent, then ~/.ssh/id_*
	RunAs          string   `yaml:"run_as"`           // e.g. zextras (through sudo -n)
}

// Credential names where a password comes from. Inline passwords are refused
// by the parser; Password is filled by Plan.LoadSecrets or by a program.
type Credential struct {
	// PasswordEnv names an environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile names a file whose first line is the password.
	PasswordFile string `yaml:"password_file"`
	// Password is the loaded secret; never read from or written to YAML.
	Password secret.Secret `yaml:"-" json:"-"`
}

// AdminEndpoint is an admin SOAP endpoint, e.g.
// https://mail.example.com:7071/service/admin/soap.
type AdminEndpoint struct {
	URL        string `yaml:"url"`  // the admin SOAP endpoint, https://HOST:7071
	User       string `yaml:"user"` // the admin account
	Credential `yaml:",inline"`
	// CAFile adds PEM certificates to the trusted roots. Verification is
	// always on.
	CAFile string `yaml:"ca_file"`
	// UnverifiedSOAP sends doSmartScan, doExternalRestore and
	// doDeduplicate over the admin SOAP API when no command line is
	// configured. No public source shows their SOAP field names: the
	// client guesses them, and preflight and the report say so.
	UnverifiedSOAP bool `yaml:"unverified_soap"`
}

// IMAPEndpoint is an IMAP server reached with admin login.
type IMAPEndpoint struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// Security is "tls" (implicit TLS, the default), "starttls" or "none".
	Security string `yaml:"security"`
	// Admin is the SASL PLAIN authcid; each account is the authzid.
	Admin      string `yaml:"admin"`
	Credential `yaml:",inline"`
	CAFile     string `yaml:"ca_file"` // PEM certificates added to the trusted roots
	// IdleTimeout ends a connection on which the server sends nothing
	// this long while an answer is due ("2m"; it moves with every byte);
	// 0 means imapcopy.DefaultIdleTimeout, negative disables it.
	IdleTimeout time.Duration `yaml:"idle_timeout,omitempty"`
	// MaxLineBytes and MaxLiteralBytes cap a response line and a literal
	// outside message bodies; 0 means imapcopy.DefaultMaxLine and
	// imapcopy.DefaultMaxLiteral (1 MiB each).
	MaxLineBytes    int64 `yaml:"max_line_bytes,omitempty"`
	MaxLiteralBytes int64 `yaml:"max_literal_bytes,omitempty"` // see MaxLineBytes
}

// DAVEndpoint is a CalDAV/CardDAV server.
type DAVEndpoint struct {
	// URL is the DAV root, e.g. https://mail.example.com/dav/ ; each
	// account's home is URL + account + "/".
	URL string `yaml:"url"`
	// Auth is "token" (a per-user token obtained through the admin API,
	// the default) or "basic" (User and the credential, for servers whose
	// admin may read every home).
	Auth       string `yaml:"auth"`
	User       string `yaml:"user"` // the basic-auth user (Auth basic)
	Credential `yaml:",inline"`
	CAFile     string `yaml:"ca_file"` // PEM certificates added to the trusted roots
	// TrustedOrigins lists origins besides URL's that the server's hrefs
	// and redirects may point to (https://host[:port]); requests to any
	// other origin are refused and credentials never reach it.
	TrustedOrigins []string `yaml:"trusted_origins"`
	// IdleTimeout fails a DAV or admin request on whose connection no
	// byte moved for this long, e.g. "5m"; 0 means 2 minutes. A slow
	// transfer that progresses is never cut.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxMultistatusMiB, MaxObjectMiB and MaxExportMiB bound a DAV
	// listing or multiget answer, one object and one REST folder export;
	// 0 means the defaults (64, 64 and 128 MiB).
	MaxMultistatusMiB int64 `yaml:"max_multistatus_mib"`
	MaxObjectMiB      int64 `yaml:"max_object_mib"` // see MaxMultistatusMiB
	MaxExportMiB      int64 `yaml:"max_export_mib"` // see MaxMultistatusMiB
}

// Selection picks accounts.
type Selection struct {
	// FromDirectory lists all accounts of Domains from the source admin
	// API. It is the default when ListFile is empty.
	FromDirectory *bool `yaml:"from_directory"`
	// ListFile names a file with one source address per line (# comments).
	ListFile string `yaml:"list_file"`
	// Include keeps only addresses matching one of these patterns
	// (path.Match syntax, e.g. "*@example.com"); empty keeps all.
	Include []string `yaml:"include"`
	// Exclude drops addresses matching any of these patterns.
	Exclude []string `yaml:"exclude"`
}

// Mapping renames addresses.
type Mapping struct {
	// Domains maps a source domain to a destination domain.
	Domains map[string]string `yaml:"domains"`
	// Accounts maps one source address to a destination address; it wins
	// over Domains.
	Accounts map[string]string `yaml:"accounts"`
}

// Provisioning configures the restore-based provisioning.
type Provisioning struct {
	// BackupPath is the source export as the destination sees it.
	BackupPath string `yaml:"backup_path"`
	// ProvisioningOnly restores accounts without items; nil means true, as
	// the procedure requires.
	ProvisioningOnly *bool `yaml:"provisioning_only"`
	// ConcurrentAccounts is the restore's own concurrency (0: server default).
	ConcurrentAccounts int `yaml:"concurrent_accounts"`
	// SkipDomainProvisioning restores account attributes only.
	SkipDomainProvisioning bool `yaml:"skip_domain_provisioning"`
	// SkipDistributionLists and SkipCOS skip those objects.
	SkipDistributionLists bool `yaml:"skip_distribution_lists"`
	SkipCOS               bool `yaml:"skip_cos"` // see SkipDistributionLists
	// DedupVolume is the volume the dedup phase deduplicates ("" lets the
	// server pick the current primary).
	DedupVolume string `yaml:"dedup_volume"`
}

// MailOptions configures the IMAP copy.
type MailOptions struct {
	// Include and Exclude select folders by name (path.Match on the
	// '/'-separated name); empty Include keeps all.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"` // see Include
	// Folders renames folders: source name to destination name.
	Folders map[string]string `yaml:"folders"`
	// SkipDeleted leaves messages flagged \Deleted behind (reported).
	SkipDeleted bool `yaml:"skip_deleted"`
	// Delete deletes on the destination the copies of messages the source
	// no longer has since an earlier run (imapcopy.Copier.Delete): for the
	// last pass before a cut-over. Only copies the state records are ever
	// deleted.
	Delete bool `yaml:"delete"`
	// MaxSize skips (and reports) messages larger than this many bytes;
	// 0 means no limit.
	MaxSize int64 `yaml:"max_size"`
	// WritersPerAccount bounds APPENDs in flight per destination mailbox;
	// 0 means the copier's default.
	WritersPerAccount int `yaml:"writers_per_account"`
}

// DAVOptions configures a calendar or contact copy.
type DAVOptions struct {
	// Include and Exclude select collections by name; empty Include keeps all.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"` // see Include
	// Delete deletes on the destination the objects this tool copied that
	// the source no longer has (caldav/carddav Copier.Delete), unless they
	// changed on the destination since.
	Delete bool `yaml:"delete"`
}

// Concurrency holds the separate knobs for separate resources.
type Concurrency struct {
	// ConcurrentAccounts is how many accounts run at once
	// (0: DefaultConcurrentAccounts).
	ConcurrentAccounts int `yaml:"concurrent_accounts"`
	// FoldersPerAccount is how many folders or collections of one account
	// copy at once (0: for mail imapcopy.DefaultConcurrency, measured
	// against Zimbra's one-FETCH-per-account throttle, or
	// imapcopy.WANConcurrency when a server is imapcopy.WANRoundTrip or
	// more away; DefaultFoldersPerAccount for calendars and contacts).
	FoldersPerAccount int `yaml:"folders_per_account"`
	// ConnectionsPerServer caps IMAP connections per server across all
	// accounts (0: see Concurrency.Connections).
	ConnectionsPerServer int `yaml:"connections_per_server"`
}

// Limits are rates the servers allow one client.
type Limits struct {
	// HTTPRate is how many HTTP requests per second the run sends at most
	// to one host, all kinds together (DAV, REST, SOAP): Zimbra's and
	// Carbonio's zimbraHttpDosFilterMaxRequestsPerSec, which refuses the
	// excess. 0 means pace.DefaultRate (30, the Zimbra default); negative
	// turns pacing off (for hosts that exempt the migration's address,
	// zimbraHttpThrottleSafeIPs). Answers 429 and 503 slow a host down
	// whatever the setting.
	HTTPRate float64 `yaml:"http_rate"`
	// SourceIMAP and DestinationIMAP cap the concurrent IMAP connections
	// to each side's server, across every runner that shares the state
	// (0: no global cap; concurrency.connections_per_server still caps
	// each runner).
	SourceIMAP      int `yaml:"source_imap"`
	DestinationIMAP int `yaml:"destination_imap"`
	// HTTPConnections caps the concurrent HTTP requests to each host
	// (DAV, REST, SOAP), across every runner (0: no cap).
	HTTPConnections int `yaml:"http_connections"`
}

// PlanError is a problem with a plan, naming the key (and the line when it
// came from a file).
type PlanError struct {
	File string // the plan file, "" when parsed from memory
	Line int    // 1-based, 0 when unknown
	Key  string // dotted key path, e.g. "source.imap.password"
	Msg  string // what is wrong
}

// Error names the file, line and key when known, then the problem.
func (e *PlanError) Error() string {
	var b strings.Builder
	b.WriteString("migrate: plan")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// LoadPlan reads, parses and validates the plan file at name. Relative paths
// inside it are relative to the file's directory. It does not load secrets:
// call LoadSecrets.
func LoadPlan(name string) (*Plan, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("migrate: read plan: %w", err)
	}
	p, err := parsePlan(b, name)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(name))
	if err != nil {
		return nil, fmt.Errorf("migrate: plan path: %w", err)
	}
	p.resolvePaths(dir)
	p.file = name
	return p, nil
}

// ParsePlan parses and validates a plan from YAML. Unknown keys and inline
// secrets are errors naming the key and line.
func ParsePlan(r io.Reader) (*Plan, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("migrate: read plan: %w", err)
	}
	return parsePlan(b, "")
}

// secretKeys are keys that would put a secret into the plan file.
var secretKeys = []string{"password", "pass", "secret", "token", "auth_token"}

// parsePlan parses the YAML once: planDoc captures the document's node tree
// (for the inline-secret check and the line numbers of validation errors)
// and decodes the plan from it with unknown keys refused.
func parsePlan(b []byte, file string) (*Plan, error) {
	doc := &planDoc{file: file, plan: &Plan{}}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &PlanError{File: file, Msg: "empty plan"}
		}
		var pe *PlanError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, yamlPlanError(err, file)
	}
	p := doc.plan
	sum := sha256.Sum256(b)
	p.hash = hex.EncodeToString(sum[:8])
	if err := p.validate(file, doc.root.n); err != nil {
		return nil, err
	}
	return p, nil
}

// planDoc decodes a plan document in one parse. It implements yaml.v3's
// older UnmarshalYAML(func(any) error) form on purpose: that callback
// decodes with the calling Decoder's settings, so KnownFields(true) still
// applies to the plan (Node.Decode would drop it).
type planDoc struct {
	file string
	root nodeRef
	plan *Plan
}

// UnmarshalYAML keeps the node tree, refuses inline secrets before anything
// else is decoded, then decodes the plan.
func (d *planDoc) UnmarshalYAML(unmarshal func(any) error) error {
	if err := unmarshal(&d.root); err != nil {
		return err
	}
	if err := rejectInlineSecrets(d.root.n, "", d.file); err != nil {
		return err
	}
	return unmarshal(d.plan)
}

// nodeRef keeps a pointer to the node it is decoded from.
type nodeRef struct{ n *yaml.Node }

// UnmarshalYAML records n.
func (r *nodeRef) UnmarshalYAML(n *yaml.Node) error {
	r.n = n
	return nil
}

// yamlPlanError turns yaml.v3's "line N: field x not found in type T" into
// a PlanError naming the key.
func yamlPlanError(err error, file string) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return &PlanError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var errs []error
	for _, m := range te.Errors {
		pe := &PlanError{File: file, Msg: m}
		var line int
		var rest string
		if n, _ := fmt.Sscanf(m, "line %d:", &line); n == 1 {
			pe.Line = line
			_, rest, _ = strings.Cut(m, ": ")
			pe.Msg = rest
		}
		if strings.HasPrefix(pe.Msg, "field ") && strings.Contains(pe.Msg, " not found in type ") {
			key := strings.TrimPrefix(pe.Msg, "field ")
			key, _, _ = strings.Cut(key, " ")
			pe.Key = key
			pe.Msg = "unknown key"
		}
		errs = append(errs, pe)
	}
	return errors.Join(errs...)
}

func rejectInlineSecrets(n *yaml.Node, prefix, file string) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if err := rejectInlineSecrets(c, prefix, file); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + k.Value
			}
			if slices.Contains(secretKeys, strings.ToLower(k.Value)) {
				return &PlanError{File: file, Line: k.Line, Key: key,
					Msg: "inline secrets are not allowed in a plan; use password_env or password_file"}
			}
			if err := rejectInlineSecrets(v, key, file); err != nil {
				return err
			}
		}
	}
	return nil
}

// lineOf returns the line of the key at dotted path in the document, or 0.
func lineOf(root *yaml.Node, dotted string) int {
	if root == nil {
		return 0
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(dotted, ".") {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// Validate checks a plan filled in by a program. ParsePlan and LoadPlan
// call it.
func (p *Plan) Validate() error { return p.validate("", nil) }

func (p *Plan) validate(file string, root *yaml.Node) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &PlanError{File: file, Line: lineOf(root, key), Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for i, ph := range p.Phases {
		if !slices.Contains(AllPhases, ph) {
			bad(fmt.Sprintf("phases[%d]", i), "unknown phase %q (want one of %s)", ph, phaseList(AllPhases))
		}
	}
	if p.Accounts.FromDirectory != nil && !*p.Accounts.FromDirectory && p.Accounts.ListFile == "" {
		bad("accounts.from_directory", "false selects no account without accounts.list_file")
	}
	if len(p.Domains) == 0 && p.Accounts.ListFile == "" {
		bad("domains", "list at least one domain (or give accounts.list_file)")
	}
	for i, d := range p.Domains {
		if d == "" || strings.ContainsAny(d, "@/ \t") {
			bad(fmt.Sprintf("domains[%d]", i), "%q is not a domain name", d)
		}
	}
	checkPatterns := func(key string, pats []string) {
		for i, pat := range pats {
			if _, err := path.Match(pat, ""); err != nil || pat == "" {
				bad(fmt.Sprintf("%s[%d]", key, i), "bad pattern %q", pat)
			}
		}
	}
	checkPatterns("accounts.include", p.Accounts.Include)
	checkPatterns("accounts.exclude", p.Accounts.Exclude)
	checkPatterns("mail.include", p.Mail.Include)
	checkPatterns("mail.exclude", p.Mail.Exclude)
	checkPatterns("calendars.include", p.Calendars.Include)
	checkPatterns("calendars.exclude", p.Calendars.Exclude)
	checkPatterns("contacts.include", p.Contacts.Include)
	checkPatterns("contacts.exclude", p.Contacts.Exclude)
	for from, to := range p.Map.Domains {
		if from == "" || to == "" || strings.Contains(from+to, "@") {
			bad("map.domains", "bad domain mapping %q: %q", from, to)
		}
	}
	for from, to := range p.Map.Accounts {
		if !strings.Contains(from, "@") || !strings.Contains(to, "@") {
			bad("map.accounts", "bad address mapping %q: %q", from, to)
		}
	}
	for side, ep := range map[string]*Endpoint{"source": &p.Source, "destination": &p.Destination} {
		switch ep.Kind {
		case "", "zimbra", "imap":
		default:
			bad(side+".kind", "unknown kind %q (want zimbra or imap)", ep.Kind)
		}
		switch ep.IMAP.Security {
		case "", "tls", "starttls", "none":
		default:
			bad(side+".imap.security", "unknown security %q (want tls, starttls or none)", ep.IMAP.Security)
		}
		switch ep.DAV.Auth {
		case "", "token", "basic":
		default:
			bad(side+".dav.auth", "unknown auth %q (want token or basic)", ep.DAV.Auth)
		}
		if ep.DAV.IdleTimeout < 0 || ep.DAV.MaxMultistatusMiB < 0 || ep.DAV.MaxObjectMiB < 0 || ep.DAV.MaxExportMiB < 0 {
			bad(side+".dav", "idle_timeout and max_*_mib must not be negative")
		}
		switch ep.CLI.Mode {
		case "", "local":
		case "ssh":
			if ep.CLI.SSH.Address == "" {
				bad(side+".cli.ssh.address", "required with mode: ssh")
			}
		default:
			bad(side+".cli.mode", "unknown mode %q (want local or ssh)", ep.CLI.Mode)
		}
		if ep.Admin.PasswordEnv != "" && ep.Admin.PasswordFile != "" {
			bad(side+".admin", "give password_env or password_file, not both")
		}
	}
	need := p.needs()
	if need.srcAdmin {
		p.requireAdmin(bad, "source", &p.Source)
	}
	if need.dstAdmin {
		p.requireAdmin(bad, "destination", &p.Destination)
	}
	if need.imap {
		p.requireIMAP(bad, "source", &p.Source)
		p.requireIMAP(bad, "destination", &p.Destination)
	}
	if need.dav {
		p.requireDAV(bad, "source", &p.Source)
		p.requireDAV(bad, "destination", &p.Destination)
	}

	if (p.HasPhase(PhaseMTAStop) || p.HasPhase(PhaseMTAStart)) && p.Destination.CLI.Mode == "" && !p.cliInjected {
		bad("destination.cli.mode", "the mta_stop and mta_start phases need a command line on the destination (local or ssh)")
	}
	p.validateSeed(bad)
	for _, ph := range []Phase{PhaseSmartScan, PhaseProvisioning, PhaseDedup} {
		if p.HasPhase(ph) && p.Destination.CLI.Mode == "" && !p.cliInjected && !p.Destination.Admin.UnverifiedSOAP {
			bad("destination.cli.mode", "the %s phase runs on the carbonio command line: set destination.cli.mode (local or ssh), "+
				"or destination.admin.unverified_soap: true to send it over SOAP with field names no public source shows", ph)
			break
		}
	}
	for side, ep := range map[string]*Endpoint{"source": &p.Source, "destination": &p.Destination} {
		if ep.DAV.URL != "" && p.needs().dav {
			if msg := carbonio.DAVOnAdminPort(ep.DAV.URL); msg != "" {
				bad(side+".dav.url", "%s", msg)
			}
		}
	}
	if p.HasPhase(PhaseProvisioning) && p.Provisioning.BackupPath == "" {
		bad("provisioning.backup_path", "required by the provisioning phase")
	}
	if p.Provisioning.ConcurrentAccounts < 0 {
		bad("provisioning.concurrent_accounts", "must not be negative")
	}
	if p.Mail.MaxSize < 0 {
		bad("mail.max_size", "must not be negative")
	}
	if p.Concurrency.ConcurrentAccounts < 0 {
		bad("concurrency.concurrent_accounts", "must not be negative")
	}
	if p.Concurrency.FoldersPerAccount < 0 {
		bad("concurrency.folders_per_account", "must not be negative")
	}
	if p.Concurrency.ConnectionsPerServer < 0 {
		bad("concurrency.connections_per_server", "must not be negative")
	}
	if math.IsNaN(p.Limits.HTTPRate) || math.IsInf(p.Limits.HTTPRate, 0) {
		bad("limits.http_rate", "must be a number of requests per second")
	}
	if p.Limits.SourceIMAP < 0 || p.Limits.DestinationIMAP < 0 || p.Limits.HTTPConnections < 0 {
		bad("limits", "connection caps must not be negative")
	}
	if p.Lease < 0 || p.Lease > 0 && p.Lease < time.Second {
		bad("lease", "must be at least 1s")
	}
	return errors.Join(errs...)
}

type needs struct{ srcAdmin, dstAdmin, imap, dav bool }

func (p *Plan) needs() needs {
	var n needs
	for _, ph := range p.EffectivePhases() {
		switch ph {
		case PhaseMTAStop, PhaseMTAStart, PhaseSmartScan, PhaseProvisioning, PhaseProvisioningCheck, PhaseDedup:
			n.dstAdmin = true
		case PhaseMail:
			n.imap = true
		case PhaseCalendars, PhaseContacts:
			n.dav = true
		case PhaseVerify:
		case PhaseShares, PhaseFiles:
			n.srcAdmin, n.dstAdmin = true, true
		}
	}
	if p.Accounts.ListFile == "" && p.Accounts.FromDirectory == nil || p.Accounts.FromDirectory != nil && *p.Accounts.FromDirectory {
		n.srcAdmin = true
	}
	if n.dav && !p.davInjected {
		if p.Source.DAV.Auth == "" || p.Source.DAV.Auth == "token" {
			n.srcAdmin = true
		}
		if p.Destination.DAV.Auth == "" || p.Destination.DAV.Auth == "token" {
			n.dstAdmin = true
		}
	}
	if n.imap && p.Source.Kind != "imap" {
		n.srcAdmin = true // virtual folders come from the admin API
	}
	return n
}

type badFunc func(key, format string, args ...any)

func requireCred(bad badFunc, key string, c *Credential) {
	if c.PasswordEnv == "" && c.PasswordFile == "" && c.Password.IsZero() {
		bad(key, "missing credential: give password_env or password_file")
	}
	if c.PasswordEnv != "" && c.PasswordFile != "" {
		bad(key, "give password_env or password_file, not both")
	}
}

func (p *Plan) requireAdmin(bad badFunc, side string, ep *Endpoint) {
	if ep.Admin.URL == "" {
		bad(side+".admin.url", "required")
	}
	if ep.Admin.User == "" {
		bad(side+".admin.user", "required")
	}
	requireCred(bad, side+".admin", &ep.Admin.Credential)
}

func (p *Plan) requireIMAP(bad badFunc, side string, ep *Endpoint) {
	if ep.IMAP.Address == "" {
		bad(side+".imap.address", "required by the mail phase")
	}
	if ep.IMAP.Admin == "" {
		bad(side+".imap.admin", "required by the mail phase")
	}
	requireCred(bad, side+".imap", &ep.IMAP.Credential)
}

func (p *Plan) requireDAV(bad badFunc, side string, ep *Endpoint) {
	if ep.DAV.URL == "" {
		bad(side+".dav.url", "required by the calendars and contacts phases")
	}
	if ep.DAV.Auth == "basic" && !p.davInjected {
		if ep.DAV.User == "" {
			bad(side+".dav.user", "required with auth: basic")
		}
		requireCred(bad, side+".dav", &ep.DAV.Credential)
	}
}

func phaseList(ps []Phase) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// EffectivePhases returns the phases the plan runs, in run order.
func (p *Plan) EffectivePhases() []Phase {
	if len(p.Phases) == 0 {
		return DefaultPhases
	}
	var out []Phase
	for _, ph := range AllPhases {
		if slices.Contains(p.Phases, ph) {
			out = append(out, ph)
		}
	}
	return out
}

// HasPhase reports whether the plan runs ph.
func (p *Plan) HasPhase(ph Phase) bool { return slices.Contains(p.EffectivePhases(), ph) }

// Hash identifies the plan text (empty for a plan built in code).
func (p *Plan) Hash() string { return p.hash }

// StatePath returns the state file path.
func (p *Plan) StatePath() string {
	if p.State == "" {
		return DefaultStatePath
	}
	return p.State
}

// ReportDir returns the report directory.
func (p *Plan) ReportDir() string {
	if p.Report == "" {
		return DefaultReportDir
	}
	return p.Report
}

func (p *Plan) resolvePaths(dir string) {
	abs := func(s *string) {
		if *s != "" && !filepath.IsAbs(*s) && *s != ":memory:" && !state.IsURL(*s) {
			*s = filepath.Join(dir, *s)
		}
	}
	abs(&p.State)
	abs(&p.Report)
	abs(&p.Accounts.ListFile)
	for _, ep := range []*Endpoint{&p.Source, &p.Destination} {
		abs(&ep.Admin.PasswordFile)
		abs(&ep.Admin.CAFile)
		abs(&ep.IMAP.PasswordFile)
		abs(&ep.IMAP.CAFile)
		abs(&ep.DAV.PasswordFile)
		abs(&ep.DAV.CAFile)
		abs(&ep.CLI.SSH.KnownHostsFile)
		for i := range ep.CLI.SSH.KeyFiles {
			abs(&ep.CLI.SSH.KeyFiles[i])
		}
	}
	abs(&p.Transfer.SSH.KnownHostsFile)
	for i := range p.Transfer.SSH.KeyFiles {
		abs(&p.Transfer.SSH.KeyFiles[i])
	}
}

// LoadSecrets reads every credential the plan's phases need from its
// environment variable or file. A missing one is a *PlanError naming the key.
// Credentials already set (Password not zero) are kept.
func (p *Plan) LoadSecrets() error {
	var errs []error
	load := func(key string, c *Credential) {
		if !c.Password.IsZero() {
			return
		}
		s, err := secret.Load(c.PasswordEnv, c.PasswordFile)
		if err != nil {
			errs = append(errs, &PlanError{Key: key, Msg: strings.TrimPrefix(err.Error(), "secret: ")})
			return
		}
		c.Password = s
	}
	need := p.needs()
	if need.srcAdmin {
		load("source.admin", &p.Source.Admin.Credential)
	}
	if need.dstAdmin {
		load("destination.admin", &p.Destination.Admin.Credential)
	}
	if need.imap {
		load("source.imap", &p.Source.IMAP.Credential)
		load("destination.imap", &p.Destination.IMAP.Credential)
	}
	if need.dav && !p.davInjected {
		if p.Source.DAV.Auth == "basic" {
			load("source.dav", &p.Source.DAV.Credential)
		}
		if p.Destination.DAV.Auth == "basic" {
			load("destination.dav", &p.Destination.DAV.Credential)
		}
	}
	return errors.Join(errs...)
}

// MapAddress returns the destination address of a source address.
func (p *Plan) MapAddress(src string) string {
	if d, ok := p.Map.Accounts[src]; ok {
		return d
	}
	local, dom, ok := strings.Cut(src, "@")
	if !ok {
		return src
	}
	if to, ok := p.Map.Domains[strings.ToLower(dom)]; ok {
		return local + "@" + to
	}
	return src
}

// Selects reports whether the account address passes the include and
// exclude patterns.
func (s *Selection) Selects(addr string) bool {
	return matchFilter(s.Include, s.Exclude, strings.ToLower(addr))
}

func matchFilter(include, exclude []string, name string) bool {
	if len(include) > 0 {
		ok := false
		for _, p := range include {
			if m, _ := path.Match(p, name); m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range exclude {
		if m, _ := path.Match(p, name); m {
			return false
		}
	}
	return true
}

// readListFile reads one address per line, skipping blanks and # comments.
func readListFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, &PlanError{Key: "accounts.list_file", Msg: err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
		if s == "" {
			continue
		}
		if !strings.Contains(s, "@") {
			return nil, &PlanError{File: name, Line: line, Key: "accounts.list_file", Msg: fmt.Sprintf("%q is not an address", s)}
		}
		out = append(out, strings.ToLower(s))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("migrate: accounts.list_file: %w", err)
	}
	return out, nil
}

func (c Concurrency) accounts() int {
	if c.ConcurrentAccounts > 0 {
		return c.ConcurrentAccounts
	}
	return DefaultConcurrentAccounts
}

func (c Concurrency) folders() int {
	if c.FoldersPerAccount > 0 {
		return c.FoldersPerAccount
	}
	return DefaultFoldersPerAccount
}

// mailFolders is FoldersPerAccount for the mail copy: 0 leaves the choice
// to imapcopy (DefaultConcurrency, or WANConcurrency over a slow link).
func (c Concurrency) mailFolders() int {
	return max(c.FoldersPerAccount, 0)
}

// Connections is the IMAP connection budget per server the plan gives:
// ConnectionsPerServer, or when that is 0 DefaultConnectionsPerServer
// raised to ConnectionsPerAccount for each account that runs at once, up
// to MaxDefaultConnectionsPerServer.
func (c Concurrency) Connections() int {
	if c.ConnectionsPerServer > 0 {
		return c.ConnectionsPerServer
	}
	return min(MaxDefaultConnectionsPerServer, max(DefaultConnectionsPerServer, ConnectionsPerAccount*c.accounts()))
}
