package testserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/zxmigrate/zxmigrate/internal/corpus"
	"github.com/zxmigrate/zxmigrate/internal/mutf7"
)

// maildirFlags maps IMAP system flags to maildir info letters.
var maildirFlags = map[string]byte{
	`\draft`:    'D',
	`\flagged`:  'F',
	`\answered`: 'R',
	`\seen`:     'S',
	`\deleted`:  'T',
}

// seedCalls numbers Seed calls so file names never repeat.
var seedCalls atomic.Int64

// Seed stores mb for user by writing maildir files directly, which is much
// faster than APPEND: folders are created (and
// subscribed) with doveadm; \Noselect folders are not created, so that
// Dovecot shows them as implicit parents of their children; messages are
// written in order with their flags, keywords and INTERNALDATE (as the file
// mtime: the instant is kept, the zone becomes the server's), then Dovecot
// indexes them, giving UIDs in corpus order. Raw's
// CRLF line ends are stored as LF, as Dovecot itself stores them, and served
// as CRLF again.
//
// A folder with a special use must be one Dovecot is configured for (see
// SpecialUseFolders); Drafts, Sent, Trash and Junk are always present and
// subscribed. Seeding into folders that already hold messages appends.
func (d *Dovecot) Seed(ctx context.Context, user string, mb corpus.Mailbox) error {
	if _, ok := d.Users[user]; !ok {
		return fmt.Errorf("testserver: %s: seed: no user %q", d.Name, user)
	}
	names := map[string]string{} // corpus name → server name
	serverName := func(name string) (string, error) {
		if s, ok := names[name]; ok {
			return s, nil
		}
		if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
			return "", fmt.Errorf("testserver: %s: seed: folder %q: bad name", d.Name, name)
		}
		s := name
		if d.Separator != '/' {
			if strings.ContainsRune(name, d.Separator) {
				return "", fmt.Errorf("testserver: %s: seed: folder %q contains the server separator %q", d.Name, name, d.Separator)
			}
			s = strings.ReplaceAll(name, "/", string(d.Separator))
		}
		if strings.EqualFold(s, "INBOX") {
			s = "INBOX"
		}
		names[name] = s
		return s, nil
	}

	// Folders: create, subscribe.
	var create, createSub, subscribe, unsubscribe []string
	declared := map[string]bool{}
	for _, f := range mb.Folders {
		s, err := serverName(f.Name)
		if err != nil {
			return err
		}
		declared[f.Name] = true
		if f.SpecialUse != "" {
			top := s
			if want, ok := SpecialUseFolders[top]; !ok || !strings.EqualFold(want, f.SpecialUse) {
				return fmt.Errorf("testserver: %s: seed: folder %q: special use %s is not configured (see SpecialUseFolders)", d.Name, f.Name, f.SpecialUse)
			}
		}
		_, auto := SpecialUseFolders[s]
		auto = auto && s != "Archive"
		switch {
		case f.NoSelect || s == "INBOX" || auto:
			if f.Subscribed {
				subscribe = append(subscribe, s)
			} else if auto {
				unsubscribe = append(unsubscribe, s)
			}
		case f.Subscribed:
			createSub = append(createSub, s)
		default:
			create = append(create, s)
		}
	}
	// Folders that only messages name are created unsubscribed.
	for _, m := range mb.Messages {
		if !declared[m.Folder] {
			s, err := serverName(m.Folder)
			if err != nil {
				return err
			}
			declared[m.Folder] = true
			if s != "INBOX" {
				create = append(create, s)
			}
		}
	}
	// One doveadm run for all folder work; creating a folder that exists
	// is the only error tolerated.
	var batch []string
	addCmd := func(cmd []string, boxes []string) {
		if len(boxes) > 0 {
			batch = append(append(append(batch, ":"), cmd...), boxes...)
		}
	}
	addCmd([]string{"mailbox", "create"}, create)
	addCmd([]string{"mailbox", "create", "-s"}, createSub)
	addCmd([]string{"mailbox", "subscribe"}, subscribe)
	addCmd([]string{"mailbox", "unsubscribe"}, unsubscribe)
	if len(batch) > 0 {
		if _, err := d.Doveadm(ctx, append([]string{"batch", "-u", user}, batch...)...); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.Contains(line, "Error:") && !strings.Contains(line, "Mailbox already exists") {
					return err
				}
			}
		}
	}

	// Messages, grouped by folder, in order.
	byFolder := map[string][]int{}
	var order []string
	for i, m := range mb.Messages {
		s := names[m.Folder]
		if _, ok := byFolder[s]; !ok {
			order = append(order, s)
		}
		byFolder[s] = append(byFolder[s], i)
	}
	call := seedCalls.Add(1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var mu sync.Mutex
	var errs []error
	for _, box := range order {
		g.Go(func() error {
			err := d.seedFolder(gctx, user, box, call, mb.Messages, byFolder[box])
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("testserver: %s: seed: %w", d.Name, err)
	}
	// Index everything now, so that the first client does not pay for it.
	if _, err := d.Doveadm(ctx, "mailbox", "status", "-u", user, "messages", "*"); err != nil {
		return err
	}
	return nil
}

// seedFolder writes the messages idx of msgs into the maildir of box.
func (d *Dovecot) seedFolder(ctx context.Context, user, box string, call int64, msgs []corpus.Message, idx []int) error {
	dir := d.MaildirPath(user, box)
	for _, sub := range []string{"cur", "new", "tmp"} {
		p := filepath.Join(dir, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("testserver: %s: seed %q: %w", d.Name, box, err)
		}
		if err := d.chown(p); err != nil {
			return err
		}
	}
	if err := d.chown(dir); err != nil {
		return err
	}
	kw, err := readKeywords(dir)
	if err != nil {
		return fmt.Errorf("testserver: %s: seed %q: %w", d.Name, box, err)
	}
	kwChanged := false
	pid := os.Getpid()
	var errs []error
	for n, i := range idx {
		if n%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		m := msgs[i]
		flags, added, err := maildirFlagLetters(m.Flags, kw)
		kwChanged = kwChanged || added
		if err != nil {
			errs = append(errs, fmt.Errorf("testserver: %s: seed %q message %d: %w", d.Name, box, n, err))
			continue
		}
		body := bytes.ReplaceAll(m.Raw, []byte("\r\n"), []byte("\n"))
		vsize := len(body) + bytes.Count(body, []byte("\n"))
		name := fmt.Sprintf("%d.M%dP%dQ%d.zxm,S=%d,W=%d:2,%s", 1000000000+n, n, pid, call, len(body), vsize, flags)
		p := filepath.Join(dir, "cur", name)
		if err := os.WriteFile(p, body, 0o600); err != nil {
			return fmt.Errorf("testserver: %s: seed %q: %w", d.Name, box, err)
		}
		if err := d.chown(p); err != nil {
			return err
		}
		if !m.InternalDate.IsZero() {
			if err := os.Chtimes(p, m.InternalDate, m.InternalDate); err != nil {
				return fmt.Errorf("testserver: %s: seed %q: %w", d.Name, box, err)
			}
		}
	}
	if kwChanged {
		p := filepath.Join(dir, "dovecot-keywords")
		if err := os.WriteFile(p, kw.bytes(), 0o600); err != nil {
			return fmt.Errorf("testserver: %s: seed %q: %w", d.Name, box, err)
		}
		if err := d.chown(p); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// MaildirPath returns the maildir directory of the folder box (a server
// name, with Separator) of user, as Dovecot lays it out: INBOX is the
// Maildir itself; with '/' (LAYOUT=fs) folders are nested directories; with
// '.' (maildir++) they are ".a.b" directories. Names are stored in modified
// UTF-7.
func (d *Dovecot) MaildirPath(user, box string) string {
	root := filepath.Join(d.UserDir(user), "Maildir")
	if strings.EqualFold(box, "INBOX") {
		return root
	}
	enc := mutf7.Encode(box)
	if d.Separator == '/' {
		return filepath.Join(root, filepath.FromSlash(enc))
	}
	return filepath.Join(root, "."+enc)
}

func (d *Dovecot) chown(path string) error {
	if d.mailUID < 0 {
		return nil
	}
	if err := os.Lchown(path, d.mailUID, d.mailUID); err != nil {
		return fmt.Errorf("testserver: %s: %w", d.Name, err)
	}
	return nil
}

// maildirFlagLetters returns the sorted info letters for flags: system
// flags as maildir letters, keywords as the letters of kw (new keywords are
// added to kw; added reports that).
func maildirFlagLetters(flags []string, kw *keywords) (letters string, added bool, err error) {
	var b []byte
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			c, ok := maildirFlags[strings.ToLower(f)]
			if !ok {
				return "", added, fmt.Errorf("unknown system flag %q", f)
			}
			b = append(b, c)
			continue
		}
		if !validAtom(f) {
			return "", added, fmt.Errorf("keyword %q is not an IMAP atom", f)
		}
		k, isNew, err := kw.index(f)
		if err != nil {
			return "", added, err
		}
		added = added || isNew
		b = append(b, byte('a'+k))
	}
	return string(sortedUnique(b)), added, nil
}

// validAtom reports whether s can be sent as an IMAP flag atom.
func validAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func sortedUnique(b []byte) []byte {
	var seen [256]bool
	for _, c := range b {
		seen[c] = true
	}
	var out []byte
	for c := range seen {
		if seen[c] {
			out = append(out, byte(c))
		}
	}
	return out
}

// keywords is a maildir's dovecot-keywords file: index → name.
type keywords struct {
	names []string // position = letter index; "" = free
}

func readKeywords(dir string) (*keywords, error) {
	kw := &keywords{}
	b, err := os.ReadFile(filepath.Join(dir, "dovecot-keywords"))
	if errors.Is(err, os.ErrNotExist) {
		return kw, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		num, name, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(num)
		if err != nil || i < 0 || i >= 26 {
			continue
		}
		for len(kw.names) <= i {
			kw.names = append(kw.names, "")
		}
		kw.names[i] = name
	}
	return kw, nil
}

// index returns the letter index of name, adding it when new.
func (kw *keywords) index(name string) (int, bool, error) {
	for i, n := range kw.names {
		if strings.EqualFold(n, name) {
			return i, false, nil
		}
	}
	for i, n := range kw.names {
		if n == "" {
			kw.names[i] = name
			return i, true, nil
		}
	}
	if len(kw.names) >= 26 {
		return 0, false, fmt.Errorf("keyword %q: maildir allows at most 26 keywords per folder", name)
	}
	kw.names = append(kw.names, name)
	return len(kw.names) - 1, true, nil
}

func (kw *keywords) bytes() []byte {
	var b bytes.Buffer
	for i, n := range kw.names {
		if n != "" {
			fmt.Fprintf(&b, "%d %s\n", i, n)
		}
	}
	return b.Bytes()
}

// Snapshot reads back everything user has, over IMAP as the master user,
// with corpus.SnapshotIMAP: folders with '/' as separator whatever
// Separator is, subscriptions, \Noselect, special use, and per folder in UID
// order the exact BODY[] bytes, flags and keywords, and INTERNALDATE.
func (d *Dovecot) Snapshot(ctx context.Context, user string) (corpus.Mailbox, error) {
	c, err := d.DialMaster(user)
	if err != nil {
		return corpus.Mailbox{}, err
	}
	defer c.Close()
	mb, err := corpus.SnapshotIMAP(ctx, c)
	if err != nil {
		return mb, fmt.Errorf("testserver: %s: snapshot %q: %w", d.Name, user, err)
	}
	c.Logout().Wait()
	return mb, nil
}
