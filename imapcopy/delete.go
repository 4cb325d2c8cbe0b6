package imapcopy

import (
	"context"
	"fmt"
	"slices"

	"github.com/emersion/go-imap/v2"
)

// Forgetter is implemented by Checkpoints that can drop the UID map entries
// of source messages that no longer exist, once their copies are deleted
// (Copier.Delete). A Checkpoint without it keeps them: they are never used
// again, since IMAP does not reuse a UID within one UIDVALIDITY, so that
// only costs space. MemoryCheckpoint and zxmigrate/state implement it.
type Forgetter interface {
	// Forget drops the map entries (and in-flight marks) of these source
	// UIDs of the folder.
	Forget(ctx context.Context, source string, uids []imap.UID) error
}

// Forget implements Forgetter.
func (m *MemoryCheckpoint) Forget(_ context.Context, source string, uids []imap.UID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(source)
	for _, u := range uids {
		delete(f.done, u)
		delete(f.inFlight, u)
	}
	return nil
}

// propagateDeletions deletes on the destination the copies of messages the
// source no longer has (Copier.Delete). Only messages in the UID map are
// candidates, that is copies this tool made or matched to a source message
// in an earlier pass; mail without a source counterpart never is. They
// are flagged \Deleted and removed with UID EXPUNGE of exactly their UIDs
// (UIDPLUS): a plain EXPUNGE would also remove messages someone else
// flagged \Deleted, so without UIDPLUS nothing is deleted. A copy whose
// destination UID was never known (appended without APPENDUID) is kept and
// its message reported once. mapped is false when the UID map was void (no
// state, a UIDVALIDITY changed): then nothing is known to be a copy. whole
// is false when srcMsgs holds fewer messages than the source said it has:
// then nothing is deleted.
func (f *folderRun) propagateDeletions(ctx context.Context) error {
	s, dstConn, p, fs := f.s, f.dst, f.p, f.fs
	srcMsgs, done, dstByUID, mapped, uidPlus := f.srcMsgs, f.done, f.dstByUID, f.mapValid, f.uidPlus
	// A listing shorter than the mailbox's EXISTS (a message expunged
	// meanwhile, or a server that left some out) must not read as
	// deletions.
	whole := len(srcMsgs) == int(f.srcSel.NumMessages)
	if !mapped {
		return nil
	}
	present := make(map[imap.UID]bool, len(srcMsgs))
	for _, m := range srcMsgs {
		present[m.UID] = true
	}
	var forget []imap.UID  // source UIDs whose copies are gone or go now
	var del []imap.UID     // destination UIDs to delete
	var unknown []imap.UID // source UIDs whose copy's UID the destination never said
	srcOf := map[imap.UID]imap.UID{}
	for _, m := range done {
		switch {
		case present[m.Src]:
		case m.Dst == 0:
			unknown = append(unknown, m.Src)
		case dstByUID[m.Dst] == nil:
			forget = append(forget, m.Src) // nothing left to delete
		default:
			del = append(del, m.Dst)
			srcOf[m.Dst] = m.Src
		}
	}
	if !whole && len(del)+len(unknown) > 0 {
		fs.DeleteFailed = append(fs.DeleteFailed, ItemIssue{Reason: fmt.Sprintf(
			"the source listed %d messages, fewer than it said it holds: %d deletions held back until a run lists them all", len(srcMsgs), len(del)+len(unknown))})
		return nil
	}
	if len(del) > 0 && !uidPlus {
		fs.DeleteFailed = append(fs.DeleteFailed, ItemIssue{Reason: fmt.Sprintf(
			"%d messages deleted at the source were not deleted on the destination: it lacks UIDPLUS (UID EXPUNGE), and a plain EXPUNGE could remove other messages", len(del))})
		del = nil
	}
	// A copy appended without APPENDUID cannot be told apart from mail the
	// destination holds on its own: reported once, not tried again.
	for _, u := range unknown {
		fs.DeleteFailed = append(fs.DeleteFailed, ItemIssue{UID: u,
			Reason: "deleted at the source, but its copy is not deleted: the destination gave no UID for it when it was appended (no UIDPLUS), so it cannot be told apart; not tried again"})
	}
	forget = append(forget, unknown...)
	if s.c.DryRun {
		fs.Deleted = len(del)
		return nil
	}
	slices.Sort(del)
	for start := 0; start < len(del); start += uidChunk {
		chunk := del[start:min(start+uidChunk, len(del))]
		var set imap.UIDSet
		set.AddNum(chunk...)
		dstConn.tick("STORE")
		err := dstConn.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
		if err == nil {
			dstConn.tick("EXPUNGE")
			err = dstConn.UIDExpunge(set).Close()
		}
		if err != nil {
			if _, refused := errIsIMAPNo(err); !refused || isTransientOrFatal(err) {
				return connError{fmt.Errorf("imapcopy: delete in %q: %w", p.Dst, err)}
			}
			// Refused: report these messages; their map entries stay, so
			// the next run with Delete tries again.
			for _, d := range chunk {
				fs.DeleteFailed = append(fs.DeleteFailed, ItemIssue{UID: srcOf[d],
					Reason: fmt.Sprintf("not deleted on the destination (uid %d): %v", d, err)})
			}
			if ierr := s.c.itemError(fmt.Sprintf("%s: deleting %d messages", p.Display, len(chunk)), err); ierr != nil {
				return ierr
			}
			continue
		}
		fs.Deleted += len(chunk)
		for _, d := range chunk {
			forget = append(forget, srcOf[d])
		}
	}
	if len(forget) > 0 {
		if fg, ok := s.cp.(Forgetter); ok {
			if err := fg.Forget(ctx, p.Src.Name, forget); err != nil {
				return fatalError{fmt.Errorf("imapcopy: checkpoint: %w", err)}
			}
		}
	}
	if fs.Deleted > 0 {
		s.c.log().Info("deleted copies of messages the source no longer has", "folder", p.Display, "messages", fs.Deleted)
	}
	return nil
}
