package imapcopy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/zxmigrate/zxmigrate/internal/retry"
)

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

// copyFolder is one pass over a folder: reconcile, propagate flags, append
// what is missing, verify.
func (s *session) copyFolder(ctx context.Context, p folderPlan, fs *FolderStats, copiedEarlier map[imap.UID]bool) error {
	c := s.c
	st, hasState, err := s.cp.Folder(ctx, p.Src.Name)
	if err != nil {
		return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
	}
	// Skip without SELECT when both sides look exactly as after the last
	// verified pass. Needs HIGHESTMODSEQ, else flag changes are invisible.
	if hasState && st.Destination == p.Dst && st.SourceStatus.HighestModSeq != 0 {
		srcNow := statusOf(p.Src.Status)
		dstNow := statusOf(listStatus(s.dstInfo.byName[p.Dst]))
		c.log().Debug("status snapshot", "folder", p.Display, "src_now", srcNow, "src_saved", st.SourceStatus, "dst_now", dstNow, "dst_saved", st.DestStatus)
		unchanged := srcNow == st.SourceStatus && dstNow == st.DestStatus && dstNow.UIDValidity != 0
		if unchanged && c.Delete {
			// A pass without Delete may have left copies of messages the
			// source no longer had: the folder is done only when its map
			// holds exactly the source's messages.
			done, _, err := s.cp.Mappings(ctx, p.Src.Name)
			if err != nil {
				return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
			}
			unchanged = len(done) == int(srcNow.Messages) && !c.SkipDeleted
		}
		if unchanged {
			fs.Unchanged = true
			fs.SourceCount, fs.DestCount = int(srcNow.Messages), int(dstNow.Messages)
			fs.AlreadyPresent = fs.SourceCount
			if st.KeywordIssues > 0 {
				fs.Keywords = []ItemIssue{{Reason: fmt.Sprintf("flags of %d messages were sanitised in an earlier run (see that run's report)", st.KeywordIssues)}}
			}
			return nil
		}
	}

	t0 := time.Now()
	phase := func(name string) {
		c.log().Debug("folder phase", "folder", p.Display, "phase", name, "elapsed", time.Since(t0))
	}
	fc := &folderConns{}
	stop := context.AfterFunc(ctx, fc.closeAll)
	defer stop()
	healthy := false
	defer func() { fc.release(healthy) }()

	srcConn, err := s.src.get(ctx, c.maxRepeat())
	if err != nil {
		return err
	}
	fc.add(srcConn, s.src)
	srcSel, err := srcConn.Select(p.Src.Name, &imap.SelectOptions{ReadOnly: true, CondStore: s.srcInfo.has(imap.CapCondStore)}).Wait()
	if err != nil {
		return fmt.Errorf("imapcopy: examine source %q: %w", p.Src.Name, err)
	}
	srcConn.selected = p.Src.Name
	srcStatusAtStart := FolderStatus{UIDValidity: srcSel.UIDValidity, UIDNext: uint32(srcSel.UIDNext), Messages: srcSel.NumMessages, HighestModSeq: srcSel.HighestModSeq}
	srcMsgs, err := fetchMeta(srcConn, srcSel.NumMessages)
	if err != nil {
		return fmt.Errorf("imapcopy: list messages of source %q: %w", p.Src.Name, err)
	}
	fs.SourceCount = len(srcMsgs)

	phase("source listed")
	dstConn, err := s.dst.get(ctx, c.maxRepeat())
	if err != nil {
		return err
	}
	fc.add(dstConn, s.dst)
	dstSel, err := dstConn.Select(p.Dst, nil).Wait()
	if err != nil {
		if c.DryRun {
			// The folder would be created: everything would be copied.
			fs.Copied = len(srcMsgs)
			healthy = true
			return nil
		}
		return fmt.Errorf("imapcopy: select destination %q: %w", p.Dst, err)
	}
	dstConn.selected = p.Dst
	rule := newFlagRule(dstSel.PermanentFlags)
	uidPlus := s.dstInfo.has(imap.CapUIDPlus) || s.dstInfo.has(imap.CapIMAP4rev2)

	// The UID map is void when either UIDVALIDITY changed.
	mapValid := hasState && st.SourceUIDValidity == srcSel.UIDValidity && st.DestUIDValidity == dstSel.UIDValidity && st.Destination == p.Dst
	if hasState && !mapValid {
		c.log().Info("UIDVALIDITY or destination changed; reconciling by fingerprint", "folder", p.Display)
		if err := s.cp.ResetFolder(ctx, p.Src.Name); err != nil {
			return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
		}
	}
	// A pass is under way: no snapshot may claim the folder is complete.
	// Until the UID map has been rebuilt by a full reconcile, the saved
	// UIDVALIDITYs stay zero, so that a pass stopped before the reconcile
	// is recorded cannot leave a partial map that the next pass would
	// trust (it would append again every present but unmapped message).
	saveValidity := func(srcV, dstV uint32) error {
		if err := s.cp.SaveFolder(ctx, FolderState{Source: p.Src.Name, Destination: p.Dst,
			SourceUIDValidity: srcV, DestUIDValidity: dstV}); err != nil {
			return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
		}
		return nil
	}
	if mapValid {
		if err := saveValidity(srcSel.UIDValidity, dstSel.UIDValidity); err != nil {
			return err
		}
	} else if err := saveValidity(0, 0); err != nil {
		return err
	}
	dstMsgs, err := fetchMeta(dstConn, dstSel.NumMessages)
	if err != nil {
		return fmt.Errorf("imapcopy: list messages of destination %q: %w", p.Dst, err)
	}
	dstByUID := make(map[imap.UID]*msgInfo, len(dstMsgs))
	for i := range dstMsgs {
		dstByUID[dstMsgs[i].UID] = &dstMsgs[i]
	}

	phase("destination listed")
	done, inFlight, err := s.cp.Mappings(ctx, p.Src.Name)
	if err != nil {
		return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
	}
	srcToDst := make(map[imap.UID]imap.UID, len(done))
	claimed := make(map[imap.UID]bool, len(done))
	for _, m := range done {
		if m.Dst != 0 && dstByUID[m.Dst] == nil {
			continue // the copy is gone from the destination: copy again
		}
		srcToDst[m.Src] = m.Dst
		if m.Dst != 0 {
			claimed[m.Dst] = true
		}
	}
	alreadyBefore := 0
	for _, m := range srcMsgs {
		if _, ok := srcToDst[m.UID]; ok && !copiedEarlier[m.UID] {
			alreadyBefore++
		}
	}

	// Reconcile by fingerprint: everything when there is no usable map (or
	// no UIDPLUS to trust it), else only the messages that were in flight.
	var srcCands []msgInfo
	full := !mapValid || !uidPlus
	if full {
		for _, m := range srcMsgs {
			if _, ok := srcToDst[m.UID]; !ok || !uidPlus {
				srcCands = append(srcCands, m)
			}
		}
	} else if len(inFlight) > 0 {
		want := map[imap.UID]bool{}
		for _, u := range inFlight {
			want[u] = true
		}
		for _, m := range srcMsgs {
			if want[m.UID] {
				if _, ok := srcToDst[m.UID]; !ok {
					srcCands = append(srcCands, m)
				}
			}
		}
	}
	if len(srcCands) > 0 && !full && !c.DryRun {
		// Messages were in flight when an earlier pass stopped. An APPEND
		// whose literal was complete may still be committed by the server
		// after the client went away: let it settle, then look again.
		if err := sleepCtx(ctx, c.settle()); err != nil {
			return err
		}
		sel, err := dstConn.Select(p.Dst, nil).Wait()
		if err != nil {
			return fmt.Errorf("imapcopy: select destination %q: %w", p.Dst, err)
		}
		if dstMsgs, err = fetchMeta(dstConn, sel.NumMessages); err != nil {
			return fmt.Errorf("imapcopy: list messages of destination %q: %w", p.Dst, err)
		}
		dstByUID = make(map[imap.UID]*msgInfo, len(dstMsgs))
		for i := range dstMsgs {
			dstByUID[dstMsgs[i].UID] = &dstMsgs[i]
		}
	}
	var dstCands []msgInfo
	if len(srcCands) > 0 {
		for _, m := range dstMsgs {
			if !claimed[m.UID] || !uidPlus {
				dstCands = append(dstCands, m)
			}
		}
	}
	if len(srcCands) > 0 && len(dstCands) > 0 {
		pairs, err := s.reconcile(srcConn, dstConn, srcCands, dstCands)
		if err != nil {
			return err
		}
		if !uidPlus {
			srcToDst = map[imap.UID]imap.UID{}
			alreadyBefore = 0
		}
		for _, m := range pairs {
			srcToDst[m.Src] = m.Dst
			if !copiedEarlier[m.Src] {
				alreadyBefore++
			}
		}
		if err := s.cp.Done(ctx, p.Src.Name, pairs); err != nil {
			return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
		}
	} else if !uidPlus {
		srcToDst = map[imap.UID]imap.UID{}
		alreadyBefore = 0
	}
	if !mapValid && !c.DryRun {
		// The map is whole again: from now on it is trusted.
		if err := saveValidity(srcSel.UIDValidity, dstSel.UIDValidity); err != nil {
			return err
		}
	}
	if len(inFlight) > 0 && !c.DryRun {
		// Marks of messages that turned out present were cleared by Done;
		// the rest are appended again below (new marks are written first).
		if err := s.cp.ClearInFlight(ctx, p.Src.Name, inFlight); err != nil {
			return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
		}
	}
	fs.AlreadyPresent = alreadyBefore

	phase("reconciled")
	if c.Delete {
		// A listing shorter than the mailbox's EXISTS (a message expunged
		// meanwhile, or a server that left some out) must not read as
		// deletions.
		whole := len(srcMsgs) == int(srcSel.NumMessages)
		if err := s.propagateDeletions(ctx, dstConn, p, fs, srcMsgs, whole, done, dstByUID, mapValid, uidPlus); err != nil {
			return err
		}
	}
	// Propagate flag changes of copies already there.
	if err := s.propagateFlags(dstConn, p, fs, srcMsgs, srcToDst, dstByUID, rule); err != nil {
		return err
	}

	phase("flags propagated")
	// What to append.
	limit := c.MaxSize
	if s.dstInfo.appendLimit > 0 && (limit == 0 || s.dstInfo.appendLimit < limit) {
		limit = s.dstInfo.appendLimit
	}
	var todo []msgInfo
	skipped := map[imap.UID]bool{}
	for _, m := range srcMsgs {
		if _, ok := srcToDst[m.UID]; ok {
			continue
		}
		if c.SkipDeleted && hasFlag(m.Flags, imap.FlagDeleted) {
			skipped[m.UID] = true
			continue
		}
		if it, ok := s.memo.refusal(p.Src.Name, m.UID); ok {
			// Refused for good by the destination in an earlier pass of
			// this Copy: report it again, do not send it again.
			fs.Failed = append(fs.Failed, it)
			continue
		}
		if limit > 0 && m.Size > limit {
			skipped[m.UID] = true
			reason := fmt.Sprintf("size %d bytes exceeds the limit of %d bytes", m.Size, limit)
			fs.SkippedItems = append(fs.SkippedItems, ItemIssue{UID: m.UID, Reason: reason})
			c.emit(MessageSkipped{Folder: p.Display, UID: m.UID, Reason: reason})
			if err := c.itemError(itemName(p.Display, m.UID), errors.New("imapcopy: "+reason)); err != nil {
				return err
			}
			continue
		}
		todo = append(todo, m)
	}
	c.log().Debug("folder plan", "folder", p.Display, "source", len(srcMsgs), "dest", len(dstMsgs), "mapped", len(done),
		"in_flight", len(inFlight), "full_reconcile", full, "already", fs.AlreadyPresent, "to_copy", len(todo))
	c.emit(FolderStarted{Folder: p.Display, Destination: p.Dst, ToCopy: len(todo)})
	if c.DryRun {
		fs.Copied = len(todo)
		fs.DestCount = len(dstMsgs)
		healthy = true
		return nil
	}
	sp := &sourcePrints{validity: srcSel.UIDValidity, m: map[imap.UID]headPrint{}}
	if len(todo) > 0 {
		if err := s.appendAll(ctx, fc, srcConn, dstConn, p, fs, todo, rule, copiedEarlier, sp); err != nil {
			return err
		}
	}

	phase("appended")
	// The proof.
	v, dstStatus, err := s.verifyFolder(ctx, srcConn, dstConn, p, fs, skipped, rule, sp)
	if err != nil {
		return err
	}
	fs.Verify = v
	phase("verified")
	// Sanitised keywords are deterministic and recorded: they do not stop
	// the next run from skipping the folder, but are reported again.
	if fs.Err == "" && len(fs.Failed) == 0 && len(fs.SkippedItems) == 0 && len(fs.DeleteFailed) == 0 && v.OK() {
		if err := s.cp.SaveFolder(ctx, FolderState{Source: p.Src.Name, Destination: p.Dst,
			SourceUIDValidity: srcSel.UIDValidity, DestUIDValidity: dstSel.UIDValidity,
			SourceStatus: srcStatusAtStart, DestStatus: dstStatus, KeywordIssues: len(fs.Keywords)}); err != nil {
			return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
		}
	}
	healthy = true
	return nil
}

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

// propagateFlags stores the source's (sanitised) flags on copies whose flags
// differ, grouped by flag set and chunked.
func (s *session) propagateFlags(dstConn *conn, p folderPlan, fs *FolderStats, srcMsgs []msgInfo, srcToDst map[imap.UID]imap.UID, dstByUID map[imap.UID]*msgInfo, rule flagRule) error {
	groups := map[string][]imap.UID{}
	flagsOf := map[string][]imap.Flag{}
	for _, m := range srcMsgs {
		du, ok := srcToDst[m.UID]
		if !ok || du == 0 {
			continue
		}
		d := dstByUID[du]
		if d == nil {
			continue
		}
		want, changes := sanitize(m.Flags, rule)
		if len(changes) > 0 {
			// Reported on every pass, like the copy itself, so that a run
			// resumed after the one that copied the message says so too.
			s.keywordIssue(p, fs, nil, ItemIssue{UID: m.UID, Reason: "flags sanitised", Changes: changes})
		}
		if cause, ok := s.memo.bareCause(p.Src.Name, m.UID); ok && hasKeywords(want) {
			// Copied without its keywords by an earlier pass of this Copy
			// because the destination refused them: say so again, and do
			// not store them now.
			s.keywordsRefused(p, fs, nil, m.UID, "", want, cause)
			want = systemOnly(want)
		}
		if flagKey(want) == flagKey(d.Flags) {
			continue
		}
		k := flagKey(want)
		groups[k] = append(groups[k], du)
		flagsOf[k] = want
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		uids := groups[k]
		fs.FlagUpdates += len(uids)
		if s.c.DryRun {
			continue
		}
		for start := 0; start < len(uids); start += uidChunk {
			var set imap.UIDSet
			set.AddNum(uids[start:min(start+uidChunk, len(uids))]...)
			dstConn.tick("STORE")
			err := dstConn.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: flagsOf[k]}, nil).Close()
			if err != nil {
				if _, refused := errIsIMAPNo(err); !refused || isTransientOrFatal(err) {
					return connError{fmt.Errorf("imapcopy: store flags in %q: %w", p.Dst, err)}
				}
				for _, u := range uids[start:min(start+uidChunk, len(uids))] {
					fs.Failed = append(fs.Failed, ItemIssue{UID: u, Reason: "flag update refused: " + err.Error()})
				}
				if err := s.c.itemError("flags of "+p.Display, err); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// reconcile finds source candidates already on the destination by a
// digest of their bytes, counting multiplicity, and returns the pairs.
// Sizes filter first so only plausible pairs are read.
func (s *session) reconcile(srcConn, dstConn *conn, srcCands, dstCands []msgInfo) ([]Mapping, error) {
	srcSizes, dstSizes := map[int64]bool{}, map[int64]bool{}
	for _, m := range srcCands {
		srcSizes[m.Size] = true
	}
	for _, m := range dstCands {
		dstSizes[m.Size] = true
	}
	var srcRead, dstRead []imap.UID
	for _, m := range srcCands {
		if dstSizes[m.Size] {
			srcRead = append(srcRead, m.UID)
		}
	}
	for _, m := range dstCands {
		if srcSizes[m.Size] {
			dstRead = append(dstRead, m.UID)
		}
	}
	if len(srcRead) == 0 || len(dstRead) == 0 {
		return nil, nil
	}
	srcDig, err := digestUIDs(srcConn, srcRead)
	if err != nil {
		return nil, fmt.Errorf("imapcopy: read source for reconciliation: %w", err)
	}
	dstDig, err := digestUIDs(dstConn, dstRead)
	if err != nil {
		return nil, fmt.Errorf("imapcopy: read destination for reconciliation: %w", err)
	}
	byDigest := map[[32]byte][]imap.UID{}
	for _, u := range dstRead {
		if d, ok := dstDig[u]; ok {
			byDigest[d] = append(byDigest[d], u)
		}
	}
	var pairs []Mapping
	for _, u := range srcRead {
		d, ok := srcDig[u]
		if !ok {
			continue
		}
		if l := byDigest[d]; len(l) > 0 {
			pairs = append(pairs, Mapping{Src: u, Dst: l[0]})
			byDigest[d] = l[1:]
		}
	}
	return pairs, nil
}

// digestUIDs reads BODY.PEEK[] of the UIDs (chunked) and hashes them with
// SHA-256 while streaming.
func digestUIDs(cn *conn, uids []imap.UID) (map[imap.UID][32]byte, error) {
	out := make(map[imap.UID][32]byte, len(uids))
	section := &imap.FetchItemBodySection{Peek: true}
	buf := make([]byte, 32<<10)
	for start := 0; start < len(uids); start += fetchChunk {
		var set imap.UIDSet
		set.AddNum(uids[start:min(start+fetchChunk, len(uids))]...)
		cn.tick("FETCH")
		cmd := cn.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
		for {
			m := cmd.Next()
			if m == nil {
				break
			}
			var uid imap.UID
			var sum [32]byte
			got := false
			for {
				it := m.Next()
				if it == nil {
					break
				}
				switch it := it.(type) {
				case imapclient.FetchItemDataUID:
					uid = it.UID
				case imapclient.FetchItemDataBodySection:
					if it.Literal == nil {
						continue
					}
					h := sha256.New()
					if err := readLiteral(cn, h, it.Literal, buf); err != nil {
						return nil, err
					}
					copy(sum[:], h.Sum(nil))
					got = true
				}
			}
			if uid != 0 && got {
				out[uid] = sum
			}
		}
		if err := cmd.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendAll streams the todo messages from the source into the destination
// with up to MaxWriters APPEND connections: our own append connections
// (MULTIAPPEND) when the destination Dialer offers them, else go-imap ones.
// In-flight marks are written per chunk before the chunk is fetched;
// finished copies are recorded in batches.
func (s *session) appendAll(ctx context.Context, fc *folderConns, srcConn, dstConn *conn, p folderPlan, fs *FolderStats, todo []msgInfo, rule flagRule, copiedEarlier map[imap.UID]bool, sp *sourcePrints) error {
	c := s.c
	writers := min(c.maxWriters(), len(todo)/50+1)
	rec := &recorder{s: s, ctx: ctx, folder: p.Src.Name}
	var mu sync.Mutex // guards fs and copiedEarlier
	var run []func(context.Context, <-chan *job) error
	queue := 2 * writers
	var raws []*rawConn
	if s.dstRaw != nil {
		var err error
		if raws, err = s.rawWriters(ctx, writers); err != nil {
			return err
		}
	}
	if len(raws) > 0 {
		defer func() {
			for _, rc := range raws {
				s.dstRaw.put(rc)
			}
		}()
		// An append connection closes itself when its context ends during a
		// command; between commands it stays usable and goes back to the
		// pool.
		queue = 0
		for _, rc := range raws {
			if rc.caps().Multi {
				queue += c.appendBatch()
			} else {
				queue += 2
			}
			run = append(run, func(gctx context.Context, jobs <-chan *job) error {
				return s.rawWriter(gctx, rc, p, fs, &mu, jobs, rule, rec, copiedEarlier)
			})
		}
	} else {
		conns, err := s.imapWriters(ctx, fc, dstConn, writers)
		if err != nil {
			return err
		}
		for _, cn := range conns {
			run = append(run, func(gctx context.Context, jobs <-chan *job) error {
				return s.writer(gctx, cn, p, fs, &mu, jobs, rule, rec, copiedEarlier)
			})
		}
		queue = 2 * len(run)
	}
	err := s.streamBodies(ctx, srcConn, p, todo, queue, run, sp)
	if ferr := rec.flush(); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// imapWriters returns dstConn and up to n-1 more go-imap connections.
func (s *session) imapWriters(ctx context.Context, fc *folderConns, dstConn *conn, n int) ([]*conn, error) {
	conns := []*conn{dstConn}
	fc.writer(dstConn)
	for len(conns) < n {
		if cn := s.dst.idleConn(); cn != nil {
			fc.add(cn, s.dst)
			fc.writer(cn)
			conns = append(conns, cn)
			continue
		}
		if !s.dst.budget.tryAcquire(s.dst.key) {
			break
		}
		cl, err := s.dst.d.Dial(ctx)
		if err != nil {
			s.dst.budget.release(s.dst.key)
			if retry.Classify(err) == retry.Fatal {
				return nil, err
			}
			break // go on with fewer writers
		}
		cn := &conn{Client: cl, p: s.dst, maxRep: s.c.maxRepeat()}
		fc.add(cn, s.dst)
		fc.writer(cn)
		conns = append(conns, cn)
	}
	return conns, nil
}

// streamBodies fetches the todo messages chunk by chunk into a queue of
// queue jobs that the writers in run consume, and notes their fingerprints
// in sp for the proof.
func (s *session) streamBodies(ctx context.Context, srcConn *conn, p folderPlan, todo []msgInfo, queue int, run []func(context.Context, <-chan *job) error, sp *sourcePrints) error {
	c := s.c
	info := make(map[imap.UID]msgInfo, len(todo))
	for _, m := range todo {
		info[m.UID] = m
	}

	jobs := make(chan *job, queue)
	g, gctx := newGroup(ctx)

	// Reader: fetch bodies chunk by chunk.
	g.Go(func() (err error) {
		defer recoverTo(&err)
		defer close(jobs)
		for start := 0; start < len(todo); start += fetchChunk {
			chunk := todo[start:min(start+fetchChunk, len(todo))]
			uids := make([]imap.UID, len(chunk))
			for i, m := range chunk {
				uids[i] = m.UID
			}
			if err := s.cp.MarkInFlight(gctx, p.Src.Name, uids); err != nil {
				return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
			}
			var set imap.UIDSet
			set.AddNum(uids...)
			// Each literal may be as large as its message's announced size
			// plus a margin, and never over MaxSize: a server announcing
			// more is refused before a byte is stored.
			var largest int64
			for _, m := range chunk {
				largest = max(largest, m.Size)
			}
			allow := func(u imap.UID) (int64, string) {
				size, why := largest, "the largest RFC822.SIZE of the batch plus a margin"
				if mi, ok := info[u]; ok {
					size, why = mi.Size, fmt.Sprintf("its RFC822.SIZE %d plus a margin", mi.Size)
				}
				lim := bodyAllowance(size)
				if c.MaxSize > 0 && c.MaxSize < lim {
					return c.MaxSize, "the --max-size limit"
				}
				return lim, why
			}
			srcConn.guard.raiseBodies(bodyAllowance(largest))
			var abort func()
			if srcConn.guard != nil {
				abort = func() { srcConn.guard.Close() }
			}
			srcConn.tick("FETCH")
			cmd := srcConn.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
			seen := map[imap.UID]bool{}
			for {
				m := cmd.Next()
				if m == nil {
					break
				}
				j, err := readJob(m, c.spill(), s.mem, c.TempDir, allow, abort)
				if err != nil {
					srcConn.Client.Close() // never discard after a read error (go-imap races)
					var ble *bodyLimitError
					if errors.As(err, &ble) && ble.UID != 0 {
						// That message's failure: remembered, so the next
						// pass (started at once, the connection is gone)
						// reports it without fetching it again.
						it := ItemIssue{UID: ble.UID, Reason: ble.Error()}
						s.memo.markRefused(p.Src.Name, it)
						c.emit(MessageFailed{Folder: p.Display, UID: ble.UID, Err: ble})
						if aerr := c.itemError(itemName(p.Display, ble.UID), ble); aerr != nil {
							return aerr
						}
					}
					return connError{fmt.Errorf("imapcopy: read source message in %q: %w", p.Src.Name, err)}
				}
				if j == nil {
					continue
				}
				mi, ok := info[j.uid]
				if !ok {
					j.body.Close()
					continue
				}
				j.info = mi
				seen[j.uid] = true
				if !c.DeepVerify {
					sp.add(j.uid, j.body.head(64<<10))
				}
				select {
				case jobs <- j:
				case <-gctx.Done():
					j.body.Close()
					_ = cmd.Close() // drains pending literals so that go-imap's reader can stop
					return gctx.Err()
				}
			}
			if err := cmd.Close(); err != nil {
				return fmt.Errorf("imapcopy: fetch from source %q: %w", p.Src.Name, err)
			}
			var gone []imap.UID
			for _, u := range uids {
				if !seen[u] {
					gone = append(gone, u) // expunged meanwhile
				}
			}
			if len(gone) > 0 {
				if err := s.cp.ClearInFlight(gctx, p.Src.Name, gone); err != nil {
					return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
				}
			}
		}
		return nil
	})

	for _, w := range run {
		g.Go(func() (err error) {
			defer recoverTo(&err)
			return w(gctx, jobs)
		})
	}
	err := g.Wait()
	// Drain jobs left behind by an error.
	for j := range jobs {
		j.body.Close()
	}
	return err
}

// recorder batches Done records.
type recorder struct {
	s      *session
	ctx    context.Context
	folder string
	mu     sync.Mutex
	buf    []Mapping
}

func (r *recorder) add(m Mapping) error {
	r.mu.Lock()
	r.buf = append(r.buf, m)
	full := len(r.buf) >= 64
	r.mu.Unlock()
	if full {
		return r.flush()
	}
	return nil
}

func (r *recorder) flush() error {
	r.mu.Lock()
	buf := r.buf
	r.buf = nil
	r.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	// Record even when the copy is being cancelled: these APPENDs happened.
	if err := r.s.cp.Done(context.WithoutCancel(r.ctx), r.folder, buf); err != nil {
		return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
	}
	return nil
}

// pending is an APPEND sent and not yet answered.
type pending struct {
	cmd   *imapclient.AppendCommand
	j     *job
	flags []imap.Flag
}

// writer appends jobs on one connection, keeping a few APPENDs in flight.
func (s *session) writer(ctx context.Context, cn *conn, p folderPlan, fs *FolderStats, mu *sync.Mutex, jobs <-chan *job, rule flagRule, rec *recorder, copiedEarlier map[imap.UID]bool) error {
	const window = 4
	var inflight []pending
	finish := func(pd pending) error {
		defer pd.j.body.Close()
		data, err := pd.cmd.Wait()
		if err != nil {
			// Only a tagged NO/BAD proves the message was not stored. Any
			// other failure (connection closed, cancelled) keeps its
			// in-flight mark, so the next pass looks it up first.
			ie, refused := errIsIMAPNo(err)
			if !refused || isTransientOrFatal(err) {
				return connError{fmt.Errorf("imapcopy: append to %q: %w", p.Dst, err)}
			}
			if hasKeywords(pd.flags) && retryableRefusal(ie) {
				// Retry once without keywords: some servers refuse tags.
				sys := systemOnly(pd.flags)
				data2, err2 := s.appendOne(cn, p.Dst, pd.j, sys)
				if err2 == nil {
					s.memo.markBare(p.Src.Name, pd.j.uid, err) // later passes of this Copy report it too
					s.keywordsRefused(p, fs, mu, pd.j.uid, pd.j.messageID(), pd.flags, err)
					return s.recordCopy(p, fs, mu, pd.j, appendUID(data2), rec, copiedEarlier)
				}
				if _, refused2 := errIsIMAPNo(err2); !refused2 || isTransientOrFatal(err2) {
					return connError{fmt.Errorf("imapcopy: append to %q: %w", p.Dst, err2)}
				}
				err = err2
			}
			return s.refuse(ctx, p, fs, mu, pd.j, err)
		}
		return s.recordCopy(p, fs, mu, pd.j, appendUID(data), rec, copiedEarlier)
	}
	drain := func(keep int) error {
		for len(inflight) > keep {
			pd := inflight[0]
			inflight = inflight[1:]
			if err := finish(pd); err != nil {
				for _, rest := range inflight {
					rest.j.body.Close()
				}
				inflight = nil
				return err
			}
		}
		return nil
	}
	for j := range jobs {
		flags := s.outgoingFlags(p, fs, mu, j, rule)
		r, err := j.body.Reader()
		if err != nil {
			j.body.Close()
			drain(0)
			return fmt.Errorf("imapcopy: spool: %w", err)
		}
		cn.tick("APPEND")
		cmd := cn.Append(p.Dst, j.body.size, &imap.AppendOptions{Flags: flags, Time: j.info.Time.Time})
		_, werr := io.Copy(cmd, r)
		cerr := cmd.Close()
		if werr != nil || cerr != nil {
			if _, waitErr := cmd.Wait(); waitErr != nil {
				if ie, refused := errIsIMAPNo(waitErr); refused && !isTransientOrFatal(waitErr) {
					// The server answered NO/BAD in place of the literal's
					// continuation request (e.g. over its size limit). go-imap
					// cannot use the connection any more: remember the
					// answer, then start a new pass on a new connection, which
					// sends the message without keywords (when they may be
					// the cause) or reports it without sending it again.
					// go-imap closed the connection with this refusal, so
					// APPENDs still in flight may complete with the very
					// same error although the server stored them: their
					// outcome is unknown. Their in-flight marks make the
					// next pass look them up on the destination.
					kept := inflight[:0]
					for _, pd := range inflight {
						if _, e := pd.cmd.Wait(); e != nil && errors.Is(e, waitErr) {
							pd.j.body.Close()
							continue
						}
						kept = append(kept, pd)
					}
					inflight = kept
					derr := drain(0)
					cn.Client.Close()
					var err error
					if _, bare := s.memo.bareCause(p.Src.Name, j.uid); hasKeywords(flags) && retryableRefusal(ie) && !bare {
						s.memo.markBare(p.Src.Name, j.uid, waitErr)
					} else {
						err = s.refuse(ctx, p, fs, mu, j, waitErr)
					}
					j.body.Close()
					if err != nil {
						return err
					}
					return connError{fmt.Errorf("imapcopy: append to %q: refused before its literal: %w", p.Dst, errors.Join(waitErr, derr))}
				}
			}
			j.body.Close()
			drain(0)
			// A short literal desynchronises the connection: drop it.
			cn.Client.Close()
			return fmt.Errorf("imapcopy: append to %q: %w", p.Dst, errors.Join(werr, cerr, errConnDropped))
		}
		inflight = append(inflight, pending{cmd: cmd, j: j, flags: flags})
		if err := drain(window - 1); err != nil {
			return err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := drain(0); err != nil {
		return err
	}
	return ctx.Err()
}

// retryableRefusal reports whether an APPEND refused with ie may pass
// without keywords: not when the server named another cause.
func retryableRefusal(ie *imap.Error) bool {
	return ie.Code != imap.ResponseCodeTooBig && ie.Code != imap.ResponseCodeOverQuota && ie.Code != imap.ResponseCodeTryCreate
}

// refuse records the destination's final refusal of j and remembers it, so
// that passes restarted in this Copy (after the destination dropped the
// connection, as Zimbra does after 5 errors in a row) report it without
// sending it again.
func (s *session) refuse(ctx context.Context, p folderPlan, fs *FolderStats, mu *sync.Mutex, j *job, err error) error {
	it := ItemIssue{UID: j.uid, MessageID: j.messageID(), Reason: err.Error()}
	mu.Lock()
	fs.Failed = append(fs.Failed, it)
	mu.Unlock()
	s.memo.markRefused(p.Src.Name, it)
	s.c.emit(MessageFailed{Folder: p.Display, UID: j.uid, Err: err})
	_ = s.cp.ClearInFlight(context.WithoutCancel(ctx), p.Src.Name, []imap.UID{j.uid})
	return s.c.itemError(itemName(p.Display, j.uid), err)
}

// errConnDropped classifies a broken APPEND as transient.
var errConnDropped = io.ErrUnexpectedEOF

func (s *session) appendOne(cn *conn, mailbox string, j *job, flags []imap.Flag) (*imap.AppendData, error) {
	r, err := j.body.Reader()
	if err != nil {
		return nil, err
	}
	cn.tick("APPEND")
	cmd := cn.Append(mailbox, j.body.size, &imap.AppendOptions{Flags: flags, Time: j.info.Time.Time})
	_, werr := io.Copy(cmd, r)
	if cerr := cmd.Close(); werr != nil || cerr != nil {
		cn.Client.Close()
		return nil, errors.Join(werr, cerr, errConnDropped)
	}
	return cmd.Wait()
}

// appendUID is the destination UID of an APPEND's answer, 0 when unknown.
func appendUID(data *imap.AppendData) imap.UID {
	if data == nil {
		return 0
	}
	return data.UID
}

// recordCopy counts j as copied to dstUID (0 when the server did not say).
func (s *session) recordCopy(p folderPlan, fs *FolderStats, mu *sync.Mutex, j *job, dstUID imap.UID, rec *recorder, copiedEarlier map[imap.UID]bool) error {
	mu.Lock()
	fs.Copied++
	fs.Bytes += j.body.size
	copiedEarlier[j.uid] = true
	mu.Unlock()
	s.c.emit(MessageCopied{Folder: p.Display, UID: j.uid, Bytes: j.body.size})
	return rec.add(Mapping{Src: j.uid, Dst: dstUID})
}

func hasKeywords(flags []imap.Flag) bool {
	for _, f := range flags {
		if len(f) > 0 && f[0] != '\\' {
			return true
		}
	}
	return false
}

func systemOnly(flags []imap.Flag) []imap.Flag {
	var out []imap.Flag
	for _, f := range flags {
		if len(f) > 0 && f[0] == '\\' {
			out = append(out, f)
		}
	}
	return out
}

func droppedKeywords(flags []imap.Flag, cause error) []KeywordChange {
	var out []KeywordChange
	for _, f := range flags {
		if len(f) > 0 && f[0] != '\\' {
			out = append(out, KeywordChange{From: string(f), Reason: "APPEND with keywords refused: " + cause.Error()})
		}
	}
	return out
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

// readLiteral copies a whole FETCH literal into w through buf (reused by
// the caller: io.Copy would allocate 32 KiB per literal). A literal cut
// short (the connection closed mid-literal reads as a plain EOF) is an
// error, and the connection is closed at once: go-imap would otherwise
// discard the rest while its reader goroutine reads the same buffer.
func readLiteral(cn *conn, w io.Writer, lit imap.LiteralReader, buf []byte) error {
	n, err := io.CopyBuffer(w, lit, buf)
	if err == nil && n != lit.Size() {
		err = fmt.Errorf("literal cut short after %d of %d bytes: %w", n, lit.Size(), io.ErrUnexpectedEOF)
	}
	if err != nil {
		cn.Client.Close() // never discard after a read error (go-imap races)
	}
	return err
}
