package imapcopy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// folderRun is one pass over one folder: the plan, the connections, what
// each side holds, and the stats the pass fills. copyFolder runs its steps
// in order (see folderSteps); each step reads what the earlier ones found
// and may end the pass early (a dry run, an unchanged folder). Within a
// step, the source and destination sides may run at once.
//
// The fields below the writers' mutex are shared by the writers of the
// append step; everything else belongs to the goroutine running the steps.
type folderRun struct {
	s  *session
	c  *Copier
	p  folderPlan
	fs *FolderStats

	conns      *folderConns
	src, dst   *conn
	srcSel     *imap.SelectData
	dstSel     *imap.SelectData
	srcAtStart FolderStatus // the source's status when it was selected
	dstAtEnd   FolderStatus // the destination's status after the proof

	st       FolderState // the checkpoint's record of the folder
	hasState bool
	mapValid bool // the checkpoint's UID map holds for both UIDVALIDITYs
	uidPlus  bool // the destination answers APPEND with APPENDUID
	rule     flagRule

	srcMsgs  []msgInfo
	dstMsgs  []msgInfo
	dstByUID map[imap.UID]*msgInfo
	done     []Mapping  // the checkpoint's map when the pass started
	inFlight []imap.UID // messages an earlier pass left in flight
	srcToDst map[imap.UID]imap.UID
	full     bool // reconciled by fingerprint as a whole
	todo     []msgInfo
	skipped  map[imap.UID]bool // left out on purpose (SkipDeleted, MaxSize)
	prints   *sourcePrints     // fingerprints noted while copying, for the proof

	finished bool // a step ended the pass early
	healthy  bool // the connections may go back to their pools

	mu            sync.Mutex // guards fs and copiedEarlier while writers run
	copiedEarlier map[imap.UID]bool
	rec           *recorder
}

// folderStep is one named step of a folder pass.
type folderStep struct {
	name string
	run  func(*folderRun, context.Context) error
}

// folderSteps are the steps of a folder pass, in order.
var folderSteps = []folderStep{
	{"select", (*folderRun).selectBoth},
	{"reconcile", (*folderRun).reconcileMap},
	{"propagate", (*folderRun).propagate},
	{"plan", (*folderRun).plan},
	{"append", (*folderRun).appendAll},
	{"verify", (*folderRun).verify},
	{"checkpoint", (*folderRun).checkpoint},
}

// copyFolder is one pass over a folder: skip it when both sides are as the
// last verified pass left them, else run folderSteps. copiedEarlier holds
// the messages earlier passes of this Copy copied; the pass adds to it.
func (s *session) copyFolder(ctx context.Context, p folderPlan, fs *FolderStats, copiedEarlier map[imap.UID]bool) error {
	f := &folderRun{s: s, c: s.c, p: p, fs: fs, copiedEarlier: copiedEarlier, conns: &folderConns{}}
	if unchanged, err := f.unchanged(ctx); unchanged || err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, f.conns.closeAll)
	defer stop()
	defer func() { f.conns.release(f.healthy) }()
	t0 := time.Now()
	for _, step := range folderSteps {
		if err := step.run(f, ctx); err != nil {
			return err
		}
		f.c.log().Debug("folder step", "folder", p.Display, "step", step.name, "elapsed", time.Since(t0))
		if f.finished {
			break
		}
	}
	f.healthy = true
	return nil
}

// checkpointError marks a failure of the checkpoint store: fatal.
func checkpointError(err error) error {
	return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
}

// unchanged reports whether the folder can be skipped without SELECT: both
// sides look exactly as after the last verified pass. It needs
// HIGHESTMODSEQ, else flag changes are invisible.
func (f *folderRun) unchanged(ctx context.Context) (bool, error) {
	s, p, fs := f.s, f.p, f.fs
	var err error
	if f.st, f.hasState, err = s.cp.Folder(ctx, p.Src.Name); err != nil {
		return false, checkpointError(err)
	}
	st := f.st
	if !f.hasState || st.Destination != p.Dst || st.SourceStatus.HighestModSeq == 0 {
		return false, nil
	}
	srcNow := statusOf(p.Src.Status)
	dstNow := statusOf(listStatus(s.dstInfo.byName[p.Dst]))
	f.c.log().Debug("status snapshot", "folder", p.Display, "src_now", srcNow, "src_saved", st.SourceStatus, "dst_now", dstNow, "dst_saved", st.DestStatus)
	unchanged := srcNow == st.SourceStatus && dstNow == st.DestStatus && dstNow.UIDValidity != 0
	if unchanged && f.c.Delete {
		// A pass without Delete may have left copies of messages the
		// source no longer had: the folder is done only when its map
		// holds exactly the source's messages.
		done, _, err := s.cp.Mappings(ctx, p.Src.Name)
		if err != nil {
			return false, checkpointError(err)
		}
		unchanged = len(done) == int(srcNow.Messages) && !f.c.SkipDeleted
	}
	if !unchanged {
		return false, nil
	}
	fs.Unchanged = true
	fs.SourceCount, fs.DestCount = int(srcNow.Messages), int(dstNow.Messages)
	fs.AlreadyPresent = fs.SourceCount
	if st.KeywordIssues > 0 {
		fs.Keywords = []ItemIssue{{Reason: fmt.Sprintf("flags of %d messages were sanitised in an earlier run (see that run's report)", st.KeywordIssues)}}
	}
	return true, nil
}

// selectBoth selects the folder on both sides at once, each on its own
// connection (two round trips each, paid once): it examines the source and
// lists its messages, selects the destination and lists its messages,
// then decides whether the checkpoint's UID map still holds. A dry run
// ends here when the destination folder does not exist yet.
func (f *folderRun) selectBoth(ctx context.Context) error {
	s, p := f.s, f.p
	src, err := s.src.get(ctx, f.c.maxRepeat())
	if err != nil {
		return err
	}
	f.conns.add(src, s.src)
	f.src = src
	dst, err := s.dst.get(ctx, f.c.maxRepeat())
	if err != nil {
		return err
	}
	f.conns.add(dst, s.dst)
	f.dst = dst
	dstDone := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				dstDone <- &PanicError{Value: v}
			}
		}()
		dstDone <- f.selectDestination()
	}()
	srcErr := f.selectSource()
	dstErr := <-dstDone
	if srcErr != nil {
		return srcErr
	}
	if dstErr != nil {
		if f.c.DryRun && f.dstSel == nil {
			// The folder would be created: everything would be copied.
			f.fs.Copied = len(f.srcMsgs)
			f.finished = true
			return nil
		}
		return dstErr
	}
	f.rule = newFlagRule(f.dstSel.PermanentFlags)
	f.uidPlus = s.dstInfo.has(imap.CapUIDPlus) || s.dstInfo.has(imap.CapIMAP4rev2)

	// The UID map is void when either UIDVALIDITY changed.
	st := f.st
	f.mapValid = f.hasState && st.SourceUIDValidity == f.srcSel.UIDValidity && st.DestUIDValidity == f.dstSel.UIDValidity && st.Destination == p.Dst
	if f.hasState && !f.mapValid {
		f.c.log().Info("UIDVALIDITY or destination changed; reconciling by fingerprint", "folder", p.Display)
		if err := s.cp.ResetFolder(ctx, p.Src.Name); err != nil {
			return checkpointError(err)
		}
	}
	// A pass is under way: no snapshot may claim the folder is complete.
	// Until the UID map has been rebuilt by a full reconcile, the saved
	// UIDVALIDITYs stay zero, so that a pass stopped before the reconcile
	// is recorded cannot leave a partial map that the next pass would
	// trust (it would append again every present but unmapped message).
	if f.mapValid {
		return f.saveValidity(ctx, f.srcSel.UIDValidity, f.dstSel.UIDValidity)
	}
	return f.saveValidity(ctx, 0, 0)
}

// selectSource examines the source folder and lists its messages.
func (f *folderRun) selectSource() error {
	p, cn := f.p, f.src
	var err error
	if f.srcSel, err = cn.Select(p.Src.Name, &imap.SelectOptions{ReadOnly: true, CondStore: f.s.srcInfo.has(imap.CapCondStore)}).Wait(); err != nil {
		return fmt.Errorf("imapcopy: examine source %q: %w", p.Src.Name, err)
	}
	cn.selected = p.Src.Name
	sel := f.srcSel
	f.srcAtStart = FolderStatus{UIDValidity: sel.UIDValidity, UIDNext: uint32(sel.UIDNext), Messages: sel.NumMessages, HighestModSeq: sel.HighestModSeq}
	if f.srcMsgs, err = fetchMeta(cn, sel.NumMessages); err != nil {
		return fmt.Errorf("imapcopy: list messages of source %q: %w", p.Src.Name, err)
	}
	f.fs.SourceCount = len(f.srcMsgs)
	return nil
}

// selectDestination selects the destination folder and lists its
// messages.
func (f *folderRun) selectDestination() error {
	sel, err := f.dst.Select(f.p.Dst, nil).Wait()
	if err != nil {
		return fmt.Errorf("imapcopy: select destination %q: %w", f.p.Dst, err)
	}
	f.dstSel = sel
	f.dst.selected = f.p.Dst
	return f.listDestination(f.dst, sel.NumMessages)
}

// saveValidity records the folder with the given UIDVALIDITYs and no
// status snapshot.
func (f *folderRun) saveValidity(ctx context.Context, srcV, dstV uint32) error {
	if err := f.s.cp.SaveFolder(ctx, FolderState{Source: f.p.Src.Name, Destination: f.p.Dst,
		SourceUIDValidity: srcV, DestUIDValidity: dstV}); err != nil {
		return checkpointError(err)
	}
	return nil
}

// listDestination lists the destination's n messages into dstMsgs and
// dstByUID.
func (f *folderRun) listDestination(cn *conn, n uint32) error {
	var err error
	if f.dstMsgs, err = fetchMeta(cn, n); err != nil {
		return fmt.Errorf("imapcopy: list messages of destination %q: %w", f.p.Dst, err)
	}
	f.dstByUID = make(map[imap.UID]*msgInfo, len(f.dstMsgs))
	for i := range f.dstMsgs {
		f.dstByUID[f.dstMsgs[i].UID] = &f.dstMsgs[i]
	}
	return nil
}

// reconcileMap builds srcToDst, the copies already on the destination: the
// checkpoint's map where it holds, else (and for messages an earlier pass
// left in flight) a match by fingerprint.
func (f *folderRun) reconcileMap(ctx context.Context) error {
	s, c, p, fs := f.s, f.c, f.p, f.fs
	var err error
	if f.done, f.inFlight, err = s.cp.Mappings(ctx, p.Src.Name); err != nil {
		return checkpointError(err)
	}
	f.srcToDst = make(map[imap.UID]imap.UID, len(f.done))
	claimed := make(map[imap.UID]bool, len(f.done))
	for _, m := range f.done {
		if m.Dst != 0 && f.dstByUID[m.Dst] == nil {
			continue // the copy is gone from the destination: copy again
		}
		f.srcToDst[m.Src] = m.Dst
		if m.Dst != 0 {
			claimed[m.Dst] = true
		}
	}
	alreadyBefore := 0
	for _, m := range f.srcMsgs {
		if _, ok := f.srcToDst[m.UID]; ok && !f.copiedEarlier[m.UID] {
			alreadyBefore++
		}
	}

	// Reconcile by fingerprint: everything when there is no usable map (or
	// no UIDPLUS to trust it), else only the messages that were in flight.
	var srcCands []msgInfo
	f.full = !f.mapValid || !f.uidPlus
	if f.full {
		for _, m := range f.srcMsgs {
			if _, ok := f.srcToDst[m.UID]; !ok || !f.uidPlus {
				srcCands = append(srcCands, m)
			}
		}
	} else if len(f.inFlight) > 0 {
		want := map[imap.UID]bool{}
		for _, u := range f.inFlight {
			want[u] = true
		}
		for _, m := range f.srcMsgs {
			if _, ok := f.srcToDst[m.UID]; want[m.UID] && !ok {
				srcCands = append(srcCands, m)
			}
		}
	}
	if len(srcCands) > 0 && !f.full && !c.DryRun {
		// Messages were in flight when an earlier pass stopped. An APPEND
		// whose literal was complete may still be committed by the server
		// after the client went away: let it settle, then look again.
		if err := sleepCtx(ctx, c.settle()); err != nil {
			return err
		}
		sel, err := f.dst.Select(p.Dst, nil).Wait()
		if err != nil {
			return fmt.Errorf("imapcopy: select destination %q: %w", p.Dst, err)
		}
		if err := f.listDestination(f.dst, sel.NumMessages); err != nil {
			return err
		}
	}
	var dstCands []msgInfo
	if len(srcCands) > 0 {
		for _, m := range f.dstMsgs {
			if !claimed[m.UID] || !f.uidPlus {
				dstCands = append(dstCands, m)
			}
		}
	}
	if len(srcCands) > 0 && len(dstCands) > 0 {
		pairs, err := s.reconcile(f.src, f.dst, srcCands, dstCands)
		if err != nil {
			return err
		}
		if !f.uidPlus {
			f.srcToDst = map[imap.UID]imap.UID{}
			alreadyBefore = 0
		}
		for _, m := range pairs {
			f.srcToDst[m.Src] = m.Dst
			if !f.copiedEarlier[m.Src] {
				alreadyBefore++
			}
		}
		if err := s.cp.Done(ctx, p.Src.Name, pairs); err != nil {
			return checkpointError(err)
		}
	} else if !f.uidPlus {
		f.srcToDst = map[imap.UID]imap.UID{}
		alreadyBefore = 0
	}
	if !f.mapValid && !c.DryRun {
		// The map is whole again: from now on it is trusted.
		if err := f.saveValidity(ctx, f.srcSel.UIDValidity, f.dstSel.UIDValidity); err != nil {
			return err
		}
	}
	if len(f.inFlight) > 0 && !c.DryRun {
		// Marks of messages that turned out present were cleared by Done;
		// the rest are appended again (new marks are written first).
		if err := s.cp.ClearInFlight(ctx, p.Src.Name, f.inFlight); err != nil {
			return checkpointError(err)
		}
	}
	fs.AlreadyPresent = alreadyBefore
	return nil
}

// propagate deletes the copies of messages the source no longer has (with
// Delete) and stores changed flags on copies already there.
func (f *folderRun) propagate(ctx context.Context) error {
	if f.c.Delete {
		if err := f.propagateDeletions(ctx); err != nil {
			return err
		}
	}
	return f.propagateFlags()
}

// plan chooses the messages to append: those without a copy, less the ones
// skipped on purpose or refused for good earlier in this Copy. A dry run
// ends here.
func (f *folderRun) plan(ctx context.Context) error {
	s, c, p, fs := f.s, f.c, f.p, f.fs
	limit := c.MaxSize
	if s.dstInfo.appendLimit > 0 && (limit == 0 || s.dstInfo.appendLimit < limit) {
		limit = s.dstInfo.appendLimit
	}
	f.skipped = map[imap.UID]bool{}
	for _, m := range f.srcMsgs {
		if _, ok := f.srcToDst[m.UID]; ok {
			continue
		}
		if c.SkipDeleted && hasFlag(m.Flags, imap.FlagDeleted) {
			f.skipped[m.UID] = true
			continue
		}
		if it, ok := s.memo.refusal(p.Src.Name, m.UID); ok {
			// Refused for good by the destination in an earlier pass of
			// this Copy: report it again, do not send it again.
			fs.Failed = append(fs.Failed, it)
			continue
		}
		if limit > 0 && m.Size > limit {
			f.skipped[m.UID] = true
			reason := fmt.Sprintf("size %d bytes exceeds the limit of %d bytes", m.Size, limit)
			fs.SkippedItems = append(fs.SkippedItems, ItemIssue{UID: m.UID, Reason: reason})
			c.emit(MessageSkipped{Folder: p.Display, UID: m.UID, Reason: reason})
			if err := c.itemError(itemName(p.Display, m.UID), errors.New("imapcopy: "+reason)); err != nil {
				return err
			}
			continue
		}
		f.todo = append(f.todo, m)
	}
	c.log().Debug("folder plan", "folder", p.Display, "source", len(f.srcMsgs), "dest", len(f.dstMsgs), "mapped", len(f.done),
		"in_flight", len(f.inFlight), "full_reconcile", f.full, "already", fs.AlreadyPresent, "to_copy", len(f.todo))
	c.emit(FolderStarted{Folder: p.Display, Destination: p.Dst, ToCopy: len(f.todo)})
	if c.DryRun {
		fs.Copied = len(f.todo)
		fs.DestCount = len(f.dstMsgs)
		f.finished = true
	}
	return nil
}

// checkpoint records the folder's status snapshot after a clean, verified
// pass, so that the next run can skip it while nothing changes. Sanitised
// keywords are deterministic and recorded: they do not stop the skip, but
// are reported again.
func (f *folderRun) checkpoint(ctx context.Context) error {
	fs := f.fs
	if fs.Err != "" || len(fs.Failed) > 0 || len(fs.SkippedItems) > 0 || len(fs.DeleteFailed) > 0 || !fs.Verify.OK() {
		return nil
	}
	if err := f.s.cp.SaveFolder(ctx, FolderState{Source: f.p.Src.Name, Destination: f.p.Dst,
		SourceUIDValidity: f.srcSel.UIDValidity, DestUIDValidity: f.dstSel.UIDValidity,
		SourceStatus: f.srcAtStart, DestStatus: f.dstAtEnd, KeywordIssues: len(fs.Keywords)}); err != nil {
		return checkpointError(err)
	}
	return nil
}

// msgInfo is what a light FETCH tells about one message.
type msgInfo struct {
	UID   imap.UID
	Flags []imap.Flag
	Date  int64 // INTERNALDATE, Unix seconds
	Time  imapTime
	Size  int64
}

// imapTime keeps INTERNALDATE with its zone.
type imapTime = fetchTime

// setMeta records it when it is UID, FLAGS, INTERNALDATE or RFC822.SIZE.
func (mi *msgInfo) setMeta(it imapclient.FetchItemData) {
	switch it := it.(type) {
	case imapclient.FetchItemDataUID:
		mi.UID = it.UID
	case imapclient.FetchItemDataFlags:
		mi.Flags = it.Flags
	case imapclient.FetchItemDataInternalDate:
		mi.Time = fetchTime{it.Time}
		mi.Date = it.Time.Unix()
	case imapclient.FetchItemDataRFC822Size:
		mi.Size = it.Size
	}
}

// fetchMeta runs UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE).
func fetchMeta(cn *conn, n uint32) ([]msgInfo, error) {
	if n == 0 {
		return nil, nil
	}
	cn.tick("FETCH")
	cmd := cn.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true})
	// n is the server's EXISTS: a hint, never trusted to size memory.
	out := make([]msgInfo, 0, min(n, existsHint))
	for {
		m := cmd.Next()
		if m == nil {
			break
		}
		var mi msgInfo
		for {
			it := m.Next()
			if it == nil {
				break
			}
			mi.setMeta(it)
		}
		if mi.UID != 0 {
			out = append(out, mi)
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	// Message bodies of this folder may now be read on cn, each up to its
	// announced size plus a margin.
	var largest int64
	for _, m := range out {
		largest = max(largest, m.Size)
	}
	cn.guard.raiseBodies(bodyAllowance(largest))
	return out, nil
}

// existsHint caps the capacity reserved from a server's message count
// (EXISTS): a hostile "* 4294967295 EXISTS" must not size an allocation.
const existsHint = 1 << 14

func statusOf(sd *imap.StatusData) FolderStatus {
	if sd == nil {
		return FolderStatus{}
	}
	fs := FolderStatus{UIDValidity: sd.UIDValidity, UIDNext: uint32(sd.UIDNext), HighestModSeq: sd.HighestModSeq}
	if sd.NumMessages != nil {
		fs.Messages = *sd.NumMessages
	}
	return fs
}

func listStatus(d *imap.ListData) *imap.StatusData {
	if d == nil {
		return nil
	}
	return d.Status
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if equalFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
