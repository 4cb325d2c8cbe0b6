package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio"
	"github.com/zxmigrate/zxmigrate/internal/transfer"
)

// The seed's first step, as the documented procedure runs it
// (zextras/tech-doc source/carbonio/migration/migration-from-zextras.rst,
// label mig-create-backup, removed at commit 6fe185a5): on the source, as
// the zimbra user, `zxsuite backup doExport /tmp/export`; then "copy the
// backup from the Source to the Destination or make sure the Destination
// can access the backup". The export phase runs the first, the transfer
// phase the second.

// Transfer modes.
const (
	TransferRsync = "rsync" // pull the export from the source host with rsync over SSH (the default)
	TransferLocal = "local" // the export is a local path here (a mounted share): copy it
	TransferCheck = "check" // the administrator moved the export: only check the destination sees it
)

// carbonioBackupPath is Carbonio's own backup path. The procedure forbids
// restoring from it ("Source backup must … not use Carbonio backup path",
// zextras/tech-doc source/_includes/_migration/carbonio-req.rst), so the
// transfer never writes there.
const carbonioBackupPath = "/opt/zextras/backup/zextras"

// ExportPlan configures the export phase: `zxsuite backup doExport PATH
// domains D,…` on the source through source.cli, waited on like every
// operation.
type ExportPlan struct {
	// Path is the directory on the source host the export is written to
	// (the procedure's /tmp/export), created with mode 0700 when missing.
	// Required by the export phase.
	Path string `yaml:"path"`
}

// TransferPlan configures the transfer phase: it brings the export to
// provisioning.backup_path, the path the destination restores from, and
// proves it complete. rsync runs on the host running zxmigrate, which must
// therefore see provisioning.backup_path as the destination does (run it
// on the destination's Mailstore & Provisioning node, or share the path).
type TransferPlan struct {
	// Mode is "rsync" (the default: pull from the source host over SSH),
	// "local" (Path is readable here, e.g. a mounted share; rsync copies
	// it, or a built-in copier when rsync is not installed) or "check"
	// (the administrator moved the export, e.g. on a USB disk: only check
	// that the destination sees it, with every selected account).
	Mode string `yaml:"mode"`
	// Path is where the export is: on the source host (rsync) or here
	// (local). "" means export.path.
	Path string `yaml:"path"`
	// SSH reaches the source host for rsync; an empty address means
	// source.cli.ssh. run_as runs the remote rsync through sudo -n (the
	// export belongs to zimbra).
	SSH SSHEndpoint `yaml:"ssh"`
	// Verify is "size" (the default: file count and bytes equal on both
	// sides, and rsync's size-and-time check finds nothing left to copy)
	// or "checksum" (every file's content compared too; reads both copies
	// in full).
	Verify string `yaml:"verify"`
	// BWLimit caps rsync's bandwidth in KiB per second; 0 means no limit.
	BWLimit int `yaml:"bwlimit"`
	// Chown gives the copied files USER:GROUP (rsync --chown, needs root),
	// e.g. zextras:zextras: the restore reads the export as zextras.
	Chown string `yaml:"chown"`
	// Rsync is the rsync program here; "" means rsync from PATH.
	Rsync string `yaml:"rsync"`
}

func (t TransferPlan) mode() string {
	if t.Mode == "" {
		return TransferRsync
	}
	return t.Mode
}

// transferSource is where the transfer reads the export.
func (p *Plan) transferSource() string {
	if p.Transfer.Path != "" {
		return p.Transfer.Path
	}
	return p.Export.Path
}

// transferSSH is the SSH login of an rsync transfer.
func (p *Plan) transferSSH() SSHEndpoint {
	if p.Transfer.SSH.Address != "" {
		return p.Transfer.SSH
	}
	return p.Source.CLI.SSH
}

func badPath(s string) bool { return s == "" || !path.IsAbs(s) || strings.ContainsAny(s, "\x00\n\r") }

// validateSeed checks the export and transfer keys of the phases the plan
// runs.
func (p *Plan) validateSeed(bad badFunc) {
	if p.HasPhase(PhaseExport) {
		if badPath(p.Export.Path) {
			bad("export.path", "the export phase needs an absolute path on the source host, got %q", p.Export.Path)
		}
		if p.Source.CLI.Mode == "" && !p.srcCLIInjected {
			bad("source.cli.mode", "the export phase runs zxsuite on the source: give local or ssh")
		}
	}
	if p.Transfer.BWLimit < 0 {
		bad("transfer.bwlimit", "must not be negative")
	}
	switch p.Transfer.Verify {
	case "", "size", "checksum":
	default:
		bad("transfer.verify", "unknown verify %q (want size or checksum)", p.Transfer.Verify)
	}
	if p.Transfer.Chown != "" && (strings.ContainsAny(p.Transfer.Chown, " \t\x00\n") || strings.HasPrefix(p.Transfer.Chown, "-")) {
		bad("transfer.chown", "want USER:GROUP, got %q", p.Transfer.Chown)
	}
	mode := p.Transfer.mode()
	switch mode {
	case TransferRsync, TransferLocal, TransferCheck:
	default:
		bad("transfer.mode", "unknown mode %q (want rsync, local or check)", p.Transfer.Mode)
		return
	}
	if !p.HasPhase(PhaseTransfer) {
		return
	}
	dst := p.Provisioning.BackupPath
	if badPath(dst) {
		bad("provisioning.backup_path", "the transfer phase needs the absolute path the destination restores from, got %q", dst)
	}
	if mode == TransferCheck {
		if p.Destination.CLI.Mode == "" && !p.cliInjected {
			bad("destination.cli.mode", "transfer mode check lists the export's accounts with carbonio backup getAvailableAccounts: give local or ssh")
		}
		return
	}
	clean := path.Clean(dst)
	if clean == carbonioBackupPath || strings.HasPrefix(clean, carbonioBackupPath+"/") || strings.HasPrefix(carbonioBackupPath, clean+"/") {
		bad("provisioning.backup_path", "%s is Carbonio's own backup path, which the procedure forbids as the export's place", dst)
	}
	src := p.transferSource()
	key := "transfer.path"
	if p.Transfer.Path == "" {
		key = "export.path"
	}
	if badPath(src) {
		bad(key, "the transfer phase needs the export's absolute path on the source host, got %q", src)
	}
	if mode == TransferLocal && path.Clean(src) == clean {
		bad("transfer.path", "is provisioning.backup_path itself: nothing to copy (use mode: check)")
	}
	if mode == TransferRsync && p.transferSSH().Address == "" {
		bad("transfer.ssh.address", "transfer mode rsync needs the source host: give transfer.ssh or source.cli.ssh")
	}
}

// seedBackend holds the SSH connections of the export and transfer phases
// (one per side, opened on first use).
type seedBackend struct {
	mu  sync.Mutex
	ssh map[string]*carbonio.SSH
}

func (s *seedBackend) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.ssh {
		_ = c.Close()
	}
	s.ssh = nil
}

// commandLine returns a side's command line: the hook (an embedder's
// runner or a test double) when set, else the plan's cli (local, ssh, or
// none). A side's SSH connection is made once, shared by its users, and
// closed by Close.
func (b *serverBackend) commandLine(side string, hook carbonio.Runner, c CLIEndpoint) carbonio.CommandLine {
	cl := carbonio.CommandLine{Runner: hook, Local: c.Mode == "local", Program: c.Program}
	if hook != nil || c.Mode != "ssh" {
		return cl
	}
	b.seed.mu.Lock()
	defer b.seed.mu.Unlock()
	s, ok := b.seed.ssh[side]
	if !ok {
		s = &carbonio.SSH{Addr: c.SSH.Address, User: c.SSH.User, KnownHostsFile: c.SSH.KnownHostsFile,
			KeyFiles: c.SSH.KeyFiles, RunAs: c.SSH.RunAs}
		if b.seed.ssh == nil {
			b.seed.ssh = map[string]*carbonio.SSH{}
		}
		b.seed.ssh[side] = s
	}
	cl.SSH = s
	return cl
}

// cliRunner returns the runner of a side's command line, nil when none.
func (b *serverBackend) cliRunner(side string, hook carbonio.Runner, c CLIEndpoint) carbonio.Runner {
	tr, err := b.commandLine(side, hook, c).Transport()
	if err != nil || tr == nil {
		return nil // a plan's cli has one mode: Transport cannot fail on it
	}
	return tr.Runner
}

// source returns the source's zxsuite command line.
func (b *serverBackend) source() *carbonio.Source {
	s := &carbonio.Source{Runner: b.cliRunner("source", b.hooks.SourceCLI, b.p.Source.CLI), Program: b.p.Source.CLI.Program,
		Logger: b.log, PollInterval: b.hooks.PollInterval}
	if b.hooks.PollInterval > 0 {
		s.PollMax = 4 * b.hooks.PollInterval
	}
	return s
}

// destinationModules returns a client that runs module commands on the
// destination's command line, or nil without one.
func (b *serverBackend) destinationModules() *carbonio.Client {
	tr, err := b.commandLine("destination", b.hooks.DestinationCLI, b.p.Destination.CLI).Transport()
	if err != nil || tr == nil {
		return nil
	}
	return &carbonio.Client{Transport: tr, Logger: b.log}
}

// rsync returns the transfer's rsync settings.
func (b *serverBackend) rsync() *transfer.Rsync {
	p := b.p
	r := &transfer.Rsync{Program: p.Transfer.Rsync, Source: p.transferSource(), Dest: p.Provisioning.BackupPath,
		BWLimit: p.Transfer.BWLimit, Chown: p.Transfer.Chown, Logger: b.log}
	if p.Transfer.mode() == TransferRsync {
		s := p.transferSSH()
		r.Remote = &transfer.Remote{Addr: s.Address, User: s.User, KnownHostsFile: s.KnownHostsFile, KeyFiles: s.KeyFiles, RunAs: s.RunAs}
	}
	return r
}

// rsyncMissing reports whether the rsync program cannot be found here.
func (b *serverBackend) rsyncMissing() bool {
	prog := b.p.Transfer.Rsync
	if prog == "" {
		prog = "rsync"
	}
	_, err := exec.LookPath(prog)
	return err != nil
}

// checkSeed checks, before anything runs, the transports the export and
// transfer phases need: the source's zxsuite answers, the source host is
// reachable over SSH with a trusted host key and runs rsync, rsync is
// installed here, and (check mode) the destination's carbonio answers.
func (b *serverBackend) checkSeed(ctx context.Context) error {
	p := b.p
	var errs []error
	if p.HasPhase(PhaseExport) {
		if _, err := b.source().Operations(ctx); err != nil {
			errs = append(errs, &ServerError{Key: "source.cli", Address: cliAddress(p.Source.CLI), Err: err})
		}
	}
	if p.HasPhase(PhaseTransfer) {
		switch p.Transfer.mode() {
		case TransferRsync:
			if err := b.rsync().Check(ctx); err != nil {
				errs = append(errs, &ServerError{Key: "transfer.ssh", Address: p.transferSSH().Address, Err: err})
			}
		case TransferLocal:
			// Without rsync the built-in copier copies (noted in the
			// phase's result). The export must be there unless this run
			// makes it.
			if !p.HasPhase(PhaseExport) {
				if fi, err := os.Stat(p.transferSource()); err != nil || !fi.IsDir() {
					if err == nil {
						err = errors.New("not a directory")
					}
					errs = append(errs, &ServerError{Key: "transfer.path", Address: p.transferSource(), Err: err})
				}
			}
		case TransferCheck:
			cli := b.destinationModules()
			if cli == nil {
				errs = append(errs, &ServerError{Key: "destination.cli", Address: "(none)", Err: errors.New("no destination command line")})
			} else if _, err := cli.Operations(ctx); err != nil {
				errs = append(errs, &ServerError{Key: "destination.cli", Address: cliAddress(p.Destination.CLI), Err: err})
			}
		}
	}
	return errors.Join(errs...)
}

func cliAddress(c CLIEndpoint) string {
	if c.Mode == "ssh" {
		return c.SSH.Address
	}
	if c.Mode == "" {
		return "(injected)"
	}
	return c.Mode
}

// export runs `zxsuite backup doExport PATH domains D…` on the source and
// waits for it. A run that stopped while waiting waits for the export
// still running instead of starting a second one.
func (b *serverBackend) export(ctx context.Context, p *Plan, rec *recorder) error {
	src := b.source()
	op, running, err := src.RunningExport(ctx)
	if err != nil {
		return err
	}
	if !running {
		if err := src.MakeDir(ctx, p.Export.Path); err != nil {
			return fmt.Errorf("create the export directory %s on the source: %w", p.Export.Path, err)
		}
		if op, err = src.Export(ctx, p.Export.Path, carbonio.ExportOptions{Domains: p.Domains}); err != nil {
			return err
		}
	}
	rec.add(func(r *PhaseResult) { r.Reason = "operation " + op.ID })
	// Operations carry no progress (the admin console's Operation type has
	// none): every change seen is reported as a sign of life.
	final, err := src.Wait(ctx, op, func(carbonio.Operation) { rec.Progress(0, 0, 0) })
	if err != nil {
		return err
	}
	what := "all domains"
	if len(p.Domains) > 0 {
		what = strings.Join(p.Domains, ", ")
	}
	rec.add(func(r *PhaseResult) {
		r.Reason = fmt.Sprintf("operation %s %s: outcome %s (state %q, type %q): %s exported to %s on the source",
			final.Name, final.ID, final.Outcome, final.State, final.Type, what, p.Export.Path)
	})
	return nil
}

// transferProgress reports the transfer's progress: files as items, with
// the expected bytes.
func (c *recorder) transferProgress(tp transfer.Progress) {
	c.mu.Lock()
	db := max(tp.Bytes-c.lastBytes, 0)
	c.lastItems, c.lastBytes = max(tp.Files, c.lastItems), max(tp.Bytes, c.lastBytes)
	if tp.TotalFiles > 0 {
		c.itemsTotal = tp.TotalFiles
	}
	ev := Progress{Phase: c.res.Phase, Time: time.Now(), Items: c.lastItems, Total: c.itemsTotal,
		Bytes: c.lastBytes, TotalBytes: tp.TotalBytes}
	c.mu.Unlock()
	c.r.bytes.Add(db)
	c.r.emit(ev)
}

// transfer brings the export to provisioning.backup_path and proves it
// complete, or (check mode) checks that the destination sees it.
func (b *serverBackend) transfer(ctx context.Context, p *Plan, accts []AccountPlan, rec *recorder) error {
	mode := p.Transfer.mode()
	if mode == TransferCheck {
		return b.checkExport(ctx, p, accts, rec, b.destinationModules())
	}
	checksum := p.Transfer.Verify == "checksum"
	dst := p.Provisioning.BackupPath
	var (
		st       transfer.Stats
		v        *transfer.Verification
		attempts = 1
		how      string
		cleaned  []string
		err      error
	)
	if mode == TransferLocal && b.rsyncMissing() {
		how = "the built-in copier (rsync is not installed here)"
		st, err = transfer.LocalCopy(ctx, p.transferSource(), dst, rec.transferProgress)
		if err == nil {
			v, err = transfer.Compare(ctx, p.transferSource(), dst, checksum)
		}
	} else {
		r := b.rsync()
		how = "rsync from " + r.Source
		if r.Remote != nil {
			how = fmt.Sprintf("rsync over SSH from %s:%s", r.Remote.Addr, r.Source)
		}
		var scan transfer.Stats
		if scan, err = r.Scan(ctx); err != nil {
			return fmt.Errorf("list the export: %w", err)
		}
		// rsync counts directories among the files it checks.
		entries := scan.Files + scan.Dirs
		rec.transferProgress(transfer.Progress{TotalBytes: scan.Bytes, TotalFiles: entries})
		st, attempts, err = r.Copy(ctx, func(tp transfer.Progress) {
			if tp.TotalBytes == 0 {
				tp.TotalBytes = scan.Bytes
			}
			if tp.TotalFiles < entries {
				tp.TotalFiles = entries
			}
			rec.transferProgress(tp)
		})
		if err == nil {
			v, err = r.Verify(ctx, checksum)
		}
		if err == nil && len(v.Extra) > 0 {
			// An rsync killed outright leaves its temporary file next to
			// the file a later attempt completed.
			if cleaned, err = r.RemoveStaleTemps(v.Extra); err == nil && len(cleaned) > 0 {
				v, err = r.Verify(ctx, checksum)
			}
		}
	}
	rec.add(func(r *PhaseResult) {
		r.Copied = st.Transferred
		r.Existing = max(st.Files-st.Transferred, 0)
		r.Bytes = st.TransferredBytes
	})
	if err != nil {
		return err
	}
	check := "file count, bytes, size and time of every file"
	if checksum {
		check = "file count, bytes and the checksum of every file"
	}
	note := fmt.Sprintf("%d files, %d bytes at the destination; checked: %s", v.DestFiles, v.DestBytes, check)
	if st.Matched > 0 {
		note += fmt.Sprintf("; %d bytes already there (earlier or interrupted copy) not sent again", st.Matched)
	}
	if attempts > 1 {
		note += fmt.Sprintf("; resumed after %d interruption(s)", attempts-1)
	}
	if len(cleaned) > 0 {
		note += fmt.Sprintf("; removed %d temporary file(s) of a killed rsync (e.g. %s)", len(cleaned), cleaned[0])
	}
	if v.OK() {
		// Complete and checked: what is left in partial directories are
		// temporary files of rsyncs killed outright, nothing to resume.
		n, err := transfer.RemovePartials(dst)
		if err != nil {
			return err
		}
		if n > 0 {
			note += fmt.Sprintf("; %d leftover partial-file directories removed", n)
		}
	}
	rec.add(func(r *PhaseResult) {
		r.Details = append(r.Details, Detail{Name: "export files", Destination: dst, SourceCount: v.SourceFiles,
			DestCount: v.DestFiles, Copied: st.Transferred, Existing: max(st.Files-st.Transferred, 0), Note: note})
		r.Reason = fmt.Sprintf("%d files (%d bytes) by %s to %s", st.Transferred, st.TransferredBytes, how, dst)
	})
	if !v.OK() {
		for _, f := range v.Differ[:min(len(v.Differ), 20)] {
			rec.Problem(f, false, "missing or different at the destination after the copy")
		}
		for _, f := range v.Extra[:min(len(v.Extra), 20)] {
			rec.Problem(f, false, "only at the destination: not part of this export (an older export in the same directory?)")
		}
		return fmt.Errorf("the copy at %s is not complete: %s", dst, v.Problem())
	}

	// The destination's own view: every selected account is in the
	// export, when a destination command line can say so.
	if cli := b.destinationModules(); cli != nil {
		return b.checkExport(ctx, p, accts, rec, cli)
	}
	rec.add(func(r *PhaseResult) {
		r.Reason += "; the export's accounts were not listed (no destination command line)"
	})
	return nil
}

// checkExport lists the accounts of the export at provisioning.backup_path
// as the destination sees it (`carbonio backup getAvailableAccounts
// backup_path PATH domains D`; zextras/tech-doc
// source/cli/ZxBackup/zxsuite_backup_getAvailableAccounts.rst, same
// grammar on Carbonio) and fails naming every selected account it lacks.
func (b *serverBackend) checkExport(ctx context.Context, p *Plan, accts []AccountPlan, rec *recorder, cli *carbonio.Client) error {
	if cli == nil {
		return errors.New("no destination command line to list the export's accounts (destination.cli)")
	}
	path := p.Provisioning.BackupPath
	avail, err := cli.AvailableAccounts(ctx, path, p.Domains...)
	if err != nil {
		if p.Transfer.mode() != TransferCheck && p.Destination.CLI.Mode == "ssh" {
			return fmt.Errorf("the destination does not see an export at %s (the copy was written on the host running zxmigrate: run it on the destination node, or share the path): %w", path, err)
		}
		return fmt.Errorf("the destination does not see an export at %s: %w", path, err)
	}
	have := map[string]bool{}
	for _, a := range avail {
		have[strings.ToLower(a)] = true
	}
	var missing []string
	for _, a := range accts {
		if !have[a.Source] {
			missing = append(missing, a.Source)
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		rec.Problem(m, false, "not in the export at "+path)
	}
	rec.add(func(r *PhaseResult) {
		r.Details = append(r.Details, Detail{Name: "accounts in the export", Destination: path, SourceCount: int64(len(accts)),
			DestCount: int64(len(accts) - len(missing)), Existing: int64(len(accts) - len(missing)), Failed: int64(len(missing)),
			Note: fmt.Sprintf("the destination lists %d accounts in the export", len(avail))})
		if p.Transfer.mode() == TransferCheck {
			r.Reason = fmt.Sprintf("the destination sees the export at %s with all %d selected accounts", path, len(accts))
		} else {
			r.Reason += fmt.Sprintf("; the destination sees all %d selected accounts in it", len(accts))
		}
	})
	if len(missing) > 0 {
		return fmt.Errorf("%d selected account(s) are not in the export at %s: %s", len(missing), path, strings.Join(missing, ", "))
	}
	return nil
}

// seedChecks tells preflight how the export and transfer phases will run
// (their transports were checked by checkSeed before).
func (b *serverBackend) seedChecks() []Check {
	p := b.p
	var out []Check
	if p.HasPhase(PhaseExport) {
		out = append(out, Check{Name: "export (zxsuite backup doExport)", OK: true,
			Detail: fmt.Sprintf("zxsuite answers on the source (%s); the export goes to %s there", cliAddress(p.Source.CLI), p.Export.Path)})
	}
	if p.HasPhase(PhaseTransfer) {
		c := Check{Name: "transfer (" + p.Transfer.mode() + ")", OK: true}
		switch p.Transfer.mode() {
		case TransferRsync:
			c.Detail = fmt.Sprintf("rsync over SSH from %s:%s to %s; the host key is trusted and the source runs rsync",
				p.transferSSH().Address, p.transferSource(), p.Provisioning.BackupPath)
		case TransferLocal:
			how := "rsync"
			if b.rsyncMissing() {
				how = "the built-in copier (rsync is not installed here)"
			}
			c.Detail = fmt.Sprintf("%s copies %s to %s", how, p.transferSource(), p.Provisioning.BackupPath)
		case TransferCheck:
			c.Detail = fmt.Sprintf("the destination's carbonio will list the accounts of the export at %s", p.Provisioning.BackupPath)
		}
		if p.Transfer.mode() != TransferCheck && p.Transfer.Chown == "" && os.Geteuid() == 0 {
			// The restore reads the export as zextras
			// (source/carbonio/admincli/backup/restorestrategies.rst:
			// chown -R zextras:zextras).
			c.Detail += "; running as root without transfer.chown, the copy keeps the source's owners: " +
				"set chown: zextras:zextras so that the restore can read it"
		}
		out = append(out, c)
	}
	return out
}
