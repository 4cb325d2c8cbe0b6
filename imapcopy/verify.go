package imapcopy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// printed is one message as the proof sees it.
type printed struct {
	msgInfo
	fp        string
	messageID string
}

// fingerprints fetches every message of the selected mailbox with its
// fingerprint: RFC822.SIZE, Message-ID and Date (unfolded values), or with
// deep a SHA-256 of the whole message.
func fingerprints(cn *conn, n uint32, deep bool) ([]printed, error) {
	if n == 0 {
		return nil, nil
	}
	return fingerprintsOf(cn, imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, int(n), deep)
}

// fingerprintsOf is fingerprints for the messages of set; n sizes the
// result.
func fingerprintsOf(cn *conn, set imap.UIDSet, n int, deep bool) ([]printed, error) {
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID", "Date"}, Peek: true}
	if deep {
		section = &imap.FetchItemBodySection{Peek: true}
		// Whole bodies stream into a hash: nothing of them is held, so
		// their literals may be as large as a message can be.
		cn.guard.raiseBodies(1 << 40)
	}
	cn.tick("FETCH")
	cmd := cn.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{section}})
	out := make([]printed, 0, min(n, existsHint)) // n may come from EXISTS
	var buf bytes.Buffer
	copyBuf := make([]byte, 32<<10)
	for {
		m := cmd.Next()
		if m == nil {
			break
		}
		var pr printed
		var digest string
		for {
			it := m.Next()
			if it == nil {
				break
			}
			pr.setMeta(it)
			switch it := it.(type) {
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				if deep {
					h := sha256.New()
					if err := readLiteral(cn, h, it.Literal, copyBuf); err != nil {
						return nil, err
					}
					digest = hex.EncodeToString(h.Sum(nil))
				} else {
					buf.Reset()
					if err := readLiteral(cn, &limitedWriter{w: &buf, n: 64 << 10}, it.Literal, copyBuf); err != nil {
						return nil, err
					}
					v := headerValues(buf.Bytes(), "Message-Id", "Date")
					pr.messageID = v[0]
					digest = v[0] + "|" + v[1]
				}
			}
		}
		if pr.UID == 0 {
			continue
		}
		pr.fp = fmt.Sprintf("%d|%s", pr.Size, digest)
		out = append(out, pr)
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// headPrint is a source message's fingerprint without its size, taken from
// the bytes a pass copied.
type headPrint struct{ messageID, digest string }

// sourcePrints remembers the fingerprints of the source messages a folder
// pass read whole to copy them, so that its proof does not read their
// headers from the source again (IMAP messages never change under a UID
// within one UIDVALIDITY). The destination is always read in full.
type sourcePrints struct {
	validity uint32
	m        map[imap.UID]headPrint
}

// add notes the fingerprint of a message read whole, when its header parses
// cleanly within head; otherwise the proof asks the server, as for every
// message it did not copy.
func (sp *sourcePrints) add(uid imap.UID, head []byte) {
	if sp == nil {
		return
	}
	v, ok := headerValuesStrict(head, "Message-Id", "Date")
	if !ok {
		return
	}
	sp.m[uid] = headPrint{messageID: v[0], digest: v[0] + "|" + v[1]}
}

// sourceFingerprints is fingerprints for the source, taking what sp knows
// and fetching the headers of the other messages only.
func sourceFingerprints(cn *conn, n uint32, sp *sourcePrints) (out []printed, reused int, err error) {
	metas, err := fetchMeta(cn, n)
	if err != nil {
		return nil, 0, err
	}
	var need []imap.UID
	for _, m := range metas {
		if _, ok := sp.m[m.UID]; !ok {
			need = append(need, m.UID)
		}
	}
	out = make([]printed, 0, len(metas))
	for start := 0; start < len(need); start += uidChunk {
		var set imap.UIDSet
		set.AddNum(need[start:min(start+uidChunk, len(need))]...)
		got, err := fingerprintsOf(cn, set, len(set), false)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, got...)
	}
	for _, m := range metas {
		if hp, ok := sp.m[m.UID]; ok {
			out = append(out, printed{msgInfo: m, messageID: hp.messageID, fp: fmt.Sprintf("%d|%s", m.Size, hp.digest)})
			reused++
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, reused, nil
}

// compare builds the Verification from both sides' fingerprints. mapped
// pairs source UIDs with destination UIDs where known; the others pair in
// UID order within equal fingerprints.
func compare(src, dst []printed, mapped map[imap.UID]imap.UID, skipped map[imap.UID]bool, rule flagRule, deep bool) *Verification {
	v, _ := comparePairs(src, dst, mapped, skipped, rule, deep)
	return v
}

// verifyPair is a source message and the destination copy the proof matched it
// with; exact is set when the pairing is unambiguous (the checkpoint's
// APPENDUID mapping, or a fingerprint the source holds once).
type verifyPair struct {
	src, dst imap.UID
	size     int64
	exact    bool
}

// comparePairs is compare that also returns the pairs it matched.
func comparePairs(src, dst []printed, mapped map[imap.UID]imap.UID, skipped map[imap.UID]bool, rule flagRule, deep bool) (*Verification, []verifyPair) {
	v := &Verification{Deep: deep, DestCount: len(dst)}
	if deep {
		v.Proof = ProofDeep
	}
	var pairs []verifyPair
	srcByFP := map[string]int{}
	for i := range src {
		srcByFP[src[i].fp]++
	}
	dstByUID := map[imap.UID]*printed{}
	dstByFP := map[string][]*printed{}
	for i := range dst {
		d := &dst[i]
		dstByUID[d.UID] = d
		dstByFP[d.fp] = append(dstByFP[d.fp], d)
	}
	used := map[imap.UID]bool{}
	var unpaired []*printed
	checkPair := func(s, d *printed) {
		want, _ := sanitize(s.Flags, rule)
		if flagKey(want) != flagKey(d.Flags) || s.Date != d.Date {
			v.FlagMismatches++
		}
	}
	for i := range src {
		s := &src[i]
		if skipped[s.UID] {
			v.Skipped++
			continue
		}
		v.SourceCount++
		if du, ok := mapped[s.UID]; ok && du != 0 {
			if d := dstByUID[du]; d != nil && d.fp == s.fp && !used[du] {
				used[du] = true
				checkPair(s, d)
				pairs = append(pairs, verifyPair{src: s.UID, dst: du, size: s.Size, exact: true})
				continue
			}
		}
		unpaired = append(unpaired, s)
	}
	for _, s := range unpaired {
		var found *printed
		for _, d := range dstByFP[s.fp] {
			if !used[d.UID] {
				found = d
				break
			}
		}
		if found == nil {
			v.Missing++
			if len(v.Examples) < 10 {
				v.Examples = append(v.Examples, s.UID)
			}
			continue
		}
		used[found.UID] = true
		checkPair(s, found)
		pairs = append(pairs, verifyPair{src: s.UID, dst: found.UID, size: s.Size, exact: srcByFP[s.fp] == 1})
	}
	v.Extra = len(dst) - len(used)
	// A destination holding more copies of a source fingerprint than the
	// source has is a duplicate made by a copy, not mail that was already
	// there: the proof fails on it.
	for fp, ds := range dstByFP {
		if n := srcByFP[fp]; n > 0 && len(ds) > n {
			v.Duplicated += len(ds) - n
		}
	}
	v.Extra -= v.Duplicated
	return v, pairs
}

// verify is the proof step of a folder pass: it re-selects the destination
// to see every APPEND, compares both sides, and keeps the destination's
// status snapshot for the checkpoint.
func (f *folderRun) verify(ctx context.Context) error {
	v, st, err := f.prove(ctx)
	if err != nil {
		return err
	}
	f.fs.Verify, f.dstAtEnd = v, st
	return nil
}

// sourcePrints examines the source folder and returns its fingerprints,
// taken from sp where the copy noted them.
func (f *folderRun) sourcePrints(srcConn *conn, sp *sourcePrints) ([]printed, int, error) {
	srcSel, err := srcConn.Select(f.p.Src.Name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, 0, fmt.Errorf("imapcopy: examine source %q: %w", f.p.Src.Name, err)
	}
	var srcPrints []printed
	reused := 0
	if sp != nil && len(sp.m) > 0 && !f.c.DeepVerify && sp.validity == srcSel.UIDValidity {
		srcPrints, reused, err = sourceFingerprints(srcConn, srcSel.NumMessages, sp)
	} else {
		srcPrints, err = fingerprints(srcConn, srcSel.NumMessages, f.c.DeepVerify)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("imapcopy: verify source %q: %w", f.p.Src.Name, err)
	}
	return srcPrints, reused, nil
}

// prove runs the proof and returns it with the destination's status.
func (f *folderRun) prove(ctx context.Context) (*Verification, FolderStatus, error) {
	s, srcConn, dstConn, p, fs := f.s, f.src, f.dst, f.p, f.fs
	skipped, rule, sp := f.skipped, f.rule, f.prints
	// The destination is read on its own connection while the source is.
	var dstSel *imap.SelectData
	var dstPrints []printed
	dstDone := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				dstDone <- &PanicError{Value: v}
			}
		}()
		var err error
		dstSel, err = dstConn.Select(p.Dst, &imap.SelectOptions{CondStore: s.dstInfo.has(imap.CapCondStore)}).Wait()
		if err != nil {
			dstDone <- fmt.Errorf("imapcopy: select destination %q: %w", p.Dst, err)
			return
		}
		if dstPrints, err = fingerprints(dstConn, dstSel.NumMessages, s.c.DeepVerify); err != nil {
			dstDone <- fmt.Errorf("imapcopy: verify destination %q: %w", p.Dst, err)
			return
		}
		dstDone <- nil
	}()
	srcPrints, reused, err := f.sourcePrints(srcConn, sp)
	if dstErr := <-dstDone; err == nil {
		err = dstErr
	}
	if err != nil {
		return nil, FolderStatus{}, err
	}
	done, _, err := s.cp.Mappings(ctx, p.Src.Name)
	if err != nil {
		return nil, FolderStatus{}, fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
	}
	mapped := make(map[imap.UID]imap.UID, len(done))
	for _, m := range done {
		mapped[m.Src] = m.Dst
	}
	v, pairs := comparePairs(srcPrints, dstPrints, mapped, skipped, rule, s.c.DeepVerify)
	v.SourceFromCopy = reused
	if err := s.sample(srcConn, dstConn, p, pairs, v); err != nil {
		return nil, FolderStatus{}, err
	}
	fs.SourceCount, fs.DestCount = len(srcPrints), len(dstPrints)
	st := FolderStatus{UIDValidity: dstSel.UIDValidity, UIDNext: uint32(dstSel.UIDNext), Messages: dstSel.NumMessages, HighestModSeq: dstSel.HighestModSeq}
	return v, st, nil
}

// sample completes the default proof of a folder: it names the proof in v
// and compares the whole bodies of a sample of pairs (see
// DefaultVerifySample). Both connections have the folder selected.
func (s *session) sample(srcConn, dstConn *conn, p folderPlan, pairs []verifyPair, v *Verification) error {
	v.Proof = s.c.Proof()
	if s.c.DeepVerify {
		return nil
	}
	f := s.c.sampleFraction()
	if f == 0 {
		return nil
	}
	v.SampleSeed = s.seed
	if err := sampleBodies(srcConn, dstConn, pickSample(pairs, f, s.seed, p.Src.Name), v); err != nil {
		return fmt.Errorf("imapcopy: verify sample of %q: %w", p.Src.Name, err)
	}
	return nil
}

// verifyOnly is the proof without a copy (Copier.Verify).
func (s *session) verifyOnly(ctx context.Context, p folderPlan, fs *FolderStats) error {
	fc := &folderConns{}
	stop := context.AfterFunc(ctx, fc.closeAll)
	defer stop()
	healthy := false
	defer func() { fc.release(healthy) }()
	srcConn, err := s.src.get(ctx, s.c.maxRepeat())
	if err != nil {
		return err
	}
	fc.add(srcConn, s.src)
	srcSel, err := srcConn.Select(p.Src.Name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("imapcopy: examine source %q: %w", p.Src.Name, err)
	}
	srcConn.selected = p.Src.Name
	srcPrints, err := fingerprints(srcConn, srcSel.NumMessages, s.c.DeepVerify)
	if err != nil {
		return fmt.Errorf("imapcopy: verify source %q: %w", p.Src.Name, err)
	}
	dstConn, err := s.dst.get(ctx, s.c.maxRepeat())
	if err != nil {
		return err
	}
	fc.add(dstConn, s.dst)
	var dstPrints []printed
	rule := flagRule{}
	if _, exists := s.dstInfo.byName[p.Dst]; exists {
		dstSel, err := dstConn.Select(p.Dst, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return fmt.Errorf("imapcopy: examine destination %q: %w", p.Dst, err)
		}
		dstConn.selected = p.Dst
		rule = newFlagRule(dstSel.PermanentFlags)
		if dstPrints, err = fingerprints(dstConn, dstSel.NumMessages, s.c.DeepVerify); err != nil {
			return fmt.Errorf("imapcopy: verify destination %q: %w", p.Dst, err)
		}
	}
	done, _, err := s.cp.Mappings(ctx, p.Src.Name)
	if err != nil {
		return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
	}
	mapped := map[imap.UID]imap.UID{}
	for _, m := range done {
		mapped[m.Src] = m.Dst
	}
	var skipped map[imap.UID]bool
	if s.c.SkipDeleted {
		skipped = map[imap.UID]bool{}
		for _, pr := range srcPrints {
			if hasFlag(pr.Flags, imap.FlagDeleted) {
				skipped[pr.UID] = true
			}
		}
	}
	v, pairs := comparePairs(srcPrints, dstPrints, mapped, skipped, rule, s.c.DeepVerify)
	if err := s.sample(srcConn, dstConn, p, pairs, v); err != nil {
		return err
	}
	fs.Verify = v
	fs.SourceCount, fs.DestCount = len(srcPrints), len(dstPrints)
	healthy = true
	return nil
}

// readOnlyCheckpoint lets a dry run or a verification read the checkpoint
// without writing it.
type readOnlyCheckpoint struct{ Checkpoint }

func (readOnlyCheckpoint) SaveFolder(context.Context, FolderState) error          { return nil }
func (readOnlyCheckpoint) ResetFolder(context.Context, string) error              { return nil }
func (readOnlyCheckpoint) MarkInFlight(context.Context, string, []imap.UID) error { return nil }
func (readOnlyCheckpoint) Done(context.Context, string, []Mapping) error          { return nil }
func (readOnlyCheckpoint) ClearInFlight(context.Context, string, []imap.UID) error {
	return nil
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(int64(len(p)), l.n)
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
		l.n -= k
	}
	return len(p), nil
}
