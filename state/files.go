package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zxmigrate/zxmigrate/carbonio/files"
)

// filesSchema maps each source Briefcase document to its Carbonio Files
// node and the number of its revisions uploaded (the files phase).
var filesSchema = []string{
	`CREATE TABLE IF NOT EXISTS files_nodes (
		account TEXT NOT NULL,
		src_id TEXT NOT NULL,
		node_id TEXT NOT NULL,
		versions {int} NOT NULL DEFAULT 0,
		updated TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (account, src_id)
	)`,
}

var _ files.Store = FilesStore{}

// FilesStore is the files phase's files.Store kept in the state.
type FilesStore struct{ w *writer }

// Files returns the files phase's store.
func (w *writer) Files() files.Store { return FilesStore{w: w} }

// Node implements files.Store.
func (f FilesStore) Node(ctx context.Context, account, srcID string) (files.Mapping, bool, error) {
	var m files.Mapping
	err := f.w.s.c().QueryRowContext(ctx, `SELECT node_id, versions FROM files_nodes WHERE account=? AND src_id=?`, account, srcID).Scan(&m.NodeID, &m.Versions)
	if errors.Is(err, sql.ErrNoRows) {
		return files.Mapping{}, false, nil
	}
	if err != nil {
		return files.Mapping{}, false, fmt.Errorf("state: read files node: %w", err)
	}
	return m, true, nil
}

// SetNode implements files.Store.
func (f FilesStore) SetNode(ctx context.Context, account, srcID string, m files.Mapping) error {
	err := f.w.write(ctx, false, func(c conn) error {
		_, err := c.ExecContext(ctx, `INSERT INTO files_nodes(account, src_id, node_id, versions, updated) VALUES(?,?,?,?,?)
		ON CONFLICT(account, src_id) DO UPDATE SET node_id=excluded.node_id, versions=excluded.versions, updated=excluded.updated`,
			account, srcID, m.NodeID, m.Versions, time.Now().UTC().Format(time.RFC3339))
		return err
	})
	if err != nil {
		return fmt.Errorf("state: write files node: %w", err)
	}
	return nil
}
