package state

import (
	"context"
	"fmt"
	"time"

	"github.com/zxmigrate/zxmigrate/dav"
)

// davSchema holds the tables behind the caldav and carddav checkpoints.
var davSchema = []string{
	`CREATE TABLE IF NOT EXISTS dav_objects (
		kind TEXT NOT NULL,
		account TEXT NOT NULL,
		collection TEXT NOT NULL,
		src_href TEXT NOT NULL,
		uid TEXT NOT NULL,
		src_etag TEXT NOT NULL DEFAULT '',
		hash TEXT NOT NULL DEFAULT '',
		dst_href TEXT NOT NULL DEFAULT '',
		dst_etag TEXT NOT NULL DEFAULT '',
		updated TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (kind, account, collection, src_href, uid)
	)`,
}

var (
	_ dav.BatchCheckpoint  = (*davCheckpoint)(nil)
	_ dav.ForgetCheckpoint = (*davCheckpoint)(nil)
)

// Calendars returns the calendar checkpoint of one account (a
// dav.BatchCheckpoint and dav.ForgetCheckpoint).
func (w *writer) Calendars(account string) dav.Checkpoint {
	return &davCheckpoint{w: w, kind: "calendar", account: account}
}

// Contacts returns the contacts checkpoint of one account (a
// dav.BatchCheckpoint and dav.ForgetCheckpoint).
func (w *writer) Contacts(account string) dav.Checkpoint {
	return &davCheckpoint{w: w, kind: "contacts", account: account}
}

// davCheckpoint implements dav.Checkpoint, dav.BatchCheckpoint and
// dav.ForgetCheckpoint.
type davCheckpoint struct {
	w       *writer
	kind    string
	account string
}

// Records implements the checkpoint interface.
func (c *davCheckpoint) Records(ctx context.Context, collection string) ([]dav.Record, error) {
	rows, err := c.w.s.c().QueryContext(ctx, `SELECT src_href, src_etag, uid, hash, dst_href, dst_etag FROM dav_objects
		WHERE kind=? AND account=? AND collection=?`, c.kind, c.account, collection)
	if err != nil {
		return nil, fmt.Errorf("state: read %s checkpoint: %w", c.kind, err)
	}
	defer rows.Close()
	var out []dav.Record
	for rows.Next() {
		var r dav.Record
		if err := rows.Scan(&r.SrcHref, &r.SrcETag, &r.UID, &r.Hash, &r.DstHref, &r.DstETag); err != nil {
			return nil, fmt.Errorf("state: read %s checkpoint: %w", c.kind, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: read %s checkpoint: %w", c.kind, err)
	}
	return out, nil
}

// Save implements the checkpoint interface.
func (c *davCheckpoint) Save(ctx context.Context, collection string, r dav.Record) error {
	return c.SaveBatch(ctx, collection, []dav.Record{r})
}

const davUpsert = `INSERT INTO dav_objects(kind, account, collection, src_href, uid, src_etag, hash, dst_href, dst_etag, updated)
	VALUES(?,?,?,?,?,?,?,?,?,?)
	ON CONFLICT(kind, account, collection, src_href, uid) DO UPDATE SET
	src_etag=excluded.src_etag, hash=excluded.hash, dst_href=excluded.dst_href, dst_etag=excluded.dst_etag, updated=excluded.updated`

// SaveBatch implements dav.BatchCheckpoint: the records are stored in one
// transaction (all or none).
func (c *davCheckpoint) SaveBatch(ctx context.Context, collection string, rs []dav.Record) error {
	if len(rs) == 0 {
		return nil
	}
	now := time.Now().UTC().Format(time.RFC3339)
	err := c.w.write(ctx, len(rs) > 1, func(x conn) error {
		if len(rs) == 1 {
			r := rs[0]
			_, err := x.ExecContext(ctx, davUpsert, c.kind, c.account, collection, r.SrcHref, r.UID, r.SrcETag, r.Hash, r.DstHref, r.DstETag, now)
			return err
		}
		st, err := x.PrepareContext(ctx, davUpsert)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rs {
			if _, err := st.ExecContext(ctx, c.kind, c.account, collection, r.SrcHref, r.UID, r.SrcETag, r.Hash, r.DstHref, r.DstETag, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: save %s checkpoint: %w", c.kind, err)
	}
	return nil
}

// Forget implements dav.ForgetCheckpoint: the records of collection with
// the SrcHref and UID of rs are dropped in one transaction.
func (c *davCheckpoint) Forget(ctx context.Context, collection string, rs []dav.Record) error {
	if len(rs) == 0 {
		return nil
	}
	err := c.w.write(ctx, true, func(x conn) error {
		st, err := x.PrepareContext(ctx, `DELETE FROM dav_objects WHERE kind=? AND account=? AND collection=? AND src_href=? AND uid=?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rs {
			if _, err := st.ExecContext(ctx, c.kind, c.account, collection, r.SrcHref, r.UID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: forget %s records: %w", c.kind, err)
	}
	return nil
}

// Collections implements dav.ForgetCheckpoint: the collection pairs of the
// account that hold records, sorted.
func (c *davCheckpoint) Collections(ctx context.Context) ([]string, error) {
	rows, err := c.w.s.c().QueryContext(ctx, `SELECT DISTINCT collection FROM dav_objects WHERE kind=? AND account=? ORDER BY collection`, c.kind, c.account)
	if err != nil {
		return nil, fmt.Errorf("state: read %s checkpoint: %w", c.kind, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("state: read %s checkpoint: %w", c.kind, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: read %s checkpoint: %w", c.kind, err)
	}
	return out, nil
}
