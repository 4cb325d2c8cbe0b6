package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zxmigrate/zxmigrate/retry"
)

// Remote is the SSH login rsync uses to reach the source host. Host keys
// are always checked (StrictHostKeyChecking=yes); authentication is by key
// (BatchMode=yes: ssh never asks for a password).
type Remote struct {
	// Addr is host or host:port (port 22 when absent).
	Addr string
	// User is the login user; "" means ssh's default.
	User string
	// KnownHostsFile lists the trusted host keys; "" means ssh's default
	// (~/.ssh/known_hosts).
	KnownHostsFile string
	// KeyFiles are private keys to offer; empty means the agent and ssh's
	// default keys.
	KeyFiles []string
	// RunAs, when set and not User, runs the remote rsync through
	// `sudo -n -u RunAs` (e.g. zimbra, who owns the export).
	RunAs string
}

// Rsync copies the directory tree Source into Dest with the rsync program
// on this host. Its fields must not change while a method runs; the
// methods may run one at a time.
type Rsync struct {
	// Program is the rsync program; "" means "rsync" from PATH.
	Program string
	// Remote, when set, is the host Source is on; nil means Source is a
	// local path.
	Remote *Remote
	// Source is the export directory (on the remote host when Remote is
	// set).
	Source string
	// Dest is the local directory the tree is copied into.
	Dest string
	// BWLimit caps the bandwidth in KiB per second (rsync --bwlimit); 0
	// means no limit.
	BWLimit int
	// Chown, when set, gives the copied files this USER:GROUP (rsync
	// --chown; needs root).
	Chown string
	// Attempts is how many times Copy runs rsync when it fails with a
	// transient error (network, timeout, killed); 0 means 3.
	Attempts int
	// Timeout is rsync's I/O timeout; 0 means 10 minutes.
	Timeout time.Duration
	// Logger receives diagnostics; nil is silent.
	Logger *slog.Logger
}

// PartialDir is where rsync keeps interrupted files until they are
// complete (rsync --partial-dir, relative to each destination directory),
// so that an interrupted transfer never leaves a truncated file under its
// final name and the next run resumes from it.
const PartialDir = ".zxmigrate-partial"

func (r *Rsync) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Rsync) program() string {
	if r.Program != "" {
		return r.Program
	}
	return "rsync"
}

// ExitError is rsync (or ssh) ending with an error.
type ExitError struct {
	// Code is rsync's exit status (rsync(1), EXIT VALUES); -1 when killed
	// by a signal.
	Code int
	// Stderr holds the last lines of standard error.
	Stderr string
}

// Error implements error.
func (e *ExitError) Error() string {
	msg := fmt.Sprintf("transfer: rsync: exit status %d", e.Code)
	if e.Code < 0 {
		msg = "transfer: rsync: killed"
	}
	if m := exitMeaning[e.Code]; m != "" {
		msg += " (" + m + ")"
	}
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// exitMeaning names rsync's exit values (rsync(1), EXIT VALUES) and ssh's.
var exitMeaning = map[int]string{
	1: "syntax or usage error", 2: "protocol incompatibility", 3: "errors selecting input/output files, dirs",
	5: "error starting client-server protocol", 10: "error in socket I/O", 11: "error in file I/O",
	12: "error in rsync protocol data stream", 20: "received SIGUSR1 or SIGINT", 23: "partial transfer due to error",
	24: "partial transfer due to vanished source files", 30: "timeout in data send/receive",
	35: "timeout waiting for daemon connection", 127: "rsync not found on the remote host",
	255: "ssh failed: connection, authentication or host key",
}

// Transient reports whether running rsync again may succeed: the
// connection broke, timed out or rsync was killed. A refused host key or
// login is not transient.
func (e *ExitError) Transient() bool {
	if e.refused() {
		return false
	}
	switch e.Code {
	case -1, 10, 12, 20, 30, 35, 255:
		return true
	}
	return false
}

// refused reports an SSH host key or login that was refused.
func (e *ExitError) refused() bool {
	// ssh's own messages; rsync then exits 255 or 12 (the connection
	// closed before the protocol started).
	return strings.Contains(e.Stderr, "Host key verification failed") ||
		strings.Contains(e.Stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED") ||
		strings.Contains(e.Stderr, "Permission denied (publickey")
}

// Is matches retry.ErrAuth when ssh refused the host key or the login.
func (e *ExitError) Is(target error) bool { return target == retry.ErrAuth && e.refused() }

// RetryClass implements retry.Classifier: a refused host key or login is
// fatal, a broken connection transient, anything else permanent.
func (e *ExitError) RetryClass() retry.Class {
	switch {
	case e.refused():
		return retry.Fatal
	case e.Transient():
		return retry.Transient
	}
	return retry.Permanent
}

// rshQuote quotes one word of rsync's -e command, which rsync splits on
// spaces and whose words may be single- or double-quoted (rsync(1), -e).
func rshQuote(s string) (string, error) {
	if s != "" && !strings.ContainsAny(s, " \t'\"") {
		return s, nil
	}
	if !strings.Contains(s, "'") {
		return "'" + s + "'", nil
	}
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`, nil
	}
	return "", fmt.Errorf("transfer: %q holds both kinds of quote", s)
}

// sshArgs returns the ssh command words (program first) and the host as
// rsync names it.
func (m *Remote) sshArgs() (words []string, host string, err error) {
	h, port, err := net.SplitHostPort(m.Addr)
	if err != nil {
		h, port = strings.Trim(m.Addr, "[]"), ""
	}
	if h == "" {
		return nil, "", errors.New("transfer: remote address is empty")
	}
	words = []string{"ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"}
	if m.KnownHostsFile != "" {
		words = append(words, "-o", "UserKnownHostsFile="+m.KnownHostsFile)
	}
	if port != "" {
		words = append(words, "-p", port)
	}
	if len(m.KeyFiles) > 0 {
		words = append(words, "-o", "IdentitiesOnly=yes")
		for _, k := range m.KeyFiles {
			words = append(words, "-i", k)
		}
	}
	if m.User != "" {
		words = append(words, "-l", m.User)
	}
	host = h
	if strings.Contains(h, ":") {
		host = "[" + h + "]"
	}
	return words, host, nil
}

// sshCommand is sshArgs joined for rsync -e.
func (m *Remote) sshCommand() (cmd, host string, err error) {
	words, host, err := m.sshArgs()
	if err != nil {
		return "", "", err
	}
	for i, w := range words {
		if words[i], err = rshQuote(w); err != nil {
			return "", "", err
		}
	}
	return strings.Join(words, " "), host, nil
}

// args builds an rsync command line for the tree: -a, --partial-dir and
// the SSH transport, then extra, then SOURCE/ DEST/.
func (r *Rsync) args(extra ...string) ([]string, error) {
	if r.Source == "" || r.Dest == "" {
		return nil, errors.New("transfer: source and destination paths are required")
	}
	for _, p := range []string{r.Source, r.Dest} {
		if hasControl(p) {
			return nil, fmt.Errorf("transfer: path %q holds a control character", p)
		}
	}
	a := []string{r.program(), "-a", "--partial-dir=" + PartialDir, "--no-human-readable", "--stats"}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	a = append(a, "--timeout="+strconv.Itoa(int(timeout.Seconds())))
	if r.Chown != "" {
		a = append(a, "--chown="+r.Chown)
	}
	src := strings.TrimSuffix(r.Source, "/") + "/"
	if r.Remote != nil {
		rsh, host, err := r.Remote.sshCommand()
		if err != nil {
			return nil, err
		}
		// The remote path travels outside the remote shell's command line
		// (rsync(1), --protect-args, called --secluded-args since 3.2.4):
		// no word splitting or globbing of the export's path.
		a = append(a, "-e", rsh, "--protect-args")
		if r.Remote.RunAs != "" && r.Remote.RunAs != r.Remote.User {
			a = append(a, "--rsync-path=sudo -n -u "+r.Remote.RunAs+" rsync")
		}
		src = host + ":" + src
	} else {
		// Local copies send whole files by default; the delta algorithm
		// lets an interrupted file resume from its partial copy.
		a = append(a, "--no-whole-file")
	}
	a = append(a, extra...)
	return append(a, src, strings.TrimSuffix(r.Dest, "/")+"/"), nil
}

// run runs rsync once. Standard output goes through scanProgress when
// onProgress is set.
func (r *Rsync) run(ctx context.Context, argv []string, onProgress func(Progress)) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	configure(cmd)
	var stderr tailBuffer
	cmd.Stderr = &stderr
	var out bytes.Buffer
	var wg sync.WaitGroup
	if onProgress != nil {
		pr, pw := io.Pipe()
		cmd.Stdout = pw
		wg.Add(1)
		go func() {
			defer wg.Done()
			scanProgress(pr, onProgress, &out)
		}()
	} else {
		cmd.Stdout = &out
	}
	r.log().Debug("transfer: rsync", "argv", strings.Join(argv, " "))
	err := cmd.Run()
	if onProgress != nil {
		cmd.Stdout.(*io.PipeWriter).Close()
		wg.Wait()
	}
	if err != nil {
		if ctx.Err() != nil {
			return out.Bytes(), ctx.Err()
		}
		var xe *exec.ExitError
		if errors.As(err, &xe) {
			return out.Bytes(), &ExitError{Code: xe.ExitCode(), Stderr: stderr.String()}
		}
		return out.Bytes(), fmt.Errorf("transfer: rsync: %w", err)
	}
	return out.Bytes(), nil
}

// Scan lists the source tree without copying (rsync --dry-run --stats):
// its file count and total size.
func (r *Rsync) Scan(ctx context.Context) (Stats, error) {
	argv, err := r.args("--dry-run")
	if err != nil {
		return Stats{}, err
	}
	// The destination may not exist yet; a dry run into a missing
	// directory still lists the source.
	out, err := r.run(ctx, argv, nil)
	if err != nil {
		return Stats{}, err
	}
	s, ok := parseStats(out)
	if !ok {
		return Stats{}, errors.New("transfer: rsync printed no statistics")
	}
	return s, nil
}

// Copy runs rsync until the tree is copied, resuming after transient
// failures (up to Attempts runs). onProgress, when set, is called with
// cumulative progress; it must return quickly. The returned Stats add up
// all runs.
func (r *Rsync) Copy(ctx context.Context, onProgress func(Progress)) (Stats, int, error) {
	if err := os.MkdirAll(r.Dest, 0o700); err != nil {
		return Stats{}, 0, fmt.Errorf("transfer: %w", err)
	}
	extra := []string{"--info=progress2"}
	if r.BWLimit > 0 {
		extra = append(extra, "--bwlimit="+strconv.Itoa(r.BWLimit))
	}
	argv, err := r.args(extra...)
	if err != nil {
		return Stats{}, 0, err
	}
	attempts := r.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	var total Stats
	for i := 1; ; i++ {
		out, err := r.run(ctx, argv, onProgress)
		s, _ := parseStats(out)
		total.Files, total.Dirs, total.Bytes = s.Files, s.Dirs, s.Bytes
		total.Transferred += s.Transferred
		total.TransferredBytes += s.TransferredBytes
		total.Literal += s.Literal
		total.Matched += s.Matched
		if err == nil {
			return total, i, nil
		}
		var xe *ExitError
		if ctx.Err() != nil || !errors.As(err, &xe) || !xe.Transient() || i >= attempts {
			return total, i, err
		}
		r.log().Warn("transfer: rsync failed, resuming", "attempt", i, "err", err)
		t := time.NewTimer(time.Duration(i) * 2 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return total, i, ctx.Err()
		case <-t.C:
		}
	}
}

// Verification is what Verify found.
type Verification struct {
	// Source and Dest count the regular files and their bytes on each
	// side.
	SourceFiles, SourceBytes int64
	DestFiles, DestBytes     int64
	// Checksum is true when file contents were compared by checksum
	// (otherwise by size and modification time).
	Checksum bool
	// Differ lists files whose copy is missing or different; Extra lists
	// files only the destination has; Attrs lists entries whose content
	// matches but whose permissions or times differ.
	Differ, Extra, Attrs []string
}

// OK reports whether the destination holds exactly the source's files.
func (v *Verification) OK() bool {
	return len(v.Differ) == 0 && len(v.Extra) == 0 && v.SourceFiles == v.DestFiles && v.SourceBytes == v.DestBytes
}

// Problem describes what is wrong, or "" when OK.
func (v *Verification) Problem() string {
	var parts []string
	if v.SourceFiles != v.DestFiles || v.SourceBytes != v.DestBytes {
		parts = append(parts, fmt.Sprintf("source has %d files (%d bytes), destination %d files (%d bytes)",
			v.SourceFiles, v.SourceBytes, v.DestFiles, v.DestBytes))
	}
	if len(v.Differ) > 0 {
		how := "size or time"
		if v.Checksum {
			how = "content"
		}
		parts = append(parts, fmt.Sprintf("%d files missing or different in %s (e.g. %s)", len(v.Differ), how, v.Differ[0]))
	}
	if len(v.Extra) > 0 {
		parts = append(parts, fmt.Sprintf("%d files only on the destination (e.g. %s)", len(v.Extra), v.Extra[0]))
	}
	return strings.Join(parts, "; ")
}

// Verify checks the copy: a dry run (with --checksum when checksum is
// true, else rsync's size and time check, with --delete to list files only
// the destination has) must find nothing to transfer, and the regular
// files and bytes counted on the destination must equal the source's.
// It changes nothing.
func (r *Rsync) Verify(ctx context.Context, checksum bool) (*Verification, error) {
	extra := []string{"--dry-run", "--itemize-changes", "--delete"}
	if checksum {
		extra = append(extra, "--checksum")
	}
	argv, err := r.args(extra...)
	if err != nil {
		return nil, err
	}
	out, err := r.run(ctx, argv, nil)
	if err != nil {
		return nil, err
	}
	s, ok := parseStats(out)
	if !ok {
		return nil, errors.New("transfer: rsync printed no statistics")
	}
	v := &Verification{SourceFiles: s.Files, SourceBytes: s.Bytes, Checksum: checksum}
	v.Differ, v.Attrs, v.Extra = itemized(out)
	v.DestFiles, v.DestBytes, err = countTree(r.Dest)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Check makes sure rsync runs here and, for a remote source, that the host
// is reachable with the configured keys and host key and runs rsync too
// (`ssh HOST rsync --version`, through sudo when RunAs is set).
func (r *Rsync) Check(ctx context.Context) error {
	if _, err := exec.LookPath(r.program()); err != nil {
		return fmt.Errorf("transfer: rsync is not installed on this host: %w", err)
	}
	if r.Remote == nil {
		return nil
	}
	words, host, err := r.Remote.sshArgs()
	if err != nil {
		return err
	}
	words = append(words, "-o", "ConnectTimeout=30", strings.Trim(host, "[]"), "--")
	if r.Remote.RunAs != "" && r.Remote.RunAs != r.Remote.User {
		words = append(words, "sudo", "-n", "-u", r.Remote.RunAs)
	}
	words = append(words, "rsync", "--version")
	cmd := exec.CommandContext(ctx, words[0], words[1:]...)
	configure(cmd)
	var stderr tailBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var xe *exec.ExitError
		if errors.As(err, &xe) {
			return &ExitError{Code: xe.ExitCode(), Stderr: stderr.String()}
		}
		return fmt.Errorf("transfer: ssh: %w", err)
	}
	if !bytes.Contains(out, []byte("rsync")) {
		return fmt.Errorf("transfer: %s: `rsync --version` printed no version", r.Remote.Addr)
	}
	return nil
}

// countTree counts the regular files under dir and their bytes, leaving
// out rsync's partial directories.
func countTree(dir string) (files, size int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == PartialDir {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files++
		size += fi.Size()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("transfer: count %s: %w", dir, err)
	}
	return files, size, nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-4096:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(strings.ToValidUTF8(string(t.buf), "?"))
}

// RemoveStaleTemps removes, among extra (paths relative to Dest that only
// the destination has, from Verify), the temporary files of an rsync that
// was killed outright: rsync writes a file as ".NAME.XXXXXX" next to NAME
// and cannot rename or keep it when killed with SIGKILL (rsync(1),
// --temp-dir, --partial). Only names of that form whose NAME exists next
// to them are removed. It returns the paths removed.
func (r *Rsync) RemoveStaleTemps(extra []string) ([]string, error) {
	var removed []string
	for _, rel := range extra {
		if !isStaleTemp(r.Dest, rel) {
			continue
		}
		if err := os.Remove(filepath.Join(r.Dest, filepath.FromSlash(rel))); err != nil {
			return removed, fmt.Errorf("transfer: %w", err)
		}
		removed = append(removed, rel)
	}
	return removed, nil
}

// isStaleTemp reports whether rel (under dest) is named like an rsync
// temporary file of a regular file that exists next to it.
func isStaleTemp(dest, rel string) bool {
	dir, base := path.Split(rel)
	if !strings.HasPrefix(base, ".") || len(base) < len(".x.XXXXXX") {
		return false
	}
	name, suffix := base[1:len(base)-7], base[len(base)-7:]
	if suffix[0] != '.' || name == "" {
		return false
	}
	for _, c := range suffix[1:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	fi, err := os.Lstat(filepath.Join(dest, filepath.FromSlash(dir), name))
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	ti, err := os.Lstat(filepath.Join(dest, filepath.FromSlash(rel)))
	return err == nil && ti.Mode().IsRegular()
}
