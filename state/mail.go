package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"

	"github.com/zxmigrate/zxmigrate/imapcopy"
)

// mailSchema holds the tables behind imapcopy's checkpoint.
// mail_folders keeps per source folder the UIDVALIDITYs the UID map refers
// to and the status snapshots of the last verified pass; mail_messages keeps
// source UID → destination UID with state 'inflight' (written before the
// APPEND) or 'done'.
var mailSchema = []string{
	`CREATE TABLE IF NOT EXISTS mail_folders (
		account TEXT NOT NULL,
		source TEXT NOT NULL,
		destination TEXT NOT NULL,
		src_uidvalidity {int} NOT NULL DEFAULT 0,
		dst_uidvalidity {int} NOT NULL DEFAULT 0,
		src_uidnext {int} NOT NULL DEFAULT 0,
		src_messages {int} NOT NULL DEFAULT 0,
		src_modseq {int} NOT NULL DEFAULT 0,
		src_status_uidvalidity {int} NOT NULL DEFAULT 0,
		dst_uidnext {int} NOT NULL DEFAULT 0,
		dst_messages {int} NOT NULL DEFAULT 0,
		dst_modseq {int} NOT NULL DEFAULT 0,
		dst_status_uidvalidity {int} NOT NULL DEFAULT 0,
		keyword_issues {int} NOT NULL DEFAULT 0,
		PRIMARY KEY (account, source)
	)`,
	`CREATE TABLE IF NOT EXISTS mail_messages (
		account TEXT NOT NULL,
		source TEXT NOT NULL,
		src_uid {int} NOT NULL,
		dst_uid {int} NOT NULL DEFAULT 0,
		state TEXT NOT NULL CHECK (state IN ('inflight', 'done')),
		PRIMARY KEY (account, source, src_uid)
	)` + "{norowid}",
}

// Mail returns the imapcopy checkpoint of one account pair, e.g. keyed by
// "SRC -> DST". Every method commits before it returns.
func (w *writer) Mail(account string) imapcopy.Checkpoint {
	return &mailCheckpoint{w: w, account: account}
}

type mailCheckpoint struct {
	w       *writer
	account string
}

var _ imapcopy.Checkpoint = (*mailCheckpoint)(nil)
var _ imapcopy.Forgetter = (*mailCheckpoint)(nil)

func (m *mailCheckpoint) Folder(ctx context.Context, source string) (imapcopy.FolderState, bool, error) {
	var st imapcopy.FolderState
	st.Source = source
	err := m.w.s.c().QueryRowContext(ctx, `SELECT destination, src_uidvalidity, dst_uidvalidity,
		src_status_uidvalidity, src_uidnext, src_messages, src_modseq,
		dst_status_uidvalidity, dst_uidnext, dst_messages, dst_modseq, keyword_issues
		FROM mail_folders WHERE account=? AND source=?`, m.account, source).Scan(
		&st.Destination, &st.SourceUIDValidity, &st.DestUIDValidity,
		&st.SourceStatus.UIDValidity, &st.SourceStatus.UIDNext, &st.SourceStatus.Messages, &st.SourceStatus.HighestModSeq,
		&st.DestStatus.UIDValidity, &st.DestStatus.UIDNext, &st.DestStatus.Messages, &st.DestStatus.HighestModSeq, &st.KeywordIssues)
	if errors.Is(err, sql.ErrNoRows) {
		return imapcopy.FolderState{}, false, nil
	}
	if err != nil {
		return imapcopy.FolderState{}, false, fmt.Errorf("state: read mail folder %q: %w", source, err)
	}
	return st, true, nil
}

func (m *mailCheckpoint) SaveFolder(ctx context.Context, st imapcopy.FolderState) error {
	err := m.w.write(ctx, false, func(c conn) error {
		_, err := c.ExecContext(ctx, `INSERT INTO mail_folders (account, source, destination, src_uidvalidity, dst_uidvalidity,
		src_status_uidvalidity, src_uidnext, src_messages, src_modseq,
		dst_status_uidvalidity, dst_uidnext, dst_messages, dst_modseq, keyword_issues)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (account, source) DO UPDATE SET destination=excluded.destination,
		src_uidvalidity=excluded.src_uidvalidity, dst_uidvalidity=excluded.dst_uidvalidity,
		src_status_uidvalidity=excluded.src_status_uidvalidity, src_uidnext=excluded.src_uidnext,
		src_messages=excluded.src_messages, src_modseq=excluded.src_modseq,
		dst_status_uidvalidity=excluded.dst_status_uidvalidity, dst_uidnext=excluded.dst_uidnext,
		dst_messages=excluded.dst_messages, dst_modseq=excluded.dst_modseq, keyword_issues=excluded.keyword_issues`,
			m.account, st.Source, st.Destination, st.SourceUIDValidity, st.DestUIDValidity,
			st.SourceStatus.UIDValidity, st.SourceStatus.UIDNext, st.SourceStatus.Messages, int64(st.SourceStatus.HighestModSeq),
			st.DestStatus.UIDValidity, st.DestStatus.UIDNext, st.DestStatus.Messages, int64(st.DestStatus.HighestModSeq), st.KeywordIssues)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: save mail folder %q: %w", st.Source, err)
	}
	return nil
}

func (m *mailCheckpoint) ResetFolder(ctx context.Context, source string) error {
	err := m.w.write(ctx, false, func(c conn) error {
		_, err := c.ExecContext(ctx, `DELETE FROM mail_messages WHERE account=? AND source=?`, m.account, source)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: reset mail folder %q: %w", source, err)
	}
	return nil
}

func (m *mailCheckpoint) Mappings(ctx context.Context, source string) ([]imapcopy.Mapping, []imap.UID, error) {
	rows, err := m.w.s.c().QueryContext(ctx, `SELECT src_uid, dst_uid, state FROM mail_messages WHERE account=? AND source=? ORDER BY src_uid`, m.account, source)
	if err != nil {
		return nil, nil, fmt.Errorf("state: read mail map of %q: %w", source, err)
	}
	defer rows.Close()
	var done []imapcopy.Mapping
	var inFlight []imap.UID
	for rows.Next() {
		var src, dst uint32
		var st string
		if err := rows.Scan(&src, &dst, &st); err != nil {
			return nil, nil, fmt.Errorf("state: read mail map of %q: %w", source, err)
		}
		if st == "done" {
			done = append(done, imapcopy.Mapping{Src: imap.UID(src), Dst: imap.UID(dst)})
		} else {
			inFlight = append(inFlight, imap.UID(src))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("state: read mail map of %q: %w", source, err)
	}
	return done, inFlight, nil
}

// batch runs query for each item inside one transaction with one prepared
// statement.
func (m *mailCheckpoint) batch(ctx context.Context, what, query string, n int, args func(i int) []any) error {
	if n == 0 {
		return nil
	}
	err := m.w.write(ctx, true, func(c conn) error {
		stmt, err := c.PrepareContext(ctx, query)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range n {
			if _, err := stmt.ExecContext(ctx, args(i)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: %s: %w", what, err)
	}
	return nil
}

func (m *mailCheckpoint) MarkInFlight(ctx context.Context, source string, uids []imap.UID) error {
	return m.batch(ctx, "mark in flight", `INSERT INTO mail_messages (account, source, src_uid, dst_uid, state) VALUES (?,?,?,0,'inflight')
		ON CONFLICT (account, source, src_uid) DO UPDATE SET state='inflight', dst_uid=0`, len(uids),
		func(i int) []any { return []any{m.account, source, uint32(uids[i])} })
}

func (m *mailCheckpoint) Done(ctx context.Context, source string, ms []imapcopy.Mapping) error {
	return m.batch(ctx, "record copies", `INSERT INTO mail_messages (account, source, src_uid, dst_uid, state) VALUES (?,?,?,?,'done')
		ON CONFLICT (account, source, src_uid) DO UPDATE SET state='done', dst_uid=excluded.dst_uid`, len(ms),
		func(i int) []any { return []any{m.account, source, uint32(ms[i].Src), uint32(ms[i].Dst)} })
}

func (m *mailCheckpoint) ClearInFlight(ctx context.Context, source string, uids []imap.UID) error {
	return m.batch(ctx, "clear in-flight marks", `DELETE FROM mail_messages WHERE account=? AND source=? AND src_uid=? AND state='inflight'`, len(uids),
		func(i int) []any { return []any{m.account, source, uint32(uids[i])} })
}

// Forget implements imapcopy.Forgetter.
func (m *mailCheckpoint) Forget(ctx context.Context, source string, uids []imap.UID) error {
	return m.batch(ctx, "forget deleted messages", `DELETE FROM mail_messages WHERE account=? AND source=? AND src_uid=?`, len(uids),
		func(i int) []any { return []any{m.account, source, uint32(uids[i])} })
}
