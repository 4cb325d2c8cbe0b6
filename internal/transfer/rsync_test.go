package transfer

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zxmigrate/zxmigrate/internal/testssh"
	"github.com/zxmigrate/zxmigrate/retry"
)

// needRsync skips without rsync, or fails when CI is set.
func needRsync(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("rsync"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("rsync not installed (required in CI): %v", err)
		}
		t.Skipf("rsync not installed: %v", err)
	}
}

// writeTree makes a small export-like tree with one big file of size big.
func writeTree(t testing.TB, dir string, big int64) {
	t.Helper()
	files := map[string]int{
		"map_0a1b2c":                      64,
		"accounts/0001/account_info":      300,
		"accounts/0002/account_info":      280,
		"items/00/257":                    5000,
		"items/01/258":                    7000,
		"servers/customizations.tar.gz":   12000,
		"accounts/0002/items/05/105.meta": 10,
	}
	for name, n := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if big > 0 {
		f, err := os.Create(filepath.Join(dir, "items", "ff", "blob.big"))
		if err != nil {
			if err := os.MkdirAll(filepath.Join(dir, "items", "ff"), 0o700); err != nil {
				t.Fatal(err)
			}
			f, err = os.Create(filepath.Join(dir, "items", "ff", "blob.big"))
			if err != nil {
				t.Fatal(err)
			}
		}
		b := make([]byte, 1<<20)
		for left := big; left > 0; left -= int64(len(b)) {
			rand.Read(b)
			if _, err := f.Write(b[:min(int64(len(b)), left)]); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func sameTrees(t *testing.T, a, b string) {
	t.Helper()
	x, err := TreeSum(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := TreeSum(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(x, y); diff != "" {
		t.Fatalf("trees differ (-source +destination):\n%s", diff)
	}
}

func remote(s *testssh.Server) *Remote {
	return &Remote{Addr: s.Addr, User: s.User, KnownHostsFile: s.KnownHosts, KeyFiles: []string{s.ClientKey}}
}

func TestRsyncOverSSH(t *testing.T) {
	needRsync(t)
	sshd := testssh.Start(t)
	// A space and a quote in the source path: they must reach the remote
	// rsync unchanged.
	src, dst := filepath.Join(t.TempDir(), "old zimbra's export"), filepath.Join(t.TempDir(), "export")
	writeTree(t, src, 3<<20)
	r := &Rsync{Remote: remote(sshd), Source: src, Dest: dst}
	ctx := context.Background()
	if err := r.Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}
	scan, err := r.Scan(ctx)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if scan.Files != 8 || scan.Bytes != 3<<20+64+300+280+5000+7000+12000+10 {
		t.Fatalf("scan = %+v", scan)
	}
	var mu sync.Mutex
	var last Progress
	st, attempts, err := r.Copy(ctx, func(p Progress) { mu.Lock(); last = p; mu.Unlock() })
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if attempts != 1 || st.Transferred != 8 || st.Bytes != scan.Bytes {
		t.Errorf("copy stats = %+v after %d attempts", st, attempts)
	}
	if last.Bytes != scan.Bytes || last.TotalFiles == 0 || last.Files != last.TotalFiles {
		t.Errorf("last progress = %+v, want %d bytes and all files", last, scan.Bytes)
	}
	sameTrees(t, src, dst)
	for _, sum := range []bool{false, true} {
		v, err := r.Verify(ctx, sum)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if !v.OK() || v.DestFiles != 8 || v.DestBytes != scan.Bytes {
			t.Fatalf("verify(checksum %v) = %+v: %s", sum, v, v.Problem())
		}
	}

	// Same size, same time, one byte changed: only the checksum sees it.
	p := filepath.Join(dst, "items", "00", "257")
	fi, _ := os.Stat(p)
	b, _ := os.ReadFile(p)
	b[100] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	if v, err := r.Verify(ctx, false); err != nil || !v.OK() {
		t.Fatalf("size check = %+v, %v; want OK (it cannot see content)", v, err)
	}
	v, err := r.Verify(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() || len(v.Differ) != 1 || v.Differ[0] != "items/00/257" {
		t.Fatalf("checksum verify = %+v, want items/00/257 different", v)
	}
	// A file only the destination has, and one missing.
	os.WriteFile(filepath.Join(dst, "stale.bin"), []byte("old"), 0o600)
	os.Remove(filepath.Join(dst, "map_0a1b2c"))
	v, err = r.Verify(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() || len(v.Extra) != 1 || v.Extra[0] != "stale.bin" || len(v.Differ) != 1 || v.Differ[0] != "map_0a1b2c" {
		t.Fatalf("verify = %+v; want stale.bin extra and map_0a1b2c missing", v)
	}
	if !strings.Contains(v.Problem(), "stale.bin") {
		t.Errorf("problem %q does not name the extra file", v.Problem())
	}
}

// rsyncChildren returns the process ids of this process's rsync children.
func rsyncChildren() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	me := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(rsync") {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(me) {
			out = append(out, pid)
		}
	}
	return out
}

// TestRsyncResumesAfterKill kills rsync's process group in the middle of a
// 24 MiB file (at 4 MiB/s) and checks that Copy runs it again, that the
// second run reuses the partial file instead of starting from zero, and
// that the copy ends complete.
func TestRsyncResumesAfterKill(t *testing.T) {
	needRsync(t)
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to find rsync")
	}
	sshd := testssh.Start(t)
	src, dst := t.TempDir(), t.TempDir()
	const big = 24 << 20
	writeTree(t, src, big)
	r := &Rsync{Remote: remote(sshd), Source: src, Dest: dst, BWLimit: 4096, Attempts: 3}
	var once sync.Once
	killed := make(chan int64, 1)
	var mu sync.Mutex
	var maxBefore int64
	st, attempts, err := r.Copy(context.Background(), func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-killed:
			return
		default:
		}
		if p.Bytes > maxBefore {
			maxBefore = p.Bytes
		}
		if p.Bytes < 6<<20 {
			return
		}
		once.Do(func() {
			for _, pid := range rsyncChildren() {
				syscall.Kill(-pid, syscall.SIGTERM)
			}
			killed <- p.Bytes
			close(killed)
		})
	})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if attempts < 2 {
		t.Fatalf("copy finished in %d attempt(s): rsync was not interrupted", attempts)
	}
	sameTrees(t, src, dst)
	// The first run sent at least 6 MiB of the big file; the second run
	// found that much in the partial file and did not send it again.
	if st.Matched < 4<<20 {
		t.Errorf("matched data %d bytes, want the partial file reused (>= 4 MiB); stats %+v", st.Matched, st)
	}
	if st.Literal > big+(1<<20) {
		t.Errorf("literal data %d bytes: the big file was sent twice; stats %+v", st.Literal, st)
	}
	t.Logf("interrupted at %d bytes; %d attempts; literal %d, matched %d", maxBefore, attempts, st.Literal, st.Matched)
	if _, err := os.Stat(filepath.Join(dst, "items", "ff", PartialDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial directory left behind: %v", err)
	}
}

// TestRsyncResumesAfterCancel cancels the context in the middle of the big
// file (as a stopped run does), then runs Copy again: the partial file
// survives the cancellation and the second call reuses it.
func TestRsyncResumesAfterCancel(t *testing.T) {
	needRsync(t)
	sshd := testssh.Start(t)
	src, dst := t.TempDir(), t.TempDir()
	const big = 24 << 20
	writeTree(t, src, big)
	r := &Rsync{Remote: remote(sshd), Source: src, Dest: dst, BWLimit: 4096}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, err := r.Copy(ctx, func(p Progress) {
		if p.Bytes >= 6<<20 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
	partial := filepath.Join(dst, "items", "ff", PartialDir, "blob.big")
	fi, err := os.Stat(partial)
	if err != nil {
		t.Fatalf("no partial file after cancel: %v", err)
	}
	if fi.Size() < 4<<20 || fi.Size() >= big {
		t.Fatalf("partial file has %d bytes", fi.Size())
	}
	r.BWLimit = 0
	st, _, err := r.Copy(context.Background(), nil)
	if err != nil {
		t.Fatalf("resumed copy: %v", err)
	}
	sameTrees(t, src, dst)
	if st.Matched < fi.Size()-(1<<20) {
		t.Errorf("resumed copy matched %d bytes, the partial file had %d: restarted from zero", st.Matched, fi.Size())
	}
}

func TestRsyncHostKeyMismatch(t *testing.T) {
	needRsync(t)
	sshd := testssh.Start(t)
	other := testssh.NewKey(t, filepath.Join(t.TempDir(), "other"))
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := testssh.WriteKnownHosts(kh, sshd.Addr, other); err != nil {
		t.Fatal(err)
	}
	rm := remote(sshd)
	rm.KnownHostsFile = kh
	src := t.TempDir()
	writeTree(t, src, 0)
	r := &Rsync{Remote: rm, Source: src, Dest: t.TempDir()}
	err := r.Check(context.Background())
	var xe *ExitError
	if !errors.As(err, &xe) || xe.Transient() || !strings.Contains(err.Error(), "Host key verification failed") ||
		!errors.Is(err, retry.ErrAuth) || retry.Classify(err) != retry.Fatal {
		t.Fatalf("check with a wrong host key = %v; want a fatal host key failure", err)
	}
	// Nothing listens: transient (the host is unreachable).
	closed := *rm
	closed.Addr = "127.0.0.1:1"
	err = (&Rsync{Remote: &closed, Source: src, Dest: t.TempDir()}).Check(context.Background())
	if !errors.As(err, &xe) || retry.Classify(err) != retry.Transient || errors.Is(err, retry.ErrAuth) {
		t.Fatalf("check of a closed port = %v; want a transient failure", err)
	}
	_, attempts, err := r.Copy(context.Background(), nil)
	if err == nil || attempts != 1 {
		t.Fatalf("copy with a wrong host key = %v after %d attempts; want one failed attempt", err, attempts)
	}
}

func TestLocalRsyncAndGoCopy(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, 2<<20)
	t.Run("rsync", func(t *testing.T) {
		needRsync(t)
		dst := t.TempDir()
		r := &Rsync{Source: src, Dest: dst}
		if _, _, err := r.Copy(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		sameTrees(t, src, dst)
		v, err := r.Verify(context.Background(), true)
		if err != nil || !v.OK() {
			t.Fatalf("verify = %+v, %v", v, err)
		}
	})
	t.Run("go", func(t *testing.T) {
		dst := t.TempDir()
		// A partial copy of the big file from an interrupted run.
		big, _ := os.ReadFile(filepath.Join(src, "items", "ff", "blob.big"))
		pdir := filepath.Join(dst, "items", "ff", PartialDir)
		os.MkdirAll(pdir, 0o700)
		os.WriteFile(filepath.Join(pdir, "blob.big"), big[:1<<20], 0o600)
		var last Progress
		st, err := LocalCopy(context.Background(), src, dst, func(p Progress) { last = p })
		if err != nil {
			t.Fatal(err)
		}
		sameTrees(t, src, dst)
		if st.Matched != 1<<20 || st.Transferred != 8 {
			t.Errorf("stats = %+v; want the 1 MiB partial reused and 8 files written", st)
		}
		if last.Bytes != st.Bytes || last.Files != 8 {
			t.Errorf("last progress %+v", last)
		}
		for _, sum := range []bool{false, true} {
			v, err := Compare(context.Background(), src, dst, sum)
			if err != nil || !v.OK() {
				t.Fatalf("compare = %+v, %v", v, err)
			}
		}
		// A second copy finds everything present.
		st, err = LocalCopy(context.Background(), src, dst, nil)
		if err != nil || st.Transferred != 0 {
			t.Fatalf("second copy = %+v, %v; want nothing transferred", st, err)
		}
		os.WriteFile(filepath.Join(dst, "extra"), []byte("x"), 0o600)
		v, err := Compare(context.Background(), src, dst, false)
		if err != nil || v.OK() || len(v.Extra) != 1 {
			t.Fatalf("compare with an extra file = %+v, %v", v, err)
		}
		// A killed transfer's leftover temporary file.
		junk := filepath.Join(dst, "items", PartialDir)
		os.MkdirAll(junk, 0o700)
		os.WriteFile(filepath.Join(junk, ".blob.big.Xy12Ab"), []byte("half"), 0o600)
		if n, err := RemovePartials(dst); err != nil || n != 1 {
			t.Fatalf("RemovePartials = %d, %v", n, err)
		}
		if _, err := os.Stat(junk); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("partial directory still there: %v", err)
		}
	})
}

// TestRsyncChown gives the copy another owner (rsync --chown), as a root
// transfer does for the zextras user that reads the export.
func TestRsyncChown(t *testing.T) {
	needRsync(t)
	if os.Geteuid() != 0 {
		t.Skip("--chown needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Skip("no group of nobody")
	}
	src, dst := t.TempDir(), t.TempDir()
	writeTree(t, src, 0)
	r := &Rsync{Source: src, Dest: dst, Chown: "nobody:" + g.Name}
	if _, _, err := r.Copy(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dst, "accounts", "0001", "account_info"))
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || strconv.Itoa(int(st.Uid)) != u.Uid {
		t.Errorf("owner of the copy = %v, want nobody (%s)", fi.Sys(), u.Uid)
	}
	if v, err := r.Verify(context.Background(), false); err != nil || !v.OK() || len(v.Attrs) != 0 {
		t.Errorf("verify after chown = %+v, %v", v, err)
	}
}
