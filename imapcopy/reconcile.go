package imapcopy

import (
	"crypto/sha256"
	"fmt"
	"io"
	"sort"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// propagateFlags stores the source's (sanitised) flags on copies whose flags
// differ, grouped by flag set and chunked.
func (f *folderRun) propagateFlags() error {
	s, dstConn, p, fs, rule := f.s, f.dst, f.p, f.fs, f.rule
	srcMsgs, srcToDst, dstByUID := f.srcMsgs, f.srcToDst, f.dstByUID
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
			f.keywordIssue(ItemIssue{UID: m.UID, Reason: "flags sanitised", Changes: changes})
		}
		if cause, ok := s.memo.bareCause(p.Src.Name, m.UID); ok && hasKeywords(want) {
			// Copied without its keywords by an earlier pass of this Copy
			// because the destination refused them: say so again, and do
			// not store them now.
			f.keywordsRefused(m.UID, "", want, cause)
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
