package imapcopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/internal/imapappend"
	"github.com/zxmigrate/zxmigrate/internal/obs"
	"github.com/zxmigrate/zxmigrate/retry"
)

// This file holds the write half of a folder's append step: writers take
// the jobs fetch.go queues and APPEND them through an appender, one
// destination connection each.

// DefaultAppendBatch is how many messages one APPEND command carries at most
// when the destination offers MULTIAPPEND.
const DefaultAppendBatch = 16

// appendBatchBytes caps the message bytes of one MULTIAPPEND; a message
// larger than half of it goes alone.
const appendBatchBytes = 8 << 20

// appendGrace is how long an APPEND under way may go on after its copy is
// cancelled.
const appendGrace = 10 * time.Second

// goimapWindow is how many APPEND commands a go-imap writer keeps in
// flight.
const goimapWindow = 4

// rawWindow is how many APPEND commands a writer keeps in flight on an
// append client connection whose server offers LITERAL+: nothing of a
// command then waits for the server, so the commands follow each other
// without a round trip between them (RFC 7888, RFC 9051 section 5.5).
// The message bytes of those commands are bounded by a share of the
// memory budget (session.windowBytes), between minWindowBytes and
// maxWindowBytes: 1 MiB in flight hides a 20 ms round trip up to 50 MB/s.
const (
	rawWindow      = 8
	minWindowBytes = 256 << 10
	maxWindowBytes = 8 << 20
)

// appender is one destination connection that APPENDs: an append client
// connection (internal/imapappend: MULTIAPPEND, LITERAL+, BINARY), or a
// go-imap connection for Dialers that offer no append connections. One
// writer uses it at a time.
type appender interface {
	// batch is the most messages one command may carry: 1 without
	// MULTIAPPEND.
	batch() int
	// binary reports whether a message holding a NUL byte may be sent.
	binary() bool
	// window is how many commands may wait for their answers at once.
	window() int
	// send sends one APPEND of items into mailbox and returns the wait for
	// its answer; waits are called once each, in the order of the sends.
	// The wait returns the destination UIDs in order (nil when the server
	// did not say) or the error: a tagged NO or BAD as an *imap.Error
	// when the server refused the command.
	send(ctx context.Context, mailbox string, items []imapappend.Item) (wait func() ([]imap.UID, error))
	// closed reports whether the connection is gone.
	closed() bool
}

// rawAppender appends on an append client connection.
type rawAppender struct {
	cn     *rawConn
	max    int // messages per command with MULTIAPPEND
	maxRep int // Copier.MaxRepeat
}

func (a *rawAppender) batch() int {
	if a.cn.Caps().Multi {
		return a.max
	}
	return 1
}

func (a *rawAppender) binary() bool { return a.cn.Caps().Binary }
func (a *rawAppender) window() int {
	if a.cn.Caps().LiteralPlus {
		return rawWindow
	}
	return 1
}
func (a *rawAppender) closed() bool { return a.cn.Closed() }

func (a *rawAppender) send(ctx context.Context, mailbox string, items []imapappend.Item) func() ([]imap.UID, error) {
	if err := a.cn.tick(ctx, a.maxRep); err != nil {
		err = connError{fmt.Errorf("imapcopy: noop on %q: %w", mailbox, err)}
		return func() ([]imap.UID, error) { return nil, err }
	}
	actx, done := finishing(ctx)
	p, err := a.cn.Start(actx, mailbox, items)
	if err != nil {
		done()
		return func() ([]imap.UID, error) { return nil, err }
	}
	return func() ([]imap.UID, error) {
		defer done()
		_, uids, err := p.Wait(actx)
		return uids, err
	}
}

// goimapAppender appends on a go-imap connection, one message per command.
type goimapAppender struct {
	cn *conn
	// early is the refusal that came in place of a literal's continuation
	// request: go-imap then closes the connection and fails the commands
	// still in flight with that same error, although the server may have
	// stored them.
	early error
}

func (a *goimapAppender) batch() int   { return 1 }
func (a *goimapAppender) binary() bool { return false }
func (a *goimapAppender) window() int  { return goimapWindow }

func (a *goimapAppender) closed() bool {
	select {
	case <-a.cn.Closed():
		return true
	default:
		return false
	}
}

func (a *goimapAppender) send(ctx context.Context, mailbox string, items []imapappend.Item) func() ([]imap.UID, error) {
	it := items[0]
	a.cn.tick("APPEND")
	cmd := a.cn.Append(mailbox, it.Size, &imap.AppendOptions{Flags: it.Flags, Time: it.Time})
	_, werr := io.Copy(cmd, it.Body)
	if cerr := cmd.Close(); werr != nil || cerr != nil {
		if _, err := cmd.Wait(); err != nil {
			if _, refused := errIsIMAPNo(err); refused && !isTransientOrFatal(err) {
				// The server answered NO/BAD in place of the literal's
				// continuation request (e.g. over its size limit).
				a.early = err
				a.cn.Client.Close()
				return func() ([]imap.UID, error) { return nil, err }
			}
		}
		// A short literal desynchronises the connection: drop it.
		a.cn.Client.Close()
		err := fmt.Errorf("imapcopy: append to %q: %w", mailbox, errors.Join(werr, cerr, errConnDropped))
		return func() ([]imap.UID, error) { return nil, err }
	}
	return func() ([]imap.UID, error) {
		data, err := cmd.Wait()
		if err != nil && a.early != nil && errors.Is(err, a.early) {
			// Another command's refusal closed the connection: this
			// one's outcome is unknown, its in-flight mark stays.
			return nil, connError{fmt.Errorf("imapcopy: append to %q: connection closed by another refusal: %w", mailbox, err)}
		}
		if err != nil {
			return nil, err
		}
		if data != nil && data.UID != 0 {
			return []imap.UID{data.UID}, nil
		}
		return nil, nil
	}
}

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

func (c *Copier) appendBatch() int {
	if c.AppendBatch > 0 {
		return c.AppendBatch
	}
	return DefaultAppendBatch
}

// appendAll is the append step of a folder pass: it streams the todo
// messages from the source into the destination with up to MaxWriters
// writers, on append client connections when the destination Dialer
// offers them, else on go-imap ones. Finished copies are recorded in
// batches.
func (f *folderRun) appendAll(ctx context.Context) error {
	if len(f.todo) == 0 {
		return nil
	}
	s, c := f.s, f.c
	writers := min(c.maxWriters(), len(f.todo)/50+1)
	f.rec = &recorder{s: s, ctx: ctx, folder: f.p.Src.Name}
	var apps []appender
	queue := 0
	if s.dstRaw != nil {
		raws, err := s.rawWriters(ctx, writers)
		if err != nil {
			return err
		}
		defer func() {
			// An append connection closes itself when its context ends
			// during a command; between commands it stays usable and
			// goes back to the pool.
			for _, rc := range raws {
				s.dstRaw.put(rc)
			}
		}()
		for _, rc := range raws {
			a := &rawAppender{cn: rc, max: c.appendBatch(), maxRep: c.maxRepeat()}
			apps = append(apps, a)
			queue += max(a.batch(), 2)
		}
	}
	if len(apps) == 0 {
		conns, err := s.imapWriters(ctx, f.conns, f.dst, writers)
		if err != nil {
			return err
		}
		for _, cn := range conns {
			apps = append(apps, &goimapAppender{cn: cn})
			queue += 2
		}
	}
	run := make([]func(context.Context, <-chan *job) error, len(apps))
	for i, a := range apps {
		run[i] = func(gctx context.Context, jobs <-chan *job) error {
			w := &writer{f: f, a: a}
			return w.run(gctx, jobs)
		}
	}
	f.prints = &sourcePrints{validity: f.srcSel.UIDValidity, m: map[imap.UID]headPrint{}}
	err := f.fetchBodies(ctx, queue, run)
	if ferr := f.rec.flush(); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// outgoing is one message ready to be sent.
type outgoing struct {
	j     *job
	flags []imap.Flag
	nul   bool // holds a NUL byte: goes as a BINARY literal
	// bare is set on the second try of a message the destination refused
	// with keywords: flags are then without them, and cause is that
	// refusal.
	bare  bool
	cause error
	kw    []imap.Flag // the flags with keywords, when bare
}

// inflight is a command sent and not yet answered.
type inflight struct {
	out   []outgoing
	bytes int64
	wait  func() ([]imap.UID, error)
}

// writer appends jobs through one appender, several messages per command
// when the appender carries MULTIAPPEND, up to its window of commands in
// flight. A command's answer is resolved in order: copies are recorded,
// a refused MULTIAPPEND goes again one message per command, a message
// refused with keywords goes again without them, a final refusal is
// reported. Only a tagged NO or BAD proves a message was not stored: any
// other failure ends the writer with the messages in flight keeping their
// in-flight marks, so that the next pass looks them up first.
type writer struct {
	f      *folderRun
	a      appender
	window []inflight
	bytes  int64 // message bytes in the window
}

// run appends the jobs until the queue closes or ctx ends.
func (w *writer) run(ctx context.Context, jobs <-chan *job) (err error) {
	var batch []*job
	defer func() {
		// Commands still in flight (a cancelled pass, a failed command)
		// are heard out before the writer returns: each send's context
		// gives them appendGrace after a cancellation, so that what the
		// server stored is known and recorded, and no APPEND is left to
		// complete behind a later run's back.
		if serr := w.settle(ctx); err == nil {
			err = serr
		}
		// Bodies still held are freed; closing a body twice is harmless.
		for _, j := range batch {
			j.body.Close()
		}
	}()
	for {
		var open bool
		batch, open = gather(ctx, jobs, batch[:0], w.a.batch(), appendBatchBytes)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(batch) > 0 {
			if err := w.sendBatch(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if !open {
			if err := w.drain(ctx, 0, 0); err != nil {
				return err
			}
			return ctx.Err()
		}
	}
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

// sendBatch sends the batch: messages that may travel together in one
// MULTIAPPEND, the others alone. The writer owns the jobs' bodies from
// here on.
func (w *writer) sendBatch(ctx context.Context, batch []*job) error {
	f := w.f
	var together, alone []outgoing
	for _, j := range batch {
		flags := f.outgoingFlags(j)
		nul := j.body.hasNUL()
		if nul && !w.a.binary() {
			err := errors.New("the message contains a NUL byte and the destination does not offer BINARY")
			if aerr := f.refuse(ctx, j, err); aerr != nil {
				return aerr
			}
			continue
		}
		o := outgoing{j: j, flags: flags, nul: nul}
		if f.s.memo.isSingle(f.p.Src.Name, j.uid) || j.body.size > appendBatchBytes/2 {
			alone = append(alone, o)
		} else {
			together = append(together, o)
		}
	}
	if len(together) == 1 {
		alone, together = append(alone, together[0]), nil
	}
	if len(together) > 1 {
		if err := w.send(ctx, together); err != nil {
			return err
		}
	}
	for _, o := range alone {
		if err := w.send(ctx, []outgoing{o}); err != nil {
			return err
		}
	}
	return nil
}

// send sends one command carrying out and resolves the answers that leave
// room in the window.
func (w *writer) send(ctx context.Context, out []outgoing) error {
	if err := w.push(ctx, out); err != nil {
		return err
	}
	return w.drain(ctx, w.a.window()-1, w.f.s.windowBytes)
}

// push sends one command carrying out without resolving any answer. A
// cancelled pass sends nothing more.
func (w *writer) push(ctx context.Context, out []outgoing) error {
	if err := ctx.Err(); err != nil {
		for _, o := range out {
			o.j.body.Close()
		}
		return err
	}
	items := make([]imapappend.Item, len(out))
	var size int64
	for i, o := range out {
		r, err := o.j.body.Reader()
		if err != nil {
			for _, o := range out {
				o.j.body.Close()
			}
			return fmt.Errorf("imapcopy: spool: %w", err)
		}
		items[i] = imapappend.Item{Flags: o.flags, Time: o.j.info.Time.Time, Size: o.j.body.size, Body: r, NUL: o.nul}
		size += o.j.body.size
	}
	// Each message is one APPEND for the observer, timed from the send
	// to the answer (a MULTIAPPEND's time shared out).
	start, server := time.Now(), w.f.s.dst.key
	wait := w.a.send(ctx, w.f.p.Dst, items)
	timed := func() ([]imap.UID, error) {
		uids, err := wait()
		return uids, obs.TimeEach(ctx, server, "APPEND", len(items), start, err)
	}
	w.window = append(w.window, inflight{out: out, bytes: size, wait: timed})
	w.bytes += size
	return nil
}

// drain resolves answers in order until at most keep commands and at
// most keepBytes message bytes are in flight. Resolving may send a
// command again (one by one, or without keywords); drain resolves those
// too.
func (w *writer) drain(ctx context.Context, keep int, keepBytes int64) error {
	for len(w.window) > keep || (len(w.window) > 0 && w.bytes > keepBytes) {
		in := w.window[0]
		uids, err := in.wait()
		w.window = w.window[1:]
		w.bytes -= in.bytes
		if rerr := w.resolve(ctx, in, uids, err); rerr != nil {
			for _, o := range in.out {
				o.j.body.Close()
			}
			return rerr
		}
	}
	return nil
}

// settle resolves every command still in flight: answers that arrived
// are recorded (copies, refusals), the others keep their in-flight marks.
// It returns the first error that must stop the copy (a checkpoint
// failure, an abort from OnError); connection failures are already the
// caller's.
func (w *writer) settle(ctx context.Context) error {
	var first error
	for len(w.window) > 0 {
		in := w.window[0]
		uids, err := in.wait()
		w.window = w.window[1:]
		w.bytes -= in.bytes
		if rerr := w.resolve(ctx, in, uids, err); rerr != nil {
			for _, o := range in.out {
				o.j.body.Close()
			}
			if first == nil && retry.Classify(rerr) != retry.Transient && ctx.Err() == nil {
				first = rerr
			}
		}
	}
	return first
}

// resolve acts on the answer to one command.
func (w *writer) resolve(ctx context.Context, in inflight, uids []imap.UID, err error) error {
	f, p := w.f, w.f.p
	if len(in.out) > 1 {
		f.c.log().Debug("MULTIAPPEND", "folder", p.Display, "messages", len(in.out), "err", err)
	}
	if err == nil {
		for i, o := range in.out {
			var dst imap.UID
			if len(uids) == len(in.out) {
				dst = uids[i]
			}
			if o.bare {
				f.s.memo.markBare(p.Src.Name, o.j.uid, o.cause) // later passes of this Copy report it too
				f.keywordsRefused(o.j.uid, o.j.messageID(), o.kw, o.cause)
			}
			if err := f.recordCopy(o.j, dst); err != nil {
				return err
			}
		}
		return nil
	}
	ie, refused := errIsIMAPNo(err)
	if !refused || isTransientOrFatal(err) {
		return connError{fmt.Errorf("imapcopy: append to %q: %w", p.Dst, err)}
	}
	if len(in.out) > 1 {
		// A refused MULTIAPPEND names no message and stored none of them
		// (RFC 3502 section 3; Zimbra and Carbonio delete the messages
		// of the command they had stored when a ServiceException ends
		// it: ImapHandler.doAPPEND in Zimbra/zm-mailbox
		// store/src/java/com/zimbra/cs/imap/ImapHandler.java and
		// zextras/carbonio-mailbox
		// store/src/main/java/com/zimbra/cs/imap/ImapHandler.java), so
		// its messages go again one per command, where a refusal names
		// the message; they are remembered to go alone in later passes.
		for _, o := range in.out {
			f.s.memo.markSingle(p.Src.Name, o.j.uid)
		}
		if w.a.closed() {
			f.c.log().Info("MULTIAPPEND refused and the connection lost; its messages go one by one after a lookup", "folder", p.Display, "messages", len(in.out), "err", err)
			return connError{fmt.Errorf("imapcopy: append %d messages to %q in one command: %w", len(in.out), p.Dst, err)}
		}
		f.c.log().Info("MULTIAPPEND refused; its messages go one by one", "folder", p.Display, "messages", len(in.out), "err", err)
		for _, o := range in.out {
			if err := w.push(ctx, []outgoing{o}); err != nil {
				return err
			}
		}
		return nil
	}
	o := in.out[0]
	retryBare := !o.bare && hasKeywords(o.flags) && retryableRefusal(ie)
	if w.a.closed() {
		// The refusal closed the connection (go-imap does when the NO
		// comes in place of a literal's continuation request): remember
		// it, so that the next pass sends the message without keywords
		// (when they may be the cause) or reports it without sending it
		// again.
		if retryBare {
			f.s.memo.markBare(p.Src.Name, o.j.uid, err)
		} else if aerr := f.refuse(ctx, o.j, err); aerr != nil {
			return aerr
		}
		return connError{fmt.Errorf("imapcopy: append to %q: refused, and the connection closed: %w", p.Dst, err)}
	}
	if retryBare {
		// Some servers refuse keywords: try once more without them, on
		// the same connection.
		r := o
		r.bare, r.cause, r.kw, r.flags = true, err, o.flags, systemOnly(o.flags)
		return w.push(ctx, []outgoing{r})
	}
	return f.refuse(ctx, o.j, err)
}

// outgoingFlags returns the flags j is sent with and reports their changes:
// sanitised by the rule, and without keywords when the destination refused
// the message with them in an earlier pass.
func (f *folderRun) outgoingFlags(j *job) []imap.Flag {
	flags, changes := sanitize(j.info.Flags, f.rule)
	if len(changes) > 0 {
		f.keywordIssue(ItemIssue{UID: j.uid, MessageID: j.messageID(), Reason: "flags sanitised", Changes: changes})
	}
	if cause, ok := f.s.memo.bareCause(f.p.Src.Name, j.uid); ok && hasKeywords(flags) {
		f.keywordsRefused(j.uid, j.messageID(), flags, cause)
		flags = systemOnly(flags)
	}
	return flags
}

// keywordIssue records and announces a change to a message's flags.
func (f *folderRun) keywordIssue(it ItemIssue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fs.Keywords = append(f.fs.Keywords, it)
	f.c.emit(KeywordsChanged{Folder: f.p.Display, UID: it.UID, Changes: it.Changes})
}

// keywordsRefused records that the keywords among flags were dropped
// because the destination refused the message with them (cause).
func (f *folderRun) keywordsRefused(uid imap.UID, messageID string, flags []imap.Flag, cause error) {
	f.keywordIssue(ItemIssue{UID: uid, MessageID: messageID, Reason: "keywords refused by the destination", Changes: droppedKeywords(flags, cause)})
}

// refuse records the destination's final refusal of j, frees its body and
// remembers it, so that passes restarted in this Copy (after the
// destination dropped the connection, as Zimbra does after 5 errors in a
// row) report it without sending it again.
func (f *folderRun) refuse(ctx context.Context, j *job, err error) error {
	defer j.body.Close()
	it := ItemIssue{UID: j.uid, MessageID: j.messageID(), Reason: err.Error()}
	f.mu.Lock()
	f.fs.Failed = append(f.fs.Failed, it)
	f.mu.Unlock()
	f.s.memo.markRefused(f.p.Src.Name, it)
	f.c.emit(MessageFailed{Folder: f.p.Display, UID: j.uid, Err: err})
	_ = f.s.cp.ClearInFlight(context.WithoutCancel(ctx), f.p.Src.Name, []imap.UID{j.uid})
	return f.c.itemError(itemName(f.p.Display, j.uid), err)
}

// recordCopy counts j as copied to dstUID (0 when the server did not say)
// and frees its body.
func (f *folderRun) recordCopy(j *job, dstUID imap.UID) error {
	defer j.body.Close()
	f.mu.Lock()
	f.fs.Copied++
	f.fs.Bytes += j.body.size
	f.copiedEarlier[j.uid] = true
	f.mu.Unlock()
	f.c.emit(MessageCopied{Folder: f.p.Display, UID: j.uid, Bytes: j.body.size})
	return f.rec.add(Mapping{Src: j.uid, Dst: dstUID})
}
