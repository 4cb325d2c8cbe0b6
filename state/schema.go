package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// schemaVersion is the schema this package writes. Each step below brings a
// store from the version before it to its own; a store is migrated on open,
// in one transaction, and records each step in schema_version. The current
// version is also kept in meta (key schema_version), where Check and older
// zxmigrate versions look for it.
const schemaVersion = 2

// claimClosed marks an account released as finished (accounts.claim).
const claimClosed = "closed"

var coreSchema = []string{
	`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS runs (
		id {serial},
		plan_hash TEXT NOT NULL DEFAULT '',
		started TEXT NOT NULL,
		finished TEXT,
		outcome TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE IF NOT EXISTS accounts (
		source TEXT PRIMARY KEY,
		destination TEXT NOT NULL,
		phase TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL DEFAULT 'pending',
		error TEXT NOT NULL DEFAULT '',
		size {int} NOT NULL DEFAULT 0,
		updated TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE IF NOT EXISTS phases (
		account TEXT NOT NULL,
		phase TEXT NOT NULL,
		status TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT '',
		updated TEXT NOT NULL,
		PRIMARY KEY (account, phase)
	)`,
}

// coordSchema (version 2) adds the runners' coordination: account leases
// (lease times are milliseconds since the epoch on the store's clock),
// run-once jobs, budgets and their slots.
var coordSchema = []string{
	`ALTER TABLE accounts ADD COLUMN runner TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE accounts ADD COLUMN prev_runner TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE accounts ADD COLUMN lease_token {int} NOT NULL DEFAULT 0`,
	`ALTER TABLE accounts ADD COLUMN lease_expires {int} NOT NULL DEFAULT 0`,
	`ALTER TABLE accounts ADD COLUMN claim TEXT NOT NULL DEFAULT ''`,
	`ALTER TABLE accounts ADD COLUMN claims {int} NOT NULL DEFAULT 0`,
	`ALTER TABLE accounts ADD COLUMN messages {int} NOT NULL DEFAULT 0`,
	`ALTER TABLE accounts ADD COLUMN bytes {int} NOT NULL DEFAULT 0`,
	// The claim order: largest open account first.
	`CREATE INDEX IF NOT EXISTS accounts_claim ON accounts (size DESC, source) WHERE claim = ''`,
	`CREATE INDEX IF NOT EXISTS accounts_runner ON accounts (runner) WHERE runner <> ''`,
	`CREATE TABLE IF NOT EXISTS jobs (
		name TEXT PRIMARY KEY,
		status TEXT NOT NULL DEFAULT '',
		runner TEXT NOT NULL DEFAULT '',
		token {int} NOT NULL DEFAULT 0,
		expires {int} NOT NULL DEFAULT 0,
		detail TEXT NOT NULL DEFAULT '',
		updated TEXT NOT NULL DEFAULT '',
		claims {int} NOT NULL DEFAULT 0
	)`,
	`CREATE TABLE IF NOT EXISTS limits (
		key TEXT PRIMARY KEY,
		max_slots {int} NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS slots (
		token {int} PRIMARY KEY,
		key TEXT NOT NULL,
		runner TEXT NOT NULL,
		expires {int} NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS slots_key ON slots (key, expires)`,
	`CREATE INDEX IF NOT EXISTS slots_runner ON slots (runner)`,
}

// pgFence (PostgreSQL, version 2) checks a lease and share-locks its row
// until the transaction ends, raising SQLSTATE ZXL01 when the lease is not
// live; a fenced single write runs it and the write in one pipeline.
var pgFence = `CREATE OR REPLACE FUNCTION zx_fence(kind text, k text, tok bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF kind = 'account' THEN
		PERFORM 1 FROM accounts WHERE source = k AND lease_token = tok
			AND lease_expires > (extract(epoch from clock_timestamp()) * 1000)::bigint FOR SHARE;
	ELSE
		PERFORM 1 FROM jobs WHERE name = k AND token = tok AND status = 'running'
			AND expires > (extract(epoch from clock_timestamp()) * 1000)::bigint FOR SHARE;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'lease lost' USING ERRCODE = 'ZXL01';
	END IF;
END $$`

// schemaSteps[i] brings a store of dialect d to version i+1.
func schemaSteps(d *dialect) [][]string {
	var v1 []string
	for _, list := range [][]string{coreSchema, mailSchema, davSchema, filesSchema} {
		v1 = append(v1, list...)
	}
	v2 := coordSchema
	if d == postgresDialect {
		v2 = append(append([]string(nil), coordSchema...), pgFence)
	}
	return [][]string{v1, v2}
}

// postgresMigrationLock is the key of the advisory lock that serialises
// schema migrations of runners that open one database at once
// (https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS).
const postgresMigrationLock = 0x7a786d6967726174 // "zxmigrat"

// upgrade migrates the schema to schemaVersion. name identifies the store
// in errors.
func (s *sqlStore) upgrade(ctx context.Context, name string) error {
	err := s.tx(ctx, func(c conn) error {
		if s.d == postgresDialect {
			if _, err := c.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(postgresMigrationLock)); err != nil {
				return err
			}
		}
		for _, stmt := range []string{
			coreSchema[0],
			`CREATE TABLE IF NOT EXISTS schema_version (version {int} PRIMARY KEY, applied TEXT NOT NULL)`,
			// A write first: on SQLite it takes the write lock before
			// the version is read, so two processes cannot both step.
			`DELETE FROM meta WHERE key='schema_upgrade'`,
		} {
			if _, err := c.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		v, err := readVersion(ctx, c)
		if err != nil {
			return err
		}
		if v > schemaVersion {
			return fmt.Errorf("%s was written by a newer zxmigrate (schema %d > %d)", name, v, schemaVersion)
		}
		steps := schemaSteps(s.d)
		// The first step is idempotent (CREATE ... IF NOT EXISTS) and
		// runs on every open, filling in a table an early file lacks.
		for _, stmt := range steps[0] {
			if _, err := c.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("schema step 1: %w", err)
			}
		}
		if v == 0 {
			if _, err := c.ExecContext(ctx, `INSERT INTO schema_version(version, applied) VALUES(1, ?)`, now()); err != nil {
				return err
			}
			v = 1
		}
		for ; v < schemaVersion; v++ {
			for _, stmt := range steps[v] {
				if _, err := c.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("schema step %d: %w", v+1, err)
				}
			}
			if _, err := c.ExecContext(ctx, `INSERT INTO schema_version(version, applied) VALUES(?, ?)`, v+1, now()); err != nil {
				return err
			}
		}
		_, err = c.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES('schema_version', ?)
			ON CONFLICT(key) DO UPDATE SET value=excluded.value`, fmt.Sprint(schemaVersion))
		return err
	})
	if err != nil {
		return fmt.Errorf("state: schema of %s: %w", name, err)
	}
	s.version = schemaVersion
	return nil
}

// readVersion returns the schema version in meta, 0 for a new store.
func readVersion(ctx context.Context, c conn) (int, error) {
	var v int
	err := c.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key='schema_version'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// checkVersion reads the version of a store opened without upgrade and
// refuses one written by a newer zxmigrate.
func (s *sqlStore) checkVersion(ctx context.Context, name string) error {
	v, err := readVersion(ctx, s.c())
	switch {
	case err != nil:
		return fmt.Errorf("state: schema version of %s: %w", name, err)
	case v == 0:
		return fmt.Errorf("state: %s has no schema yet", name)
	case v > schemaVersion:
		return fmt.Errorf("state: %s was written by a newer zxmigrate (schema %d > %d)", name, v, schemaVersion)
	}
	s.version = v
	return nil
}
