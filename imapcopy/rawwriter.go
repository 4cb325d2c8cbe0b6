package imapcopy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/internal/retry"
)

// DefaultAppendBatch is how many messages one APPEND command carries at most
// when the destination offers MULTIAPPEND.
const DefaultAppendBatch = 16

// appendBatchBytes caps the message bytes of one MULTIAPPEND; a message
// larger than half of it goes alone.
const appendBatchBytes = 8 << 20

// appendGrace is how long an APPEND under way may go on after its copy is
// cancelled.
const appendGrace = 10 * time.Second

// finishing returns a context that ends appendGrace after ctx does. An
// APPEND cut off by the client may still be committed by the server after
// the client left, and a copy started right after, without the state that
// marks the message in flight, would then not see it and send it again.
// Letting the command finish makes its outcome known and recorded.
func finishing(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(appendGrace, cancel) })
	return c, func() {
		stop()
		cancel()
	}
}

// appendDialer is implemented by Dialers that open append connections of
// their own (Account): MULTIAPPEND, LITERAL+ and BINARY literals, which
// go-imap lacks. Other Dialers append through go-imap, one message per
// command.
type appendDialer interface {
	dialAppend(ctx context.Context) (*appendConn, error)
}

// rawConn is an append connection with the bookkeeping of our manners.
type rawConn struct {
	*appendConn
	repeats int
}

// rawPool keeps idle append connections of the destination for reuse between
// folders. They count against the same budget as its other connections.
type rawPool struct {
	d      appendDialer
	budget *ConnBudget
	key    string

	mu   sync.Mutex
	idle []*rawConn
}

func newRawPool(d appendDialer, b *ConnBudget, key string) *rawPool {
	return &rawPool{d: d, budget: b, key: key}
}

// idleConn returns an idle connection without dialing.
func (p *rawPool) idleConn() (*rawConn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.closed() {
			p.budget.release(p.key)
			continue
		}
		return c, true
	}
	return nil, false
}

// tryGet returns an idle connection, or dials one when the budget has room
// at once; nil when neither.
func (p *rawPool) tryGet(ctx context.Context) (*rawConn, error) {
	if c, ok := p.idleConn(); ok {
		return c, nil
	}
	if !p.budget.tryAcquire(p.key) {
		return nil, nil
	}
	ac, err := p.d.dialAppend(ctx)
	if err != nil {
		p.budget.release(p.key)
		return nil, err
	}
	return &rawConn{appendConn: ac}, nil
}

// put keeps a usable connection for reuse; a closed one frees its slot.
func (p *rawPool) put(c *rawConn) {
	if c.closed() {
		p.budget.release(p.key)
		return
	}
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// closeAll logs out every idle connection.
func (p *rawPool) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	closeEach(idle, func(c *rawConn) {
		_ = c.close()
		p.budget.release(p.key)
	})
}

// tick counts APPEND commands and interleaves a NOOP after maxRep of them
// in a row (Zimbra's repeated-command throttle).
func (c *rawConn) tick(ctx context.Context, maxRep int) error {
	if maxRep <= 0 {
		return nil
	}
	c.repeats++
	if c.repeats < maxRep {
		return nil
	}
	c.repeats = 1
	return c.noop(ctx)
}

func (c *Copier) appendBatch() int {
	if c.AppendBatch > 0 {
		return c.AppendBatch
	}
	return DefaultAppendBatch
}

// rawWriters returns up to n append connections for one folder pass, idle
// ones or new ones dialed while the budget has room, never waiting: the
// pass already holds a go-imap connection to the destination, and a server
// at its connection cap (Zimbra's busy greeting) must not leave folders
// waiting for each other's connections. With none, the pass appends
// through go-imap. Only a fatal error (authentication) is returned.
func (s *session) rawWriters(ctx context.Context, n int) ([]*rawConn, error) {
	var out []*rawConn
	for len(out) < n {
		c, err := s.dstRaw.tryGet(ctx)
		if err != nil {
			if retry.Classify(err) == retry.Fatal {
				for _, c := range out {
					s.dstRaw.put(c)
				}
				return nil, err
			}
			s.c.log().Debug("no append connection; going on with fewer", "have", len(out), "err", err)
			break
		}
		if c == nil {
			break
		}
		out = append(out, c)
	}
	return out, nil
}

// gather adds jobs to batch until it holds max messages or maxBytes bytes,
// the queue is closed (open false) or ctx ends. It waits for each job: the
// source streams them, so a batch fills quickly.
func gather(ctx context.Context, jobs <-chan *job, batch []*job, max int, maxBytes int64) ([]*job, bool) {
	var size int64
	for len(batch) < max && size < maxBytes {
		select {
		case j, ok := <-jobs:
			if !ok {
				return batch, false
			}
			batch = append(batch, j)
			size += j.body.size
		case <-ctx.Done():
			return batch, true
		}
	}
	return batch, true
}

// rawWriter appends jobs on one append connection, several messages per
// command when the destination offers MULTIAPPEND.
func (s *session) rawWriter(ctx context.Context, cn *rawConn, p folderPlan, fs *FolderStats, mu *sync.Mutex, jobs <-chan *job, rule flagRule, rec *recorder, copiedEarlier map[imap.UID]bool) error {
	max := 1
	if cn.caps().Multi {
		max = s.c.appendBatch()
	}
	var batch []*job
	defer func() {
		for _, j := range batch {
			j.body.Close()
		}
	}()
	for {
		var open bool
		batch, open = gather(ctx, jobs, batch[:0], max, appendBatchBytes)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(batch) > 0 {
			err := s.sendBatch(ctx, cn, p, fs, mu, batch, rule, rec, copiedEarlier)
			for _, j := range batch {
				j.body.Close()
			}
			batch = batch[:0]
			if err != nil {
				return err
			}
		}
		if !open {
			return ctx.Err()
		}
	}
}

// outgoing is one message ready to be sent.
type outgoing struct {
	j     *job
	flags []imap.Flag
	nul   bool // holds a NUL byte: goes as a BINARY literal
}

// sendBatch sends the batch: messages that may travel together in one
// MULTIAPPEND, the others alone.
func (s *session) sendBatch(ctx context.Context, cn *rawConn, p folderPlan, fs *FolderStats, mu *sync.Mutex, batch []*job, rule flagRule, rec *recorder, copiedEarlier map[imap.UID]bool) error {
	var together, alone []outgoing
	for _, j := range batch {
		flags := s.outgoingFlags(p, fs, mu, j, rule)
		nul := j.body.hasNUL()
		if nul && !cn.caps().Binary {
			err := errors.New("the message contains a NUL byte and the destination does not offer BINARY")
			if aerr := s.refuse(ctx, p, fs, mu, j, err); aerr != nil {
				return aerr
			}
			continue
		}
		o := outgoing{j: j, flags: flags, nul: nul}
		if s.memo.isSingle(p.Src.Name, j.uid) || j.body.size > appendBatchBytes/2 {
			alone = append(alone, o)
		} else {
			together = append(together, o)
		}
	}
	if len(together) == 1 {
		alone, together = append(alone, together[0]), nil
	}
	if len(together) > 1 {
		if err := s.sendTogether(ctx, cn, p, fs, mu, together, rec, copiedEarlier); err != nil {
			return err
		}
	}
	for _, o := range alone {
		if err := s.sendAlone(ctx, cn, p, fs, mu, o, rec, copiedEarlier); err != nil {
			return err
		}
	}
	return nil
}

// outgoingFlags returns the flags j is sent with and reports their changes:
// sanitised by the rule, and without keywords when the destination refused
// the message with them before its literal in an earlier pass.
func (s *session) outgoingFlags(p folderPlan, fs *FolderStats, mu *sync.Mutex, j *job, rule flagRule) []imap.Flag {
	flags, changes := sanitize(j.info.Flags, rule)
	if len(changes) > 0 {
		s.keywordIssue(p, fs, mu, ItemIssue{UID: j.uid, MessageID: j.messageID(), Reason: "flags sanitised", Changes: changes})
	}
	if cause, ok := s.memo.bareCause(p.Src.Name, j.uid); ok && hasKeywords(flags) {
		s.keywordsRefused(p, fs, mu, j.uid, j.messageID(), flags, cause)
		flags = systemOnly(flags)
	}
	return flags
}

// keywordIssue records and announces a change to a message's flags. mu
// guards fs when writers share it; nil when the caller is alone.
func (s *session) keywordIssue(p folderPlan, fs *FolderStats, mu *sync.Mutex, it ItemIssue) {
	if mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	fs.Keywords = append(fs.Keywords, it)
	s.c.emit(KeywordsChanged{Folder: p.Display, UID: it.UID, Changes: it.Changes})
}

// keywordsRefused records that the keywords among flags were dropped
// because the destination refused the message with them (cause).
func (s *session) keywordsRefused(p folderPlan, fs *FolderStats, mu *sync.Mutex, uid imap.UID, messageID string, flags []imap.Flag, cause error) {
	s.keywordIssue(p, fs, mu, ItemIssue{UID: uid, MessageID: messageID, Reason: "keywords refused by the destination", Changes: droppedKeywords(flags, cause)})
}

func (s *session) item(o outgoing, flags []imap.Flag) (appendItem, error) {
	r, err := o.j.body.Reader()
	if err != nil {
		return appendItem{}, fmt.Errorf("imapcopy: spool: %w", err)
	}
	return appendItem{Flags: flags, Time: o.j.info.Time.Time, Size: o.j.body.size, Body: r, NUL: o.nul}, nil
}

// sendTogether sends several messages in one MULTIAPPEND. A refusal names no
// message and stored none of them (RFC 3502 section 3; Zimbra and Carbonio
// delete the messages of the command they had stored when a
// ServiceException ends it: ImapHandler.doAPPEND in Zimbra/zm-mailbox
// store/src/java/com/zimbra/cs/imap/ImapHandler.java and
// zextras/carbonio-mailbox store/src/main/java/com/zimbra/cs/imap/ImapHandler.java),
// so its messages go again at once one per command on the same connection,
// where a refusal names the message; they are remembered to go alone in
// later passes too. Only when the answer never arrives (the connection
// dropped) is the outcome unknown: the messages keep their in-flight marks
// and the next pass looks them up on the destination first.
func (s *session) sendTogether(ctx context.Context, cn *rawConn, p folderPlan, fs *FolderStats, mu *sync.Mutex, out []outgoing, rec *recorder, copiedEarlier map[imap.UID]bool) error {
	items := make([]appendItem, len(out))
	for i, o := range out {
		it, err := s.item(o, o.flags)
		if err != nil {
			return err
		}
		items[i] = it
	}
	if err := cn.tick(ctx, s.c.maxRepeat()); err != nil {
		return connError{fmt.Errorf("imapcopy: noop on %q: %w", p.Dst, err)}
	}
	actx, done := finishing(ctx)
	_, uids, err := cn.append(actx, p.Dst, items)
	done()
	s.c.log().Debug("MULTIAPPEND", "folder", p.Display, "messages", len(out), "err", err)
	if err == nil {
		for i, o := range out {
			var dst imap.UID
			if uids != nil {
				dst = uids[i]
			}
			if err := s.recordCopy(p, fs, mu, o.j, dst, rec, copiedEarlier); err != nil {
				return err
			}
		}
		return nil
	}
	if _, refused := errIsIMAPNo(err); refused && !isTransientOrFatal(err) {
		for _, o := range out {
			s.memo.markSingle(p.Src.Name, o.j.uid)
		}
		if cn.closed() {
			s.c.log().Info("MULTIAPPEND refused and the connection lost; its messages go one by one after a lookup", "folder", p.Display, "messages", len(out), "err", err)
			return connError{fmt.Errorf("imapcopy: append %d messages to %q in one command: %w", len(out), p.Dst, err)}
		}
		s.c.log().Info("MULTIAPPEND refused; its messages go one by one", "folder", p.Display, "messages", len(out), "err", err)
		for _, o := range out {
			if err := s.sendAlone(ctx, cn, p, fs, mu, o, rec, copiedEarlier); err != nil {
				return err
			}
		}
		return nil
	}
	return connError{fmt.Errorf("imapcopy: append to %q: %w", p.Dst, err)}
}

// sendAlone sends one message. A refusal with keywords is tried again at
// once without them (some servers refuse tags), on the same connection: our
// append connection stays usable after a NO, also one in place of a
// literal's continuation request.
func (s *session) sendAlone(ctx context.Context, cn *rawConn, p folderPlan, fs *FolderStats, mu *sync.Mutex, o outgoing, rec *recorder, copiedEarlier map[imap.UID]bool) error {
	send := func(flags []imap.Flag) (imap.UID, error) {
		it, err := s.item(o, flags)
		if err != nil {
			return 0, err
		}
		if err := cn.tick(ctx, s.c.maxRepeat()); err != nil {
			return 0, connError{fmt.Errorf("imapcopy: noop on %q: %w", p.Dst, err)}
		}
		actx, done := finishing(ctx)
		_, uids, err := cn.append(actx, p.Dst, []appendItem{it})
		done()
		if err != nil {
			return 0, err
		}
		if len(uids) == 1 {
			return uids[0], nil
		}
		return 0, nil
	}
	dst, err := send(o.flags)
	if err == nil {
		return s.recordCopy(p, fs, mu, o.j, dst, rec, copiedEarlier)
	}
	ie, refused := errIsIMAPNo(err)
	if !refused || isTransientOrFatal(err) || cn.closed() {
		return connError{fmt.Errorf("imapcopy: append to %q: %w", p.Dst, err)}
	}
	if hasKeywords(o.flags) && retryableRefusal(ie) {
		dst, err2 := send(systemOnly(o.flags))
		if err2 == nil {
			s.memo.markBare(p.Src.Name, o.j.uid, err) // later passes of this Copy report it too
			s.keywordsRefused(p, fs, mu, o.j.uid, o.j.messageID(), o.flags, err)
			return s.recordCopy(p, fs, mu, o.j, dst, rec, copiedEarlier)
		}
		if _, refused2 := errIsIMAPNo(err2); !refused2 || isTransientOrFatal(err2) || cn.closed() {
			return connError{fmt.Errorf("imapcopy: append to %q: %w", p.Dst, err2)}
		}
		err = err2
	}
	return s.refuse(ctx, p, fs, mu, o.j, err)
}

// hasNUL reports whether the body holds a NUL byte.
func (b *body) hasNUL() bool { return b.nul }
