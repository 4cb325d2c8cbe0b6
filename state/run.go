package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// This file holds the orchestrator's tables: runs, accounts and phases
// (declared in the schema steps). Package migrate is their only user.

// GlobalAccount is the account key under which run-wide phases (SmartScan,
// provisioning, dedup, MTA) record their status.
const GlobalAccount = "*"

// AccountRow is one account of the migration.
type AccountRow struct {
	Source      string // the account's address on the source, its key
	Destination string // its address on the destination
	// Phase is the last phase that started; Status the account's status.
	Phase   string
	Status  string
	Error   string    // the last failure's text, "" when none
	Size    int64     // the source size in bytes as put; claims take the largest first
	Updated time.Time // the last change
	// Runner holds the account's live lease until LeaseExpires; both are
	// zero while no runner works on it.
	Runner       string
	LeaseExpires time.Time
	// Finished is set once a runner released the account as finished
	// (Coordinator.Release); it is then not claimed again.
	Finished bool
	// Claims counts the account's claims (more than one after a takeover).
	Claims int
	// Messages and Bytes are the progress recorded by SetProgress.
	Messages int64
	Bytes    int64
}

// PhaseRow is the status of one phase of one account (or of GlobalAccount).
type PhaseRow struct {
	Account string // the account's source address, or GlobalAccount
	Phase   string // the phase's name, e.g. "mail"
	Status  string // pending, running, done, failed, ...
	// Detail is the phase's result as the orchestrator serialised it.
	Detail  string
	Updated time.Time // the last change
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// msTime turns milliseconds since the epoch into a time.
func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// StartRun records a new run and returns its id.
func (s *sqlStore) StartRun(ctx context.Context, planHash string) (int64, error) {
	var id int64
	err := s.c().QueryRowContext(ctx, `INSERT INTO runs(plan_hash, started) VALUES(?, ?) RETURNING id`, planHash, now()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("state: start run: %w", err)
	}
	return id, nil
}

// FinishRun records the end of run id with its outcome.
func (s *sqlStore) FinishRun(ctx context.Context, id int64, outcome string) error {
	if _, err := s.c().ExecContext(ctx, `UPDATE runs SET finished=?, outcome=? WHERE id=?`, now(), outcome, id); err != nil {
		return fmt.Errorf("state: finish run %d: %w", id, err)
	}
	return nil
}

// RunInfo is one row of the runs table.
type RunInfo struct {
	ID       int64     // the run's number in this state
	PlanHash string    // a hash of the plan the run used
	Started  time.Time // when the run began
	Finished time.Time // zero while running or after a crash
	Outcome  string    // the run's end as FinishRun recorded it, "" while running
}

// Runs lists the runs, oldest first.
func (s *sqlStore) Runs(ctx context.Context) ([]RunInfo, error) {
	rows, err := s.c().QueryContext(ctx, `SELECT id, plan_hash, started, COALESCE(finished,''), outcome FROM runs ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("state: runs: %w", err)
	}
	defer rows.Close()
	var out []RunInfo
	for rows.Next() {
		var r RunInfo
		var st, fin string
		if err := rows.Scan(&r.ID, &r.PlanHash, &st, &fin, &r.Outcome); err != nil {
			return nil, fmt.Errorf("state: runs: %w", err)
		}
		r.Started, r.Finished = parseTime(st), parseTime(fin)
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutAccount inserts the account or updates its destination and size,
// keeping its status and phases.
func (s *sqlStore) PutAccount(ctx context.Context, source, destination string, size int64) error {
	_, err := s.c().ExecContext(ctx, `INSERT INTO accounts(source, destination, size, updated) VALUES(?,?,?,?)
		ON CONFLICT(source) DO UPDATE SET destination=excluded.destination,
		size=CASE WHEN excluded.size>0 THEN excluded.size ELSE accounts.size END`,
		source, destination, size, now())
	if err != nil {
		return fmt.Errorf("state: account %s: %w", source, err)
	}
	return nil
}

// SetAccountStatus records an account's status, its current phase and error.
func (w *writer) SetAccountStatus(ctx context.Context, source, phase, status, errText string) error {
	err := w.write(ctx, false, func(c conn) error {
		res, err := c.ExecContext(ctx, `UPDATE accounts SET phase=?, status=?, error=?, updated=? WHERE source=?`,
			phase, status, errText, now(), source)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errors.New("not recorded")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: account %s: %w", source, err)
	}
	return nil
}

// SetProgress records the messages and bytes of the account copied so far.
func (w *writer) SetProgress(ctx context.Context, source string, messages, bytes int64) error {
	err := w.write(ctx, false, func(c conn) error {
		_, err := c.ExecContext(ctx, `UPDATE accounts SET messages=?, bytes=? WHERE source=?`, messages, bytes, source)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: progress of %s: %w", source, err)
	}
	return nil
}

// Account returns one account, or ok=false.
func (s *sqlStore) Account(ctx context.Context, source string) (AccountRow, bool, error) {
	rows, err := s.c().QueryContext(ctx, s.accountQuery()+` WHERE source=?`, source)
	if err != nil {
		return AccountRow{}, false, fmt.Errorf("state: account %s: %w", source, err)
	}
	list, err := scanAccounts(rows)
	if err != nil || len(list) == 0 {
		return AccountRow{}, false, err
	}
	return list[0], true, nil
}

// Accounts lists all accounts, by source address.
func (s *sqlStore) Accounts(ctx context.Context) ([]AccountRow, error) {
	rows, err := s.c().QueryContext(ctx, s.accountQuery()+` ORDER BY source`)
	if err != nil {
		return nil, fmt.Errorf("state: accounts: %w", err)
	}
	return scanAccounts(rows)
}

// accountQuery selects what scanAccounts reads; a read-only store of the
// first schema has no lease columns and answers their zero values.
func (s *sqlStore) accountQuery() string {
	if s.version < 2 {
		return `SELECT source, destination, phase, status, error, size, updated, '', 0, '', 0, 0, 0, {now} FROM accounts`
	}
	return `SELECT source, destination, phase, status, error, size, updated,
		runner, lease_expires, claim, claims, messages, bytes, {now} FROM accounts`
}

func scanAccounts(rows *sql.Rows) ([]AccountRow, error) {
	defer rows.Close()
	var out []AccountRow
	for rows.Next() {
		var a AccountRow
		var upd, claim string
		var exp, nowMS int64
		if err := rows.Scan(&a.Source, &a.Destination, &a.Phase, &a.Status, &a.Error, &a.Size, &upd,
			&a.Runner, &exp, &claim, &a.Claims, &a.Messages, &a.Bytes, &nowMS); err != nil {
			return nil, fmt.Errorf("state: accounts: %w", err)
		}
		a.Updated = parseTime(upd)
		a.Finished = claim == claimClosed
		if exp > nowMS && a.Runner != "" {
			a.LeaseExpires = msTime(exp)
		} else {
			a.Runner = ""
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: accounts: %w", err)
	}
	return out, nil
}

// SetPhase records the status and detail of one phase of an account (or of
// GlobalAccount).
func (w *writer) SetPhase(ctx context.Context, account, phase, status, detail string) error {
	err := w.write(ctx, false, func(c conn) error {
		_, err := c.ExecContext(ctx, `INSERT INTO phases(account, phase, status, detail, updated) VALUES(?,?,?,?,?)
		ON CONFLICT(account, phase) DO UPDATE SET status=excluded.status, detail=excluded.detail, updated=excluded.updated`,
			account, phase, status, detail, now())
		return err
	})
	if err != nil {
		return fmt.Errorf("state: phase %s of %s: %w", phase, account, err)
	}
	return nil
}

// Phase returns one phase row, or ok=false.
func (s *sqlStore) Phase(ctx context.Context, account, phase string) (PhaseRow, bool, error) {
	p := PhaseRow{Account: account, Phase: phase}
	var upd string
	err := s.c().QueryRowContext(ctx, `SELECT status, detail, updated FROM phases WHERE account=? AND phase=?`, account, phase).
		Scan(&p.Status, &p.Detail, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return PhaseRow{}, false, nil
	}
	if err != nil {
		return PhaseRow{}, false, fmt.Errorf("state: phase %s of %s: %w", phase, account, err)
	}
	p.Updated = parseTime(upd)
	return p, true, nil
}

// Phases lists every phase row, by account then phase name.
func (s *sqlStore) Phases(ctx context.Context) ([]PhaseRow, error) {
	rows, err := s.c().QueryContext(ctx, `SELECT account, phase, status, detail, updated FROM phases ORDER BY account, phase`)
	if err != nil {
		return nil, fmt.Errorf("state: phases: %w", err)
	}
	defer rows.Close()
	var out []PhaseRow
	for rows.Next() {
		var p PhaseRow
		var upd string
		if err := rows.Scan(&p.Account, &p.Phase, &p.Status, &p.Detail, &upd); err != nil {
			return nil, fmt.Errorf("state: phases: %w", err)
		}
		p.Updated = parseTime(upd)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ResetPhases sets every phase whose status is one of from back to
// "pending", and returns how many it changed. migrate uses it for
// --retry-failed.
func (s *sqlStore) ResetPhases(ctx context.Context, from ...string) (int64, error) {
	var n int64
	for _, st := range from {
		res, err := s.c().ExecContext(ctx, `UPDATE phases SET status='pending', updated=? WHERE status=?`, now(), st)
		if err != nil {
			return n, fmt.Errorf("state: reset phases: %w", err)
		}
		c, _ := res.RowsAffected()
		n += c
	}
	return n, nil
}

const lastReportKey = "migrate.last_report"

// SaveReport stores the latest report (JSON) so that it can be rendered
// again without the servers.
func (s *sqlStore) SaveReport(ctx context.Context, report []byte) error {
	_, err := s.c().ExecContext(ctx, `INSERT INTO meta(key, value) VALUES(?, ?)
		ON CONFLICT(key) DO UPDATE SET value=excluded.value`, lastReportKey, string(report))
	if err != nil {
		return fmt.Errorf("state: save report: %w", err)
	}
	return nil
}

// LastReport returns the report stored by SaveReport, or ok=false.
func (s *sqlStore) LastReport(ctx context.Context) ([]byte, bool, error) {
	var v string
	err := s.c().QueryRowContext(ctx, `SELECT value FROM meta WHERE key=?`, lastReportKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: last report: %w", err)
	}
	return []byte(v), true, nil
}
