package imapcopy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/retry"
	"github.com/zxmigrate/zxmigrate/termsafe"
)

// listSide logs in, reads NAMESPACE, capabilities and one LIST (with
// SUBSCRIBED, SPECIAL-USE and STATUS where offered).
func (s *session) listSide(ctx context.Context, p *pool, isSrc bool) (sideInfo, error) {
	cn, err := p.get(ctx, s.c.maxRepeat())
	if err != nil {
		return sideInfo{}, err
	}
	healthy := false
	defer func() { p.put(cn, healthy) }()
	stop := context.AfterFunc(ctx, func() { cn.Client.Close() })
	defer stop()
	info := sideInfo{caps: cn.Caps(), byName: map[string]*imap.ListData{}}
	t0 := time.Now()
	if err := cn.Noop().Wait(); err != nil {
		return info, connFailure(cn, fmt.Errorf("imapcopy: noop on %s: %w", p.d, err))
	}
	info.rtt = time.Since(t0)
	if lim, ok := cn.Caps().AppendLimit(); ok && lim != nil {
		info.appendLimit = int64(*lim)
	}
	if info.has(imap.CapNamespace) || info.has(imap.CapIMAP4rev2) {
		nd, err := cn.Namespace().Wait()
		if err != nil {
			return info, connFailure(cn, fmt.Errorf("imapcopy: namespace on %s: %w", p.d, err))
		}
		if len(nd.Personal) > 0 {
			info.ns = nsInfo{Prefix: nd.Personal[0].Prefix, Delim: nd.Personal[0].Delim}
		}
	}
	var opts *imap.ListOptions
	if info.has(imap.CapListExtended) || info.has(imap.CapIMAP4rev2) {
		opts = &imap.ListOptions{ReturnSubscribed: true}
		if info.has(imap.CapSpecialUse) {
			opts.ReturnSpecialUse = true
		}
		if info.has(imap.CapListStatus) || info.has(imap.CapIMAP4rev2) {
			opts.ReturnStatus = &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true,
				HighestModSeq: info.has(imap.CapCondStore)}
		}
	}
	list, err := cn.List("", "*", opts).Collect()
	if isUTF7Error(err) {
		// One name go-imap cannot decode fails the whole LIST: list again
		// with the names kept raw, and make each bad one a bad folder.
		list, info.bad, err = s.listRawNames(ctx, p, opts != nil)
	}
	if err != nil {
		return info, connFailure(cn, fmt.Errorf("imapcopy: list folders on %s: %w", p.d, err))
	}
	if isSrc && len(list) == 0 {
		return info, fmt.Errorf("imapcopy: %s listed no folders at all (broken mountpoint?)", p.d)
	}
	info.list = list
	for _, d := range list {
		info.byName[d.Mailbox] = d
		if info.ns.Delim == 0 && d.Delim != 0 {
			info.ns.Delim = d.Delim
		}
	}
	healthy = true
	return info, nil
}

// listRawNames lists the mailboxes of p's server on an append connection,
// names undecoded, and returns the decodable ones as go-imap would and the
// raw bytes of the others.
func (s *session) listRawNames(ctx context.Context, p *pool, extended bool) ([]*imap.ListData, []string, error) {
	ad, ok := p.d.(appendDialer)
	if !ok {
		return nil, nil, errNoRawList
	}
	if err := p.budget.acquire(ctx, p.key); err != nil {
		return nil, nil, err
	}
	defer p.budget.release(p.key)
	ac, err := ad.dialAppend(obs.WithSide(ctx, p.side))
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, ac.Kill)
	defer stop()
	defer ac.Close()
	raws, err := ac.List(ctx, extended)
	if err != nil {
		return nil, nil, err
	}
	var list []*imap.ListData
	var bad []string
	for _, r := range raws {
		name, ok := decodeName(r.Raw)
		if !ok {
			bad = append(bad, r.Raw)
			continue
		}
		list = append(list, &imap.ListData{Attrs: r.Attrs, Delim: r.Delim, Mailbox: name})
	}
	s.c.log().Warn("mailbox names that are not modified UTF-7", "server", p.d.String(), "count", len(bad))
	return list, bad, nil
}

// badFolderPlans makes one plan per source mailbox whose name is not
// modified UTF-7: skipped when Include/Exclude/SkipFolder say so (they see
// the name escaped, as it is reported), else failed with the raw name.
func (c *Copier) badFolderPlans(bad []string) []folderPlan {
	var out []folderPlan
	for _, raw := range bad {
		disp := termsafe.String(raw)
		p := folderPlan{Src: srcFolder{Name: disp, Path: []string{disp}}, Display: disp}
		if reason := c.skipReason(disp); reason != "" {
			p.Skip = reason
		} else {
			p.Err = fmt.Sprintf("imapcopy: mailbox name %s is not valid modified UTF-7 (RFC 3501 §5.1.3): folder not copied", strconv.Quote(raw))
		}
		out = append(out, p)
	}
	return out
}

// connFailure marks err as a connection failure (retried like a dropped
// connection) when cn is closed: go-imap reports a broken connection (an
// idle timeout, a limit, a BYE) as text only.
func connFailure(cn *conn, err error) error {
	select {
	case <-cn.Closed():
		if retry.Classify(err) == retry.Permanent {
			return connError{err}
		}
	default:
	}
	return err
}

func (s *session) sourceFolders() []srcFolder {
	var out []srcFolder
	subscribedKnown := s.srcInfo.has(imap.CapListExtended) || s.srcInfo.has(imap.CapIMAP4rev2)
	for _, d := range s.srcInfo.list {
		out = append(out, srcFolder{
			Name:       d.Mailbox,
			Path:       splitName(d.Mailbox, s.srcInfo.ns),
			NoSelect:   hasAttr(d.Attrs, imap.MailboxAttrNoSelect) || hasAttr(d.Attrs, imap.MailboxAttrNonExistent),
			Subscribed: !subscribedKnown || hasAttr(d.Attrs, imap.MailboxAttrSubscribed),
			SpecialUse: specialUseOf(d.Attrs),
			Status:     d.Status,
		})
	}
	return out
}

// createFolders creates missing destination folders (parents first, never
// \Noselect parents as real folders) and copies subscriptions.
func (s *session) createFolders(ctx context.Context, plans []folderPlan) error {
	cn, err := s.dst.get(ctx, s.c.maxRepeat())
	if err != nil {
		return err
	}
	healthy := false
	defer func() { s.dst.put(cn, healthy) }()
	stop := context.AfterFunc(ctx, func() { cn.Client.Close() })
	defer stop()
	useTaken := map[imap.MailboxAttr]bool{}
	for _, d := range s.dstInfo.list {
		if su := specialUseOf(d.Attrs); su != "" {
			useTaken[su] = true
		}
	}
	// The commands are pipelined: all CREATEs go out, then their answers
	// are read in order, then the same for SUBSCRIBE. Over a WAN a
	// command costs a round trip; many in flight cost one.
	type create struct {
		p      *folderPlan
		cmd    *imapclient.Command
		useful bool // sent with a USE attribute
	}
	var creates []create
	for i := range plans {
		p := &plans[i]
		if p.Skip != "" || p.Err != "" || p.Dst == "" {
			continue
		}
		if _, exists := s.dstInfo.byName[p.Dst]; exists || p.NoSelect {
			continue
		}
		var opts *imap.CreateOptions
		if p.DstUse != "" && !useTaken[p.DstUse] && s.dstInfo.has(imap.CapCreateSpecialUse) {
			opts = &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{p.DstUse}}
			useTaken[p.DstUse] = true
		}
		cn.tick("CREATE")
		creates = append(creates, create{p: p, cmd: cn.Create(p.Dst, opts), useful: opts != nil})
	}
	var fatal error
	for _, cr := range creates {
		err := cr.cmd.Wait()
		var ie *imap.Error
		if err != nil && cr.useful && errors.As(err, &ie) && ie.Code != imap.ResponseCodeAlreadyExists && fatal == nil {
			// Some servers refuse the USE attribute: create plainly.
			cn.tick("CREATE")
			err = cn.Create(cr.p.Dst, nil).Wait()
		}
		if err != nil && !(errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists) {
			if retry.Classify(err) == retry.Transient || retry.Classify(err) == retry.Fatal {
				if fatal == nil {
					fatal = fmt.Errorf("imapcopy: create %q: %w", cr.p.Dst, err)
				}
				continue
			}
			cr.p.Err = fmt.Sprintf("imapcopy: create destination folder %q: %v", cr.p.Dst, err)
		}
	}
	if fatal != nil {
		return fatal
	}
	// Subscriptions, \Noselect parents included: they exist now as parents.
	type subscribe struct {
		dst string
		cmd *imapclient.Command
	}
	var subs []subscribe
	for _, p := range plans {
		if p.Skip != "" || p.Err != "" || p.Dst == "" || !p.Src.Subscribed {
			continue
		}
		if existing := s.dstInfo.byName[p.Dst]; existing != nil && hasAttr(existing.Attrs, imap.MailboxAttrSubscribed) {
			continue
		}
		cn.tick("SUBSCRIBE")
		subs = append(subs, subscribe{dst: p.Dst, cmd: cn.Subscribe(p.Dst)})
	}
	for _, sb := range subs {
		if err := sb.cmd.Wait(); err != nil {
			s.c.log().Warn("subscribe failed", "folder", sb.dst, "err", err)
		}
	}
	healthy = true
	return nil
}
