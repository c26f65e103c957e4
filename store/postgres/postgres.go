// Package postgres is the store.Store for several fleet server replicas sharing one
// PostgreSQL database. It keeps the SQLite backend's semantics (the conformance suite in
// store/storetest holds both to them) and adds what sharing needs: migrations applied
// once under an advisory lock however many replicas start together, and device writes
// that are compare-and-set on the row version inside the database, so two replicas (or a
// stale cache) can never both advance the same anchor.
//
// Commit is a group commit like SQLite's: a whole batch in one transaction, each change
// under its own savepoint. The batch is sent as one pipeline (one network round trip in
// the common case); a change that loses its compare-and-set raises an error inside the
// pipeline, Commit rolls back to that change's savepoint, records store.ErrConflict and
// pipelines the rest.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the advisory lock key under which migrations run ("fieldsea" in ASCII),
// so replicas starting together apply each migration exactly once.
const migrateLock int64 = 0x6669656c64736561

// Store is the PostgreSQL store.Store.
type Store struct {
	pool *connPool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a key=value string)
// and applies pending migrations. Besides libpq's parameters, the DSN may carry
// pool_max_conns (default 4) and any server setting, such as search_path.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig is Open with a parsed configuration, for callers that set TLS or hooks in code.
func OpenConfig(ctx context.Context, cfg *pgx.ConnConfig) (*Store, error) {
	pool, err := newConnPool(cfg)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, pool); err != nil {
		pool.close()
		return nil, fmt.Errorf("postgres %s@%s:%d/%s: %w", cfg.User, cfg.Host, cfg.Port, cfg.Database, err)
	}
	return &Store{pool: pool}, nil
}

// migrate applies every embedded migration not yet in schema_migrations, all in one
// transaction holding an advisory lock: a replica that starts while another migrates
// waits, then finds the work done.
func migrate(ctx context.Context, pool *connPool) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	return pool.with(ctx, true, func(c *pgx.Conn) error { // re-run safely: applied migrations are skipped
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied timestamptz NOT NULL)`); err != nil {
			return err
		}
		for _, name := range names {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&done); err != nil {
				return err
			}
			if done {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			// No arguments: pgx sends it as one simple query, several statements allowed.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, sqlMigrated, name, time.Now().UTC()); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
		}
		return tx.Commit(ctx)
	})
}

// Close closes the connections: idle ones now, busy ones when their call returns.
func (s *Store) Close() error {
	s.pool.close()
	return nil
}

// ts is what a time is written as: NULL for the zero time (as SQLite's 0), else the time;
// PostgreSQL keeps microseconds and pgx truncates the rest.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// tsDst scans a timestamptz back: NULL is the zero time, anything else is in UTC, as the
// SQLite backend returns it.
type tsDst struct{ p *time.Time }

func (d tsDst) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		*d.p = time.Time{}
		return nil
	}
	*d.p = v.Time.UTC()
	return nil
}

func tsOut(p *time.Time) tsDst { return tsDst{p} }

func deviceArgs(d *store.Device, version uint64) []any {
	args := make([]any, 1, 1+store.NumDeviceFields+2) // room for sqlCAS's last two
	args[0] = d.ID
	for i := range store.NumDeviceFields {
		args = append(args, deviceField(d, i, version))
	}
	return args
}

// deviceField is column i of d's row as PostgreSQL stores it (times as timestamptz).
func deviceField(d *store.Device, i int, version uint64) any { return d.Field(i, version, ts) }

// maxUpdates bounds the cached device UPDATEs of some columns (store.Change.Was): one per
// set of columns met, and a server meets a handful. A set met when the cache is full
// writes every column (sqlCAS). pgx prepares each statement text once per connection.
const maxUpdates = 64

var updates = struct {
	sync.Mutex
	m map[store.DeviceFields]string
}{m: map[store.DeviceFields]string{}}

// updateSQL returns the compare-and-set UPDATE of the columns in fields (as sqlCAS: $1 is
// the id, then a value per column in column order, then the version read, the epoch and
// the conflict message), or "" when maxUpdates other sets are cached.
func updateSQL(fields store.DeviceFields) string {
	updates.Lock()
	defer updates.Unlock()
	if q, ok := updates.m[fields]; ok {
		return q
	}
	if len(updates.m) >= maxUpdates {
		return ""
	}
	var b strings.Builder
	b.WriteString(`WITH u AS (UPDATE devices SET `)
	n := 1
	for m := fields; m != 0; m &= m - 1 {
		if n > 1 {
			b.WriteString(", ")
		}
		n++
		fmt.Fprintf(&b, "%s=$%d", sqlstore.DeviceColumns[bits.TrailingZeros32(uint32(m))], n)
	}
	fmt.Fprintf(&b, ` WHERE id = $1 AND version = $%d AND epoch = $%d RETURNING 1)
SELECT fieldseal_conflict($%d) WHERE NOT EXISTS (SELECT FROM u)`, n+1, n+2, n+3)
	q := b.String()
	updates.m[fields] = q
	return q
}

func scanDevice(r pgx.Row) (*store.Device, error) {
	var d store.Device
	var epoch, version, pinned, running, an, rseq, ldt, lboot, ri, rej, wu int64
	var eui *string // NULL: no DevEUI
	err := r.Scan(&d.ID, &d.Product, &epoch, &version, &d.UplinkKey, &d.DownlinkKey, &d.State, tsOut(&d.StateSince), &d.StateReason,
		&pinned, &running, &an, &d.AnchorHead, &d.AnchorKey, &d.Receipt, &rseq, &d.LastReportHash,
		&d.LastAck, &d.Nonce, &d.PrevNonce, tsOut(&d.LastSeen), &ldt, &lboot, &ri, &rej, &wu, tsOut(&d.Created), &eui)
	if err != nil {
		return nil, err
	}
	if eui != nil {
		d.DevEUI = *eui
	}
	d.Epoch, d.Version, d.PinnedVersion, d.RunningVersion = uint32(epoch), uint64(version), uint64(pinned), uint64(running)
	d.AnchorN, d.LastRSeq, d.LastDeviceTime, d.LastBoot = uint64(an), uint64(rseq), uint64(ldt), uint32(lboot)
	d.ReportInterval, d.Rejections, d.WindowUntil = uint32(ri), uint32(rej), uint64(wu)
	return &d, nil
}

const (
	sqlLockDevices = `SELECT 1 FROM devices WHERE id = ANY($1) ORDER BY id FOR UPDATE`
	sqlReplace     = `DELETE FROM devices WHERE id = $1 AND epoch < $2`
	// The guard includes the epoch: re-provisioning restarts the version at 1, and a
	// writer still holding the old epoch's row at version 1 must not overwrite the new one.
	sqlCAS = `WITH u AS (UPDATE devices SET product=$2, epoch=$3, version=$4, uplink_key=$5, downlink_key=$6, state=$7, state_since=$8, state_reason=$9,
 pinned_version=$10, running_version=$11, anchor_n=$12, anchor_head=$13, anchor_key=$14, receipt=$15, last_rseq=$16, last_report_hash=$17,
 last_ack=$18, nonce=$19, prev_nonce=$20, last_seen=$21, last_device_time=$22, last_boot=$23, report_interval=$24, rejections=$25, window_until=$26, created=$27, dev_eui=$28
 WHERE id = $1 AND version = $29 AND epoch = $3 RETURNING 1)
SELECT fieldseal_conflict($30) WHERE NOT EXISTS (SELECT FROM u)`
	sqlUseToken   = `WITH u AS (UPDATE tokens SET used = true, used_at = $1 WHERE id = $2 AND NOT used RETURNING 1) SELECT fieldseal_conflict($3) WHERE NOT EXISTS (SELECT FROM u)`
	sqlCloseVisit = `WITH u AS (UPDATE visits SET closed = $1, seal_number = $2, result = $3 WHERE id = $4 AND closed IS NULL RETURNING 1) SELECT fieldseal_conflict($5) WHERE NOT EXISTS (SELECT FROM u)`
)

// The statements shared with store/sqlite (store/sqlstore), numbered for PostgreSQL.
var (
	sqlInsert      = sqlstore.Rebind(sqlstore.InsertDevice)
	sqlEvent       = sqlstore.Rebind(sqlstore.InsertEvent)
	sqlAudit       = sqlstore.Rebind(sqlstore.InsertAudit)
	sqlAlert       = sqlstore.Rebind(sqlstore.InsertAlert)
	sqlToken       = sqlstore.Rebind(sqlstore.InsertToken)
	sqlVisit       = sqlstore.Rebind(sqlstore.InsertVisit)
	sqlGetDevice   = sqlstore.Rebind(sqlstore.GetDevice)
	sqlDeviceByEUI = sqlstore.Rebind(sqlstore.DeviceByEUI)
	sqlManifestPut = sqlstore.Rebind(sqlstore.InsertManifest)
	sqlManifestGet = sqlstore.Rebind(sqlstore.GetManifest)
	sqlManifestCur = sqlstore.Rebind(sqlstore.CurrentManifest)
	sqlListEvents  = sqlstore.Rebind(sqlstore.ListEvents)
	sqlEventHead   = sqlstore.Rebind(sqlstore.EventHead)
	sqlGetToken    = sqlstore.Rebind(sqlstore.GetToken)
	sqlGetVisit    = sqlstore.Rebind(sqlstore.GetVisit)
	sqlAPITokenPut = sqlstore.Rebind(sqlstore.InsertAPIToken)
	sqlAPITokenGet = sqlstore.Rebind(sqlstore.GetAPIToken)
	sqlAPITokenDel = sqlstore.Rebind(sqlstore.DeleteAPIToken)
	sqlMigrated    = sqlstore.Rebind(sqlstore.InsertMigration)
	sqlDistrictPut = sqlstore.Rebind(sqlstore.PutDistrict)
	sqlDistrictGet = sqlstore.Rebind(sqlstore.GetDistrict)
	sqlDistrictN   = sqlstore.Rebind(sqlstore.CountDistrict)
	sqlMemberPut   = sqlstore.Rebind(sqlstore.PutMember)
	sqlMemberDel   = sqlstore.Rebind(sqlstore.DeleteMember)
	sqlMembersOf   = sqlstore.Rebind(sqlstore.ListMembersOf)
)

// stmtErr turns a statement's error into the change's error, by its SQLSTATE code only:
// a lost compare-and-set, a duplicate key or a lost race is store.ErrConflict; anything
// else (a full disk, 53100; bad data, a bug) is an error of its own, never a conflict.
type stmtErr struct {
	change int // index of the change; -1: not part of a change
	what   string
}

func (m stmtErr) wrap(pe *pgconn.PgError) error {
	switch {
	case pe.Code == "FS409":
		return fmt.Errorf("%w: %s", store.ErrConflict, pe.Message)
	case pe.Code == "23505", // unique_violation: duplicate key
		pe.Code == "40P01", // deadlock_detected: a race with another replica, lost
		pe.Code == "40001": // serialization_failure
		return fmt.Errorf("%w: %s: %v", store.ErrConflict, m.what, pe)
	}
	return fmt.Errorf("%s: %w", m.what, pe)
}

// ofChange tells an error of one change (a lost compare-and-set, a duplicate key, bad
// data, a lost race) from one of the database or the session (a statement timeout, a
// shutdown, a full disk), which fails the whole batch at once: trying the other changes
// would only meet it again, each after its own timeout.
func ofChange(pe *pgconn.PgError) bool {
	switch {
	case pe.Code == "FS409":
		return true
	case strings.HasPrefix(pe.Code, "23"), // integrity constraint violation
		strings.HasPrefix(pe.Code, "22"), // data exception
		strings.HasPrefix(pe.Code, "40"): // transaction rollback: deadlock, serialization
		return true
	}
	return false
}

// queueChange adds change i's statements to b, between SAVEPOINT and RELEASE if savepoint.
func queueChange(b *pgx.Batch, marks []stmtErr, i int, c *store.Change, now time.Time, savepoint bool) []stmtErr {
	q := func(m stmtErr, sql string, args ...any) {
		b.Queue(sql, args...)
		m.change = i
		marks = append(marks, m)
	}
	if savepoint {
		q(stmtErr{what: "savepoint"}, `SAVEPOINT c`)
	}
	if d := c.Device; d != nil {
		if c.Create {
			// Re-provisioning replaces the row only with a higher epoch; otherwise the
			// insert finds the row and is a duplicate key.
			q(stmtErr{what: "replace device " + d.ID}, sqlReplace, d.ID, int64(d.Epoch))
			q(stmtErr{what: fmt.Sprintf("device %s exists with epoch %d or higher", d.ID, d.Epoch)}, sqlInsert, deviceArgs(d, 1)...)
		} else {
			msg := fmt.Sprintf("device %s changed since version %d (epoch %d)", d.ID, d.Version, d.Epoch)
			var sql string
			fields := c.WriteFields()
			if fields != store.AllDeviceFields {
				sql = updateSQL(fields)
			}
			if sql != "" {
				// Only the columns that changed since c.Was, which the guard proves is the
				// stored row: fewer bytes to encode, send and decode per update.
				args := make([]any, 1, bits.OnesCount32(uint32(fields))+4)
				args[0] = d.ID
				for m := fields; m != 0; m &= m - 1 {
					args = append(args, deviceField(d, bits.TrailingZeros32(uint32(m)), d.Version+1))
				}
				args = append(args, int64(d.Version), int64(d.Epoch), msg)
				q(stmtErr{what: "update device " + d.ID}, sql, args...)
			} else {
				args := append(deviceArgs(d, d.Version+1), int64(d.Version), msg)
				q(stmtErr{what: "update device " + d.ID}, sqlCAS, args...)
			}
		}
	}
	for _, e := range c.Events {
		q(stmtErr{what: fmt.Sprintf("event %s/%d/%d", e.Dev, e.Epoch, e.N)}, sqlEvent,
			e.Dev, int64(e.Epoch), int64(e.N), int64(e.T), int32(e.Type), e.Tamper, nonNil(e.Payload), e.Decoded, nonNil(e.Tag), nonNil(e.Head), ts(e.Received))
	}
	for _, a := range c.Audits {
		q(stmtErr{what: "audit"}, sqlAudit, ts(a.At), a.Actor, a.Kind, a.Dev, a.Reason, a.Detail)
	}
	for _, a := range c.Alerts {
		q(stmtErr{what: "alert"}, sqlAlert, ts(a.At), a.Dev, a.Kind, a.Reason, a.Detail)
	}
	for _, t := range c.Tokens {
		q(stmtErr{what: "token"}, sqlToken,
			t.ID, t.Dev, int64(t.Epoch), t.Action, t.Sealed, ts(t.Issued), ts(t.Expires), int64(t.Window), t.Used, ts(t.UsedAt))
	}
	for _, id := range c.UsedTokens {
		q(stmtErr{what: "use token"}, sqlUseToken, now, id, fmt.Sprintf("token %x already used or unknown", id))
	}
	for _, v := range c.Visits {
		q(stmtErr{what: "visit"}, sqlVisit,
			v.ID, v.Dev, v.WorkOrder, v.Technician, v.TokenID, ts(v.Opened), ts(v.Closed), v.SealNumber, v.Result)
	}
	for _, v := range c.CloseVisits {
		q(stmtErr{what: "close visit"}, sqlCloseVisit, ts(v.Closed), v.SealNumber, v.Result, v.ID, fmt.Sprintf("visit %s already closed or unknown", v.ID))
	}
	if savepoint {
		q(stmtErr{what: "release"}, `RELEASE c`)
	}
	return marks
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Commit applies every change in one transaction. A change whose compare-and-set fails is
// skipped whole and reported as ErrConflict; the others are applied.
//
// The first attempt pipelines the whole batch with no savepoints: the common batch has no
// conflict, and a savepoint per change is both a statement more per change and, beyond 64
// in one transaction, a cost to every other session's snapshots (subtransaction
// overflow). If a change fails, that attempt is rolled back and the batch is applied
// again with a savepoint around each change, which isolates the failures exactly as
// SQLite does.
//
// Device rows are locked first, in id order, so two replicas committing overlapping
// batches queue behind each other instead of deadlocking; the loser of a race then finds
// the version moved and gets ErrConflict.
func (s *Store) Commit(ctx context.Context, changes []*store.Change) []error {
	if len(changes) == 0 {
		return nil
	}
	var errs []error
	err := s.pool.with(ctx, false, func(conn *pgx.Conn) error {
		// Until a BEGIN succeeds nothing of the batch can have been committed (the first
		// attempt, if any, was rolled back or died with its connection), so a connection
		// found dead there is replaced and the batch sent again.
		tx, err := conn.Begin(ctx)
		if err != nil {
			return beginError{err}
		}
		var ok bool
		if errs, ok = commitTx(ctx, tx, changes, false); !ok {
			if tx, err = conn.Begin(ctx); err != nil {
				return beginError{err}
			}
			errs, _ = commitTx(ctx, tx, changes, true)
		}
		return nil
	})
	if err != nil {
		errs = make([]error, len(changes))
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// beginError marks a failed BEGIN: nothing of the batch reached the server.
type beginError struct{ err error }

func (e beginError) Error() string     { return e.err.Error() }
func (e beginError) Unwrap() error     { return e.err }
func (e beginError) SafeToRetry() bool { return true }

// commitTx runs one attempt. Without savepoints it gives up (ok false, rolled back) at
// the first change that fails; with them it records the failure, rolls back to the
// change's savepoint and pipelines the rest.
func commitTx(ctx context.Context, tx pgx.Tx, changes []*store.Change, savepoints bool) (errs []error, ok bool) {
	errs = make([]error, len(changes))
	fail := func(err error) ([]error, bool) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs, true
	}
	var ids []string
	for _, c := range changes {
		if c.Device != nil {
			ids = append(ids, c.Device.ID)
		}
	}
	defer tx.Rollback(ctx) // no-op after Commit
	now := time.Now()
	for next := 0; next < len(changes); {
		b := &pgx.Batch{}
		var marks []stmtErr
		if next == 0 && len(ids) > 0 {
			b.Queue(sqlLockDevices, ids)
			marks = append(marks, stmtErr{change: -1, what: "lock devices"})
		}
		for i := next; i < len(changes); i++ {
			marks = queueChange(b, marks, i, changes[i], now, savepoints)
		}
		br := tx.SendBatch(ctx, b)
		failed := -1
		for _, m := range marks {
			if _, err := br.Exec(); err != nil {
				var pe *pgconn.PgError
				if m.change < 0 || !errors.As(err, &pe) || !ofChange(pe) {
					br.Close()
					return fail(err)
				}
				failed, errs[m.change] = m.change, m.wrap(pe)
				break
			}
		}
		err := br.Close()
		if failed < 0 {
			if err != nil {
				return fail(err)
			}
			break
		}
		if !savepoints {
			return nil, false
		}
		// The transaction is aborted at change failed: undo it alone and go on after it.
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT c; RELEASE SAVEPOINT c`); err != nil {
			return fail(err)
		}
		next = failed + 1
	}
	if err := tx.Commit(ctx); err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs, true
}
