package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/zxmigrate/zxmigrate/imapcopy"
	"github.com/zxmigrate/zxmigrate/termsafe"
)

// mailFlags are the flags of `migrate mail`.
type mailFlags struct {
	from, to              string
	fromAdmin, toAdmin    string
	fromPwFile, toPwFile  string
	allowPlaintext        bool
	caFile                string
	statePath, reportPath string
	dryRun                bool
	concurrency           int
	writers               int
	appendBatch           int
	include, exclude      []string
	maps                  []string
	maxSize               int64
	skipDeleted           bool
	deleteGone            bool
	deepVerify            bool
	verifySample          float64
	verifySeed            uint64
	verifyOnly            bool
	debug                 bool
	idleTimeout           time.Duration
	maxLine, maxLiteral   int64
}

// newMailCmd is `migrate mail`: copy one mailbox over IMAP.
func newMailCmd(e *env) *cobra.Command {
	f := &mailFlags{}
	c := &cobra.Command{
		Use:   "mail --from imap[s]://USER@HOST[:PORT] --to imap[s]://USER@HOST[:PORT]",
		Short: "Copy one mailbox over IMAP: every folder, message, flag and date; resumable",
		Long: `Copy one mailbox over IMAP, exactly: message bytes, flags, keywords and
INTERNALDATE, the folder tree and subscriptions. A re-run copies only what is
new and propagates flag changes; with --state an interrupted run resumes
without losing or duplicating anything. The run ends with a per-folder
fingerprint proof that every source message is on the destination.

With --delete (and the --state of the earlier runs), copies of messages that
the source no longer has, deleted or moved to another folder since, are
deleted on the destination: the last pass before a cut-over. Only messages
the state records as copies (appended, or found as the copy of a source
message) are deleted, by UID EXPUNGE of exactly them; mail without a
source counterpart is never touched.

imaps:// uses implicit TLS (port 993), imap:// STARTTLS (port 143);
certificates are verified (add a private CA with --ca-file). With
--allow-plaintext, imap:// connects without TLS.

Passwords come from MIGRATE_FROM_PASSWORD and MIGRATE_TO_PASSWORD, or from
--from-password-file and --to-password-file; with --from-admin/--to-admin
they are the admin's (SASL PLAIN, authzid = mailbox).

Exit codes: 0 everything copied and verified; 3 partial (skipped, failed,
dropped keywords, unverified messages or deletions not done, listed in the
summary; keywords renamed by the sanitising rule are listed but do not
count); 4
authentication failed; 2 usage; 5 server unreachable; 130 interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMail(cmd.Context(), e, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.from, "from", "", "source mailbox, imap[s]://USER@HOST[:PORT]")
	fl.StringVar(&f.to, "to", "", "destination mailbox, imap[s]://USER@HOST[:PORT]")
	fl.StringVar(&f.fromAdmin, "from-admin", "", "log in to the source as this admin on behalf of USER (SASL PLAIN authzid)")
	fl.StringVar(&f.toAdmin, "to-admin", "", "log in to the destination as this admin on behalf of USER")
	fl.StringVar(&f.fromPwFile, "from-password-file", "", "file holding the source password (else MIGRATE_FROM_PASSWORD)")
	fl.StringVar(&f.toPwFile, "to-password-file", "", "file holding the destination password (else MIGRATE_TO_PASSWORD)")
	fl.BoolVar(&f.allowPlaintext, "allow-plaintext", false, "connect imap:// URLs without TLS (passwords travel in clear)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file with extra CA certificates to trust")
	fl.StringVar(&f.statePath, "state", "", "state file (SQLite) for resume and fast re-runs")
	fl.StringVar(&f.reportPath, "report", "", "write the JSON report to this file")
	fl.BoolVar(&f.dryRun, "dry-run", false, "read both sides and report what would be copied; write nothing")
	fl.IntVar(&f.concurrency, "concurrency", 0, fmt.Sprintf("folders copied in parallel; 0 chooses %d (fastest against Zimbra's one-FETCH-per-account throttle on a LAN), or %d when a server is %v or more away",
		imapcopy.DefaultConcurrency, imapcopy.WANConcurrency, imapcopy.WANRoundTrip))
	fl.IntVar(&f.writers, "max-writers", imapcopy.DefaultMaxWriters, "APPEND connections per destination folder (up to 4 helps over a WAN into Carbonio)")
	fl.IntVar(&f.appendBatch, "append-batch", imapcopy.DefaultAppendBatch, "messages per APPEND command when the destination offers MULTIAPPEND (1: one per command)")
	fl.StringArrayVar(&f.include, "include", nil, "copy only folders matching this pattern ('/' separated; * and ? wildcards); repeatable")
	fl.StringArrayVar(&f.exclude, "exclude", nil, "skip folders matching this pattern; repeatable")
	fl.StringArrayVar(&f.maps, "map", nil, "rename a folder, SRC=DST ('/' separated); repeatable")
	fl.Int64Var(&f.maxSize, "max-size", 0, "skip and report messages larger than this many bytes; 0 leaves the limit to the server's APPENDLIMIT")
	fl.BoolVar(&f.deleteGone, "delete", false, "delete on the destination the copies of messages the source no longer has (needs the --state of the earlier runs; only copies are ever deleted)")
	fl.BoolVar(&f.skipDeleted, "skip-deleted", false, "do not copy messages flagged \\Deleted (default: copy them with the flag)")
	fl.BoolVar(&f.deepVerify, "deep-verify", false, "prove the copy by hashing whole messages on both sides (reads every message again)")
	fl.Float64Var(&f.verifySample, "verify-sample", imapcopy.DefaultVerifySample, "fraction of messages the default proof reads whole on both sides (negative: none)")
	fl.Uint64Var(&f.verifySeed, "verify-seed", 0, "seed choosing the proof's sample; unset, each run draws one")
	fl.BoolVar(&f.verifyOnly, "verify-only", false, "copy nothing; only compare source and destination")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", imapcopy.DefaultIdleTimeout, "end an IMAP connection on which the server sends nothing this long while an answer is due (moves with every byte: slow transfers are not cut); 0 disables")
	fl.Int64Var(&f.maxLine, "max-line-bytes", imapcopy.DefaultMaxLine, "longest response line accepted from an IMAP server")
	fl.Int64Var(&f.maxLiteral, "max-literal-bytes", imapcopy.DefaultMaxLiteral, "largest IMAP literal accepted outside message bodies (a body may be as large as its RFC822.SIZE plus a margin, and at most --max-size)")
	fl.BoolVar(&f.debug, "debug", false, "log debug details to stderr")
	_ = fl.MarkDeprecated("debug", "use --log-level debug")
	return c
}

func (f *mailFlags) accounts() (dst, src *imapcopy.Account, err error) {
	if f.from == "" || f.to == "" {
		return nil, nil, usageError{errors.New("mail: --from and --to are required")}
	}
	if f.concurrency < 0 || f.writers < 0 || f.maxSize < 0 || f.appendBatch < 0 || f.idleTimeout < 0 || f.maxLine <= 0 || f.maxLiteral <= 0 {
		return nil, nil, usageError{errors.New("mail: --concurrency, --max-writers, --append-batch, --max-size and --idle-timeout must not be negative, --max-line-bytes and --max-literal-bytes must be positive")}
	}
	if f.deleteGone && f.statePath == "" {
		return nil, nil, usageError{errors.New("mail: --delete needs --state: only messages the state records as copies are ever deleted")}
	}
	if f.deleteGone && f.verifyOnly {
		return nil, nil, usageError{errors.New("mail: --delete and --verify-only exclude each other")}
	}
	tcfg, err := tlsConfig(f.caFile)
	if err != nil {
		return nil, nil, err
	}
	mk := func(raw, admin, env, file, flagName string) (*imapcopy.Account, error) {
		a, err := imapcopy.ParseURL(raw)
		if err != nil {
			return nil, usageError{err}
		}
		if a.Security == imapcopy.StartTLS && f.allowPlaintext {
			a.Security = imapcopy.Plaintext
		}
		a.TLSConfig = tcfg
		a.Admin = admin
		a.IdleTimeout, a.MaxLine, a.MaxLiteral = f.idleTimeout, f.maxLine, f.maxLiteral
		if f.idleTimeout == 0 {
			a.IdleTimeout = -1 // 0 on the command line disables it
		}
		if a.Password, err = loadPassword(env, file, flagName); err != nil {
			return nil, err
		}
		return a, nil
	}
	if src, err = mk(f.from, f.fromAdmin, "MIGRATE_FROM_PASSWORD", f.fromPwFile, "from-password-file"); err != nil {
		return nil, nil, err
	}
	if dst, err = mk(f.to, f.toAdmin, "MIGRATE_TO_PASSWORD", f.toPwFile, "to-password-file"); err != nil {
		return nil, nil, err
	}
	return dst, src, nil
}

func (f *mailFlags) renames() (map[string]string, error) {
	if len(f.maps) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, s := range f.maps {
		src, dst, ok := strings.Cut(s, "=")
		if !ok || src == "" || dst == "" {
			return nil, usageError{fmt.Errorf("mail: --map %q: want SRC=DST", s)}
		}
		m[src] = dst
	}
	return m, nil
}

// mailReport is the JSON written by --report.
type mailReport struct {
	Version  int             `json:"version"`
	Kind     string          `json:"kind"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	OK       bool            `json:"ok"`
	Error    string          `json:"error,omitempty"`
	Stats    *imapcopy.Stats `json:"stats"`
	// Proof names the end-of-run proof (imapcopy.Copier.Proof).
	Proof string `json:"proof,omitempty"`
}

func runMail(ctx context.Context, e *env, f *mailFlags) error {
	dst, src, err := f.accounts()
	if err != nil {
		return err
	}
	renames, err := f.renames()
	if err != nil {
		return err
	}
	c := &imapcopy.Copier{
		Concurrency:  f.concurrency,
		MaxWriters:   f.writers,
		AppendBatch:  f.appendBatch,
		Include:      f.include,
		Exclude:      f.exclude,
		Map:          renames,
		SkipDeleted:  f.skipDeleted,
		Delete:       f.deleteGone,
		MaxSize:      f.maxSize,
		DryRun:       f.dryRun,
		DeepVerify:   f.deepVerify,
		VerifySample: f.verifySample,
		VerifySeed:   f.verifySeed,
	}
	if c.Logger, err = operatorLogger(e.stderr, e.g); err != nil {
		return err
	}
	if f.statePath != "" {
		// The state's lock makes a second run on it refuse (exit 2)
		// instead of copying the same mailbox twice.
		st, err := openState(ctx, f.statePath)
		if err != nil {
			return err
		}
		defer st.Close()
		c.Checkpoint = st.Mail(src.String() + " -> " + dst.String())
	}
	prog := newMailProgress(e.stderr)
	stopProg := func() {}
	if e.g.progress != "none" {
		c.OnEvent = prog.event
		stopProg = prog.start()
	}
	started := time.Now()
	var stats *imapcopy.Stats
	if f.verifyOnly {
		stats, err = c.Verify(ctx, dst, src)
	} else {
		stats, err = c.Copy(ctx, dst, src)
	}
	stopProg()
	// A run that failed before listing a folder has no table to show.
	if stats != nil && (err == nil || len(stats.Folders) > 0) {
		stats.WriteText(e.stdout)
	}
	ok := err == nil && stats != nil && mailOK(stats, f.dryRun)
	if f.reportPath != "" && stats != nil {
		rep := mailReport{Version: 1, Kind: "mail", Started: started.UTC(), Finished: time.Now().UTC(), OK: ok, Stats: stats}
		if !f.dryRun {
			rep.Proof = c.Proof()
		}
		if err != nil {
			rep.Error = err.Error()
		}
		if werr := writeJSONFile(f.reportPath, rep); werr != nil && err == nil {
			return werr
		}
	}
	if err != nil {
		return err // exitCode and describe read the chain
	}
	if !ok {
		return errPartial
	}
	return nil
}

// mailOK is Stats.OK, except that a dry run has nothing to verify.
func mailOK(s *imapcopy.Stats, dryRun bool) bool {
	if !dryRun {
		return s.OK()
	}
	for _, fs := range s.Folders {
		if fs.Err != "" || len(fs.Failed) > 0 || len(fs.SkippedItems) > 0 {
			return false
		}
	}
	return true
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("mail: report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("mail: write report: %w", err)
	}
	return nil
}

// mailProgress prints progress lines to stderr: one per finished folder
// and a running total every two seconds.
type mailProgress struct {
	w       io.Writer
	mu      sync.Mutex
	copied  atomic.Int64
	bytes   atomic.Int64
	printed int64
}

func newMailProgress(w io.Writer) *mailProgress { return &mailProgress{w: w} }

func (p *mailProgress) event(ev imapcopy.Event) {
	switch ev := ev.(type) {
	case imapcopy.MessageCopied:
		p.copied.Add(1)
		p.bytes.Add(ev.Bytes)
	case imapcopy.MessageSkipped:
		p.line("mail: %s uid %d skipped: %s", ev.Folder, ev.UID, ev.Reason)
	case imapcopy.MessageFailed:
		p.line("mail: %s uid %d failed: %v", ev.Folder, ev.UID, ev.Err)
	case imapcopy.KeywordsChanged:
		var l []string
		for _, ch := range ev.Changes {
			if ch.To != "" {
				l = append(l, strconv.Quote(ch.From)+"→"+strconv.Quote(ch.To))
			} else {
				l = append(l, strconv.Quote(ch.From)+" dropped")
			}
		}
		p.line("mail: %s uid %d keywords sanitised: %s", ev.Folder, ev.UID, strings.Join(l, ", "))
	case imapcopy.FolderDone:
		s := ev.Stats
		switch {
		case s.Skipped != "":
			p.line("mail: %s skipped: %s", s.Source, s.Skipped)
		case s.Err != "":
			p.line("mail: %s FAILED: %s", s.Source, s.Err)
		case s.Unchanged:
			p.line("mail: %s unchanged", s.Source)
		default:
			p.line("mail: %s done: %d copied, %d already present, %d flag updates", s.Source, s.Copied, s.AlreadyPresent, s.FlagUpdates)
		}
	}
}

func (p *mailProgress) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	termsafe.Fprintf(p.w, format+"\n", args...)
}

func (p *mailProgress) start() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if n := p.copied.Load(); n != p.printed {
					p.printed = n
					p.line("mail: %d messages copied (%.1f MB)", n, float64(p.bytes.Load())/1e6)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
