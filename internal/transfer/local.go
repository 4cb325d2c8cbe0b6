package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// LocalCopy copies the tree src into dst in pure Go, for a local source
// when rsync is not installed. Like rsync -a it keeps modes and
// modification times and skips files whose size and time already match.
// An interrupted file is kept in PartialDir and the next call appends to
// it. onProgress, when set, is called with cumulative progress.
func LocalCopy(ctx context.Context, src, dst string, onProgress func(Progress)) (Stats, error) {
	var st Stats
	type file struct {
		rel  string
		info fs.FileInfo
	}
	var files []file
	var dirs []file
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && d.Name() == PartialDir {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, file{rel, fi})
		case d.Type().IsRegular():
			files = append(files, file{rel, fi})
			st.Files++
			st.Bytes += fi.Size()
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("transfer: list %s: %w", src, err)
	}
	st.Dirs = int64(len(dirs))
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(dst, d.rel), 0o700); err != nil {
			return st, fmt.Errorf("transfer: %w", err)
		}
	}
	var done, checked int64
	report := func(extra int64) {
		if onProgress != nil {
			onProgress(Progress{Bytes: done + extra, TotalBytes: st.Bytes, Files: checked, TotalFiles: st.Files})
		}
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		target := filepath.Join(dst, f.rel)
		if fi, err := os.Lstat(target); err == nil && fi.Mode().IsRegular() && fi.Size() == f.info.Size() && fi.ModTime().Equal(f.info.ModTime()) {
			done += f.info.Size()
			checked++
			st.Matched += f.info.Size()
			report(0)
			continue
		}
		n, reused, err := copyFile(ctx, filepath.Join(src, f.rel), target, f.info, func(n int64) { report(n) })
		if err != nil {
			return st, err
		}
		st.Transferred++
		st.TransferredBytes += f.info.Size()
		st.Literal += n
		st.Matched += reused
		done += f.info.Size()
		checked++
		report(0)
	}
	// Directory times last: writing files into them changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		p := filepath.Join(dst, d.rel)
		_ = os.Chmod(p, d.info.Mode().Perm())
		_ = os.Chtimes(p, time.Now(), d.info.ModTime())
	}
	return st, nil
}

// copyFile copies one file through PartialDir next to target, resuming
// from a partial copy there, and renames it into place. It returns the
// bytes written and the bytes reused from the partial copy.
func copyFile(ctx context.Context, src, target string, fi fs.FileInfo, progress func(int64)) (written, reused int64, err error) {
	pdir := filepath.Join(filepath.Dir(target), PartialDir)
	if err := os.MkdirAll(pdir, 0o700); err != nil {
		return 0, 0, fmt.Errorf("transfer: %w", err)
	}
	partial := filepath.Join(pdir, filepath.Base(target))
	in, err := os.Open(src)
	if err != nil {
		return 0, 0, fmt.Errorf("transfer: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return 0, 0, fmt.Errorf("transfer: %w", err)
	}
	defer out.Close()
	if pi, err := out.Stat(); err == nil && pi.Size() > 0 && pi.Size() <= fi.Size() {
		reused = pi.Size()
	}
	if err := out.Truncate(reused); err != nil {
		return 0, 0, fmt.Errorf("transfer: %w", err)
	}
	if _, err := in.Seek(reused, io.SeekStart); err != nil {
		return 0, 0, fmt.Errorf("transfer: %w", err)
	}
	if _, err := out.Seek(reused, io.SeekStart); err != nil {
		return 0, 0, fmt.Errorf("transfer: %w", err)
	}
	buf := make([]byte, 256*1024)
	for {
		if err := ctx.Err(); err != nil {
			return written, reused, err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return written, reused, fmt.Errorf("transfer: %w", err)
			}
			written += int64(n)
			progress(reused + written)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return written, reused, fmt.Errorf("transfer: %w", rerr)
		}
	}
	if err := out.Sync(); err != nil {
		return written, reused, fmt.Errorf("transfer: %w", err)
	}
	if err := out.Close(); err != nil {
		return written, reused, fmt.Errorf("transfer: %w", err)
	}
	if err := os.Chmod(partial, fi.Mode().Perm()); err != nil {
		return written, reused, fmt.Errorf("transfer: %w", err)
	}
	if err := os.Chtimes(partial, time.Now(), fi.ModTime()); err != nil {
		return written, reused, fmt.Errorf("transfer: %w", err)
	}
	if err := os.Rename(partial, target); err != nil {
		return written, reused, fmt.Errorf("transfer: %w", err)
	}
	_ = os.Remove(pdir) // only when empty
	return written, reused, nil
}

// Compare checks a local copy in pure Go: the same regular files with the
// same sizes and modification times (or the same SHA-256 when checksum is
// true) on both sides, nothing extra at the destination.
func Compare(ctx context.Context, src, dst string, checksum bool) (*Verification, error) {
	list := func(root string) (map[string]fs.FileInfo, error) {
		m := map[string]fs.FileInfo{}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
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
			rel, _ := filepath.Rel(root, path)
			m[filepath.ToSlash(rel)] = fi
			return nil
		})
		return m, err
	}
	sm, err := list(src)
	if err != nil {
		return nil, fmt.Errorf("transfer: list %s: %w", src, err)
	}
	dm, err := list(dst)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("transfer: list %s: %w", dst, err)
	}
	v := &Verification{Checksum: checksum}
	for rel, fi := range sm {
		v.SourceFiles++
		v.SourceBytes += fi.Size()
		di, ok := dm[rel]
		switch {
		case !ok || di.Size() != fi.Size():
			v.Differ = append(v.Differ, rel)
		case checksum:
			same, err := sameContent(ctx, filepath.Join(src, rel), filepath.Join(dst, rel))
			if err != nil {
				return nil, err
			}
			if !same {
				v.Differ = append(v.Differ, rel)
			}
		case !di.ModTime().Equal(fi.ModTime()):
			v.Differ = append(v.Differ, rel)
		}
	}
	for rel, fi := range dm {
		v.DestFiles++
		v.DestBytes += fi.Size()
		if _, ok := sm[rel]; !ok {
			v.Extra = append(v.Extra, rel)
		}
	}
	sort.Strings(v.Differ)
	sort.Strings(v.Extra)
	return v, nil
}

func sameContent(ctx context.Context, a, b string) (bool, error) {
	sum := func(p string) ([]byte, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("transfer: %w", err)
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
			return nil, fmt.Errorf("transfer: %s: %w", p, err)
		}
		return h.Sum(nil), nil
	}
	x, err := sum(a)
	if err != nil {
		return false, err
	}
	y, err := sum(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// TreeSum returns the SHA-256 of every regular file under dir by slash
// path, leaving out PartialDir: for tests and for an administrator's
// spot check.
func TreeSum(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == PartialDir {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = fmt.Sprintf("%x", h.Sum(nil))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("transfer: %w", err)
	}
	return out, nil
}

// hasControl reports whether s holds a NUL or line break.
func hasControl(s string) bool { return strings.ContainsAny(s, "\x00\n\r") }

// RemovePartials removes the PartialDir directories under dir: after a
// complete, verified copy they hold only the temporary files of transfers
// that were killed outright (rsync could not keep them as partial files),
// which nothing will resume. It returns how many it removed.
func RemovePartials(dir string) (int, error) {
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == PartialDir {
			found = append(found, path)
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("transfer: %w", err)
	}
	for _, p := range found {
		if err := os.RemoveAll(p); err != nil {
			return 0, fmt.Errorf("transfer: %w", err)
		}
	}
	return len(found), nil
}
