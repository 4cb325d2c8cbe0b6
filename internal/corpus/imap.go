package corpus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// appendWindow is how many APPENDs SeedIMAP keeps in flight on the one
// connection (pipelining; go-imap waits for the continuation when the server
// lacks LITERAL+).
const appendWindow = 16

// SeedIMAP stores mb on an authenticated IMAP connection: it reads the
// server's hierarchy separator with LIST, creates the missing folders
// (parents first; \Noselect folders are not created, so that the server
// makes them implicit parents), sets subscriptions, and APPENDs every
// message with its flags and INTERNALDATE, in order, pipelining a few
// APPENDs. Per-folder and per-message problems do not stop the others; they
// are returned joined, each naming the item. Messages containing a NUL byte
// are not sent (go-imap cannot APPEND them) and are reported. Cancelling ctx
// closes the connection.
func SeedIMAP(ctx context.Context, c *imapclient.Client, mb Mailbox) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	delim, existing, err := listNames(c)
	if err != nil {
		return err
	}
	var errs []error
	serverName := func(name string) (string, error) {
		if delim == '/' || delim == 0 {
			return name, nil
		}
		parts := strings.Split(name, "/")
		for _, p := range parts {
			if strings.ContainsRune(p, delim) {
				return "", fmt.Errorf("corpus: folder %q: name contains the server separator %q", name, delim)
			}
		}
		return strings.Join(parts, string(delim)), nil
	}
	ok := map[string]string{} // corpus name → server name, for folders we can use
	for _, f := range mb.Folders {
		name, err := serverName(f.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok[f.Name] = name
		if f.NoSelect {
			continue
		}
		if !existing[folderKey(name)] {
			if err := c.Create(name, nil).Wait(); err != nil {
				errs = append(errs, fmt.Errorf("corpus: create %q: %w", f.Name, err))
				delete(ok, f.Name)
				continue
			}
		}
		var err2 error
		if f.Subscribed {
			err2 = c.Subscribe(name).Wait()
		} else if existing[folderKey(name)] {
			err2 = c.Unsubscribe(name).Wait()
		}
		if err2 != nil && f.Subscribed {
			errs = append(errs, fmt.Errorf("corpus: subscribe %q: %w", f.Name, err2))
		}
	}

	type pending struct {
		cmd  *imapclient.AppendCommand
		what string
	}
	var inflight []pending
	wait := func(p pending) {
		if _, err := p.cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("corpus: append %s: %w", p.what, err))
		}
	}
	for i := range mb.Messages {
		m := &mb.Messages[i]
		what := fmt.Sprintf("message %d to %q", i, m.Folder)
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("corpus: seed: %w", err))
			break
		}
		name, found := ok[m.Folder]
		if !found {
			if _, known := folderIndex(mb.Folders, m.Folder); !known {
				errs = append(errs, fmt.Errorf("corpus: append %s: folder not in the folder list", what))
			}
			continue
		}
		if bytes.IndexByte(m.Raw, 0) >= 0 {
			errs = append(errs, fmt.Errorf("corpus: append %s: contains a NUL byte, not sent", what))
			continue
		}
		flags := make([]imap.Flag, 0, len(m.Flags))
		for _, f := range m.Flags {
			flags = append(flags, imap.Flag(f))
		}
		cmd := c.Append(name, int64(len(m.Raw)), &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
		_, werr := cmd.Write(m.Raw)
		cerr := cmd.Close()
		inflight = append(inflight, pending{cmd, what})
		if werr != nil || cerr != nil {
			errs = append(errs, fmt.Errorf("corpus: append %s: %w", what, errors.Join(werr, cerr)))
			break // the connection is gone
		}
		if len(inflight) >= appendWindow {
			wait(inflight[0])
			inflight = inflight[1:]
		}
	}
	for _, p := range inflight {
		wait(p)
	}
	return errors.Join(errs...)
}

func folderIndex(fs []Folder, name string) (int, bool) {
	for i, f := range fs {
		if f.Name == name {
			return i, true
		}
	}
	return -1, false
}

// listNames returns the hierarchy separator and the existing mailboxes.
func listNames(c *imapclient.Client) (rune, map[string]bool, error) {
	data, err := c.List("", "*", nil).Collect()
	if err != nil {
		return 0, nil, fmt.Errorf("corpus: list: %w", err)
	}
	existing := map[string]bool{}
	var delim rune
	for _, d := range data {
		existing[folderKey(d.Mailbox)] = true
		if d.Delim != 0 {
			delim = d.Delim
		}
	}
	if delim == 0 {
		root, err := c.List("", "", nil).Collect()
		if err != nil {
			return 0, nil, fmt.Errorf("corpus: list: %w", err)
		}
		for _, d := range root {
			if d.Delim != 0 {
				delim = d.Delim
			}
		}
	}
	return delim, existing, nil
}

// SnapshotIMAP reads everything on an authenticated IMAP connection into a
// Mailbox: folder names mapped to the '/' separator, subscriptions and
// special use (LIST RETURN (SUBSCRIBED SPECIAL-USE); the server must support
// LIST-EXTENDED or IMAP4rev2), \Noselect (also for \NonExistent parents),
// and per selectable folder, in UID order, the exact BODY.PEEK[] bytes,
// flags without \Recent (system flags in canonical case), and INTERNALDATE.
// Folders are sorted by name. Mailboxes are EXAMINEd, so nothing changes.
func SnapshotIMAP(ctx context.Context, c *imapclient.Client) (Mailbox, error) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var mb Mailbox
	caps := c.Caps()
	if !caps.Has(imap.CapListExtended) {
		return mb, errors.New("corpus: snapshot: the server supports neither LIST-EXTENDED nor IMAP4rev2; subscriptions cannot be read")
	}
	opts := &imap.ListOptions{ReturnSubscribed: true, ReturnSpecialUse: caps.Has(imap.CapSpecialUse)}
	data, err := c.List("", "*", opts).Collect()
	if err != nil {
		return mb, fmt.Errorf("corpus: snapshot: list: %w", err)
	}
	type box struct {
		server string
		f      Folder
	}
	var boxes []box
	for _, d := range data {
		name := d.Mailbox
		if d.Delim != 0 && d.Delim != '/' {
			name = strings.ReplaceAll(name, string(d.Delim), "/")
		}
		if strings.EqualFold(name, "INBOX") {
			name = "INBOX"
		}
		f := Folder{Name: name}
		for _, a := range d.Attrs {
			switch imap.MailboxAttr(strings.ToLower(string(a))) {
			case "\\noselect", "\\nonexistent":
				f.NoSelect = true
			case "\\subscribed":
				f.Subscribed = true
			case "\\sent", "\\drafts", "\\trash", "\\junk", "\\archive", "\\all", "\\flagged", "\\important":
				f.SpecialUse = canonicalAttr(a)
			}
		}
		boxes = append(boxes, box{d.Mailbox, f})
	}
	sort.Slice(boxes, func(i, j int) bool { return boxes[i].f.Name < boxes[j].f.Name })
	for _, b := range boxes {
		mb.Folders = append(mb.Folders, b.f)
		if b.f.NoSelect {
			continue
		}
		msgs, err := snapshotFolder(c, b.server, b.f.Name)
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("corpus: snapshot: %w", ctx.Err())
			}
			return mb, err
		}
		mb.Messages = append(mb.Messages, msgs...)
	}
	return mb, nil
}

func canonicalAttr(a imap.MailboxAttr) string {
	s := strings.ToLower(string(a))
	return `\` + strings.ToUpper(s[1:2]) + s[2:]
}

func snapshotFolder(c *imapclient.Client, server, name string) ([]Message, error) {
	sel, err := c.Select(server, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("corpus: snapshot: examine %q: %w", name, err)
	}
	if c.Caps().Has(imap.CapUnselect) {
		defer func() { c.Unselect().Wait() }()
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	body := &imap.FetchItemBodySection{Peek: true}
	var set imap.UIDSet
	set.AddRange(1, 0) // 1:*
	cmd := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{body}})
	type uidMsg struct {
		uid imap.UID
		m   Message
	}
	var out []uidMsg
	for {
		md := cmd.Next()
		if md == nil {
			break
		}
		buf, err := md.Collect()
		if err != nil {
			cmd.Close()
			return nil, fmt.Errorf("corpus: snapshot: fetch %q: %w", name, err)
		}
		m := Message{Folder: name, InternalDate: buf.InternalDate, Raw: buf.FindBodySection(body)}
		if m.Raw == nil {
			m.Raw = []byte{}
		}
		for _, f := range buf.Flags {
			n := string(f)
			if s, ok := systemFlags[strings.ToLower(n)]; ok {
				n = s
			}
			if n == `\Recent` {
				continue
			}
			m.Flags = append(m.Flags, n)
		}
		sort.Strings(m.Flags)
		out = append(out, uidMsg{buf.UID, m})
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("corpus: snapshot: fetch %q: %w", name, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].uid < out[j].uid })
	msgs := make([]Message, len(out))
	for i, u := range out {
		msgs[i] = u.m
	}
	return msgs, nil
}
