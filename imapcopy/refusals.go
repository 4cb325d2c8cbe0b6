package imapcopy

import (
	"io"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// refusalMemo remembers, for the folder passes of one Copy, the messages the
// destination refused (alone or in a MULTIAPPEND). A pass restarted after
// the destination dropped the connection (Zimbra does after 5 errors in a row) or after a refusal that
// cost the connection (a NO in place of a literal's continuation request)
// then reports those messages without sending them again, or sends them
// without keywords when the keywords may have been the cause. It is safe
// for concurrent use.
type refusalMemo struct {
	mu      sync.Mutex
	refused map[string]map[imap.UID]ItemIssue // source folder → UID → the final refusal
	bare    map[string]map[imap.UID]error     // source folder → UID → why it goes without keywords
	single  map[string]map[imap.UID]bool      // source folder → UID → in a refused MULTIAPPEND: goes alone
}

// markSingle remembers that a message was in a MULTIAPPEND the destination
// refused: later passes send it in a command of its own, so that a refusal
// names it.
func (m *refusalMemo) markSingle(folder string, uid imap.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	memoSet(&m.single, folder, uid, true)
}

// isSingle reports whether markSingle was called for the message.
func (m *refusalMemo) isSingle(folder string, uid imap.UID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.single[folder][uid]
}

// markRefused remembers the destination's final refusal of a message.
func (m *refusalMemo) markRefused(folder string, it ItemIssue) {
	m.mu.Lock()
	defer m.mu.Unlock()
	memoSet(&m.refused, folder, it.UID, it)
}

// refusal returns the refusal remembered by markRefused.
func (m *refusalMemo) refusal(folder string, uid imap.UID) (ItemIssue, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.refused[folder][uid]
	return it, ok
}

// markBare remembers that the destination refused a message with keywords
// before its literal was sent: later passes send it with its system flags
// only, as the retry on the same connection does after a NO that follows
// the literal.
func (m *refusalMemo) markBare(folder string, uid imap.UID, cause error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	memoSet(&m.bare, folder, uid, cause)
}

// bareCause returns the refusal remembered by markBare.
func (m *refusalMemo) bareCause(folder string, uid imap.UID) (error, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	err, ok := m.bare[folder][uid]
	return err, ok
}

// size is how many messages of folder the memo holds: a pass that makes it
// grow made progress.
func (m *refusalMemo) size(folder string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.refused[folder]) + len(m.bare[folder]) + len(m.single[folder])
}

// memoSet sets (*m)[folder][uid] = v, making the maps as needed.
func memoSet[V any](m *map[string]map[imap.UID]V, folder string, uid imap.UID, v V) {
	if *m == nil {
		*m = map[string]map[imap.UID]V{}
	}
	if (*m)[folder] == nil {
		(*m)[folder] = map[imap.UID]V{}
	}
	(*m)[folder][uid] = v
}

// retryableRefusal reports whether an APPEND refused with ie may pass
// without keywords: not when the server named another cause.
func retryableRefusal(ie *imap.Error) bool {
	return ie.Code != imap.ResponseCodeTooBig && ie.Code != imap.ResponseCodeOverQuota && ie.Code != imap.ResponseCodeTryCreate
}

// errConnDropped classifies a broken APPEND as transient.
var errConnDropped = io.ErrUnexpectedEOF
