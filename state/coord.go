package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// This file implements Coordinator for both backends. Lease times are
// milliseconds since the epoch on the store's clock ({now}).

func ms(d time.Duration) int64 { return d.Milliseconds() }

// ClaimAccount implements Coordinator. One statement picks and leases the
// account; on PostgreSQL its subquery locks the row it picks with
// FOR UPDATE SKIP LOCKED, so concurrent claimers take distinct accounts
// without waiting for each other
// (https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE).
func (s *sqlStore) ClaimAccount(ctx context.Context, runner string, ttl time.Duration) (Lease, bool, error) {
	l := Lease{Kind: LeaseAccount, Runner: runner, Token: newToken()}
	var exp int64
	err := s.c().QueryRowContext(ctx, `UPDATE accounts SET prev_runner=runner, runner=?, lease_token=?,
			lease_expires={now}+?, claims=claims+1
		WHERE source = (SELECT source FROM accounts WHERE claim='' AND lease_expires < {now}
			ORDER BY size DESC, source LIMIT 1 {skiplocked})
		RETURNING source, destination, size, lease_expires, prev_runner`,
		runner, l.Token, ms(ttl)).Scan(&l.Key, &l.Destination, &l.Size, &exp, &l.PrevRunner)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("state: claim an account: %w", err)
	}
	l.Expires = msTime(exp)
	return l, true, nil
}

// Renew implements Coordinator.
func (s *sqlStore) Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	var q string
	switch l.Kind {
	case LeaseAccount:
		q = `UPDATE accounts SET lease_expires={now}+? WHERE source=? AND lease_token=? AND lease_expires > {now} RETURNING lease_expires`
	case LeaseGlobal:
		q = `UPDATE jobs SET expires={now}+? WHERE name=? AND token=? AND status='running' AND expires > {now} RETURNING expires`
	default:
		return l, fmt.Errorf("state: renew a lease of unknown kind %q", l.Kind)
	}
	var exp int64
	err := s.c().QueryRowContext(ctx, q, ms(ttl), l.Key, l.Token).Scan(&exp)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("%w: %s %s (token %d)", ErrLeaseLost, l.Kind, l.Key, l.Token)
	}
	if err != nil {
		return l, fmt.Errorf("state: renew the lease of %s: %w", l.Key, err)
	}
	l.Expires = msTime(exp)
	return l, nil
}

// Heartbeat implements Coordinator.
func (s *sqlStore) Heartbeat(ctx context.Context, runner string, ttl time.Duration) (int, error) {
	n := 0
	for _, q := range []string{
		`UPDATE accounts SET lease_expires={now}+? WHERE runner=? AND lease_expires > {now}`,
		`UPDATE jobs SET expires={now}+? WHERE runner=? AND status='running' AND expires > {now}`,
		`UPDATE slots SET expires={now}+? WHERE runner=? AND expires > {now}`,
	} {
		res, err := s.c().ExecContext(ctx, q, ms(ttl), runner)
		if err != nil {
			return n, fmt.Errorf("state: heartbeat of %s: %w", runner, err)
		}
		c, _ := res.RowsAffected()
		n += int(c)
	}
	return n, nil
}

// Release implements Coordinator.
func (s *sqlStore) Release(ctx context.Context, l Lease, finished bool) error {
	var res sql.Result
	var err error
	switch l.Kind {
	case LeaseAccount:
		claim := ""
		if finished {
			claim = claimClosed
		}
		res, err = s.c().ExecContext(ctx, `UPDATE accounts SET runner='', lease_token=0, lease_expires=0, claim=?
			WHERE source=? AND lease_token=? AND lease_expires > {now}`, claim, l.Key, l.Token)
	case LeaseGlobal:
		res, err = s.c().ExecContext(ctx, `UPDATE jobs SET status='', token=0, expires=0
			WHERE name=? AND token=? AND status='running' AND expires > {now}`, l.Key, l.Token)
	default:
		return fmt.Errorf("state: release a lease of unknown kind %q", l.Kind)
	}
	if err != nil {
		return fmt.Errorf("state: release %s: %w", l.Key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s %s (token %d)", ErrLeaseLost, l.Kind, l.Key, l.Token)
	}
	return nil
}

// ReopenAccounts implements Coordinator.
func (s *sqlStore) ReopenAccounts(ctx context.Context, statuses ...string) (int64, error) {
	q := `UPDATE accounts SET claim='' WHERE claim=?`
	args := []any{claimClosed}
	if len(statuses) > 0 {
		q += ` AND status IN (?` + strings.Repeat(",?", len(statuses)-1) + `)`
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	res, err := s.c().ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("state: reopen accounts: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// ClaimGlobal implements Coordinator.
func (s *sqlStore) ClaimGlobal(ctx context.Context, name, runner string, ttl time.Duration) (Lease, GlobalStatus, error) {
	l := Lease{Kind: LeaseGlobal, Key: name, Runner: runner}
	var answer GlobalStatus
	err := s.tx(ctx, func(c conn) error {
		if _, err := c.ExecContext(ctx, `INSERT INTO jobs(name) VALUES(?) ON CONFLICT(name) DO NOTHING`, name); err != nil {
			return err
		}
		var status, holder string
		var exp, nowMS int64
		if err := c.QueryRowContext(ctx, `SELECT status, runner, expires, {now} FROM jobs WHERE name=? {forupdate}`, name).
			Scan(&status, &holder, &exp, &nowMS); err != nil {
			return err
		}
		switch {
		case status == string(GlobalDone) || status == string(GlobalFailed):
			answer = GlobalStatus(status)
			l.Runner = holder
			return nil
		case status == string(GlobalRunning) && exp > nowMS:
			answer = GlobalRunning
			l.Runner, l.Expires = holder, msTime(exp)
			return nil
		case status == string(GlobalRunning):
			l.PrevRunner = holder // its holder died
		}
		l.Token = newToken()
		if err := c.QueryRowContext(ctx, `UPDATE jobs SET status='running', runner=?, token=?, expires={now}+?,
			updated=?, claims=claims+1 WHERE name=? RETURNING expires`, runner, l.Token, ms(ttl), now(), name).Scan(&exp); err != nil {
			return err
		}
		l.Expires = msTime(exp)
		answer = GlobalClaimed
		return nil
	})
	if err != nil {
		return Lease{}, "", fmt.Errorf("state: claim global job %s: %w", name, err)
	}
	if answer != GlobalClaimed {
		return Lease{Kind: LeaseGlobal, Key: name, Runner: l.Runner, Expires: l.Expires}, answer, nil
	}
	return l, answer, nil
}

// FinishGlobal implements Coordinator.
func (s *sqlStore) FinishGlobal(ctx context.Context, l Lease, ok bool, detail string) error {
	status := GlobalDone
	if !ok {
		status = GlobalFailed
	}
	res, err := s.c().ExecContext(ctx, `UPDATE jobs SET status=?, detail=?, updated=?, token=0, expires=0
		WHERE name=? AND token=? AND status='running' AND expires > {now}`, string(status), detail, now(), l.Key, l.Token)
	if err != nil {
		return fmt.Errorf("state: finish global job %s: %w", l.Key, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s %s (token %d)", ErrLeaseLost, l.Kind, l.Key, l.Token)
	}
	return nil
}

// Globals implements Coordinator.
func (s *sqlStore) Globals(ctx context.Context) ([]GlobalJob, error) {
	if s.version < 2 {
		return nil, nil
	}
	rows, err := s.c().QueryContext(ctx, `SELECT name, status, runner, expires, detail, updated, claims, {now} FROM jobs ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("state: global jobs: %w", err)
	}
	defer rows.Close()
	var out []GlobalJob
	for rows.Next() {
		var g GlobalJob
		var status, upd string
		var exp, nowMS int64
		if err := rows.Scan(&g.Name, &status, &g.Runner, &exp, &g.Detail, &upd, &g.Claims, &nowMS); err != nil {
			return nil, fmt.Errorf("state: global jobs: %w", err)
		}
		g.Status, g.Updated = GlobalStatus(status), parseTime(upd)
		if g.Status == GlobalRunning {
			if exp > nowMS {
				g.Expires = msTime(exp)
			} else {
				g.Status = "" // its holder died: open again
			}
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// ReopenGlobal implements Coordinator.
func (s *sqlStore) ReopenGlobal(ctx context.Context, name string) error {
	if _, err := s.c().ExecContext(ctx, `UPDATE jobs SET status='', token=0, expires=0 WHERE name=? AND status<>'running'`, name); err != nil {
		return fmt.Errorf("state: reopen global job %s: %w", name, err)
	}
	return nil
}

// AcquireSlot implements Coordinator. The budget's row is locked for the
// count and the insert, so that concurrent acquirers of one key take turns
// and the count never passes the budget.
func (s *sqlStore) AcquireSlot(ctx context.Context, key, runner string, ttl time.Duration) (Slot, bool, error) {
	sl := Slot{Key: key, Runner: runner, Token: newToken()}
	granted := false
	err := s.tx(ctx, func(c conn) error {
		var max int
		err := c.QueryRowContext(ctx, `SELECT max_slots FROM limits WHERE key=? {forupdate}`, key).Scan(&max)
		limited := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if limited {
			if _, err := c.ExecContext(ctx, `DELETE FROM slots WHERE key=? AND expires <= {now}`, key); err != nil {
				return err
			}
			var n int
			if err := c.QueryRowContext(ctx, `SELECT count(*) FROM slots WHERE key=?`, key).Scan(&n); err != nil {
				return err
			}
			if n >= max {
				return nil
			}
		}
		var exp int64
		if err := c.QueryRowContext(ctx, `INSERT INTO slots(token, key, runner, expires) VALUES(?, ?, ?, {now}+?) RETURNING expires`,
			sl.Token, key, runner, ms(ttl)).Scan(&exp); err != nil {
			return err
		}
		sl.Expires, granted = msTime(exp), true
		return nil
	})
	if err != nil {
		return Slot{}, false, fmt.Errorf("state: acquire a slot of %s: %w", key, err)
	}
	if !granted {
		return Slot{}, false, nil
	}
	return sl, true, nil
}

// ReleaseSlot implements Coordinator.
func (s *sqlStore) ReleaseSlot(ctx context.Context, sl Slot) error {
	if _, err := s.c().ExecContext(ctx, `DELETE FROM slots WHERE token=?`, sl.Token); err != nil {
		return fmt.Errorf("state: release a slot of %s: %w", sl.Key, err)
	}
	return nil
}

// SetLimit implements Coordinator.
func (s *sqlStore) SetLimit(ctx context.Context, key string, max int) error {
	var err error
	if max <= 0 {
		_, err = s.c().ExecContext(ctx, `DELETE FROM limits WHERE key=?`, key)
	} else {
		_, err = s.c().ExecContext(ctx, `INSERT INTO limits(key, max_slots) VALUES(?, ?)
			ON CONFLICT(key) DO UPDATE SET max_slots=excluded.max_slots`, key, max)
	}
	if err != nil {
		return fmt.Errorf("state: set the budget of %s: %w", key, err)
	}
	return nil
}

// Limits implements Coordinator.
func (s *sqlStore) Limits(ctx context.Context) ([]Limit, error) {
	if s.version < 2 {
		return nil, nil
	}
	byKey := map[string]*Limit{}
	get := func(k string) *Limit {
		l := byKey[k]
		if l == nil {
			l = &Limit{Key: k, ByRunner: map[string]int{}}
			byKey[k] = l
		}
		return l
	}
	rows, err := s.c().QueryContext(ctx, `SELECT key, max_slots FROM limits`)
	if err != nil {
		return nil, fmt.Errorf("state: budgets: %w", err)
	}
	for rows.Next() {
		var k string
		var m int
		if err := rows.Scan(&k, &m); err != nil {
			rows.Close()
			return nil, fmt.Errorf("state: budgets: %w", err)
		}
		get(k).Max = m
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: budgets: %w", err)
	}
	rows, err = s.c().QueryContext(ctx, `SELECT key, runner, count(*) FROM slots WHERE expires > {now} GROUP BY key, runner`)
	if err != nil {
		return nil, fmt.Errorf("state: slots: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, r string
		var n int
		if err := rows.Scan(&k, &r, &n); err != nil {
			return nil, fmt.Errorf("state: slots: %w", err)
		}
		l := get(k)
		l.InUse += n
		l.ByRunner[r] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: slots: %w", err)
	}
	out := make([]Limit, 0, len(byKey))
	for _, l := range byKey {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Now implements Coordinator.
func (s *sqlStore) Now(ctx context.Context) (time.Time, error) {
	var n int64
	if err := s.c().QueryRowContext(ctx, `SELECT {now}`).Scan(&n); err != nil {
		return time.Time{}, fmt.Errorf("state: clock: %w", err)
	}
	return msTime(n), nil
}
