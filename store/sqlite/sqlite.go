// Package sqlite is the embedded default store.Store: one SQLite file in WAL mode with
// synchronous=FULL, so a commit that returned survives a crash of the process or the
// machine. Commit applies a whole batch of changes in one transaction (group commit): the
// fsync is paid once per batch, not once per report.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlstore"
	"github.com/fieldseal/fieldseal/wire"

	msqlite "modernc.org/sqlite" // pure Go driver "sqlite"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite store.Store.
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // readers (WAL lets them run beside the writer)

	mu      sync.Mutex
	stmts   map[string]*sql.Stmt             // prepared write statements
	updates map[store.DeviceFields]*sql.Stmt // device UPDATEs of some columns (store.Change.Was), at most maxUpdates
}

// maxUpdates bounds the prepared device UPDATEs of some columns: one per set of columns
// met, and a server meets a handful (a routine report, one that signs a receipt, one
// that changes state...). A set met when the cache is full writes every column.
const maxUpdates = 64

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and applies migrations.
func Open(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// The database holds device secrets: create it owner-only (SQLite gives its -wal and
	// -shm files the database file's mode).
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	dsn := "file:" + abs + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	// The writer touches every device row: give it a large page cache (64 MiB). It also
	// checkpoints the WAL only every 16384 pages (64 MiB) instead of 1000: a device row's
	// page is rewritten by every batch, and a checkpoint copies each page once however often
	// it changed, so rarer checkpoints copy far less (BenchmarkCommit: 43 → 34 µs/report).
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(16384)")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", abs, err)
	}
	if err := migrate(w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)&_pragma=cache_size(-8192)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	st := &Store{w: w, r: r, stmts: map[string]*sql.Stmt{}, updates: map[store.DeviceFields]*sql.Stmt{}}
	for _, q := range writeQueries {
		p, err := w.Prepare(q)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		st.stmts[q] = p
	}
	return st, nil
}

func migrate(db *sql.DB) error {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		for _, stmt := range strings.Split(string(body), ";\n") {
			if strings.TrimSpace(stripComments(stmt)) == "" {
				continue
			}
			if _, err := tx.Exec(stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %s: %w", name, err)
			}
		}
		if _, err := tx.Exec(sqlstore.InsertMigration, name, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	for _, st := range s.updates {
		st.Close()
	}
	s.mu.Unlock()
	err1 := s.r.Close()
	err2 := s.w.Close()
	return errors.Join(err1, err2)
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func deviceArgs(d *store.Device, version uint64) []any {
	args := make([]any, 1, 1+store.NumDeviceFields+3) // room for the guard's arguments
	args[0] = d.ID
	for i := range store.NumDeviceFields {
		args = append(args, deviceField(d, i, version))
	}
	return args
}

// deviceField is column i of d's row as SQLite stores it (times as unix nanoseconds).
func deviceField(d *store.Device, i int, version uint64) any { return d.Field(i, version, nanosAny) }

func nanosAny(t time.Time) any { return nanos(t) }

type scanner interface{ Scan(...any) error }

// queryAll runs a read query and collects one value per row with scan.
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanDevice(r scanner) (*store.Device, error) {
	var d store.Device
	var epoch, version, pinned, running, an, rseq, ldt, lboot, ri, rej, wu int64
	var since, seen, created int64
	var eui sql.NullString
	err := r.Scan(&d.ID, &d.Product, &epoch, &version, &d.UplinkKey, &d.DownlinkKey, &d.State, &since, &d.StateReason,
		&pinned, &running, &an, &d.AnchorHead, &d.AnchorKey, &d.Receipt, &rseq, &d.LastReportHash,
		&d.LastAck, &d.Nonce, &d.PrevNonce, &seen, &ldt, &lboot, &ri, &rej, &wu, &created, &eui)
	if err != nil {
		return nil, err
	}
	d.DevEUI = eui.String
	d.Epoch, d.Version, d.PinnedVersion, d.RunningVersion = uint32(epoch), uint64(version), uint64(pinned), uint64(running)
	d.AnchorN, d.LastRSeq, d.LastDeviceTime, d.LastBoot = uint64(an), uint64(rseq), uint64(ldt), uint32(lboot)
	d.ReportInterval, d.Rejections, d.WindowUntil = uint32(ri), uint32(rej), uint64(wu)
	d.StateSince, d.LastSeen, d.Created = fromNanos(since), fromNanos(seen), fromNanos(created)
	return &d, nil
}

// Commit applies every change in one transaction. A change whose compare-and-set fails is
// skipped whole (a savepoint undoes its partial writes) and reported as ErrConflict.
//
// Failures are rare, so the batch first runs without savepoints (two statements fewer
// per change); should any change fail, that transaction is rolled back and the batch
// runs again with a savepoint around each change.
func (s *Store) Commit(ctx context.Context, changes []*store.Change) []error {
	errs, retry := s.commit(ctx, changes, false)
	if retry {
		errs, _ = s.commit(ctx, changes, true)
	}
	return errs
}

// commit runs one transaction. Without savepoints it stops at the first failing change,
// rolls back and returns retry = true.
func (s *Store) commit(ctx context.Context, changes []*store.Change, savepoints bool) (errs []error, retry bool) {
	errs = make([]error, len(changes))
	fail := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err), false
	}
	x := &txExec{s: s, tx: tx}
	defer func() { s.keepUpdates(ctx, x.fresh) }() // the transaction is over by then
	for i, c := range changes {
		if !savepoints {
			if err := applyChange(ctx, x, c); err != nil {
				tx.Rollback()
				return errs, true
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT c`); err != nil {
			tx.Rollback()
			return fail(err), false
		}
		if err := applyChange(ctx, x, c); err != nil {
			errs[i] = err
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO c`); err != nil {
				tx.Rollback()
				return fail(err), false
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE c`); err != nil {
			tx.Rollback()
			return fail(err), false
		}
	}
	if err := tx.Commit(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs, false
	}
	return errs, false
}

// Write statements of Commit, prepared once at Open.
const (
	qDeleteDevice = `DELETE FROM devices WHERE id = ?`
	qInsertDevice = sqlstore.InsertDevice
	qUpdateDevice = `UPDATE devices SET product=?, epoch=?, version=?, uplink_key=?, downlink_key=?, state=?, state_since=?, state_reason=?,
 pinned_version=?, running_version=?, anchor_n=?, anchor_head=?, anchor_key=?, receipt=?, last_rseq=?, last_report_hash=?,
 last_ack=?, nonce=?, prev_nonce=?, last_seen=?, last_device_time=?, last_boot=?, report_interval=?, rejections=?, window_until=?, created=?, dev_eui=?
 WHERE id = ? AND version = ? AND epoch = ?`
	qInsertEvent = sqlstore.InsertEvent
	qInsertAlert = sqlstore.InsertAlert
	qInsertToken = sqlstore.InsertToken
	qUseToken    = `UPDATE tokens SET used = 1, used_at = ? WHERE id = ? AND used = 0`
	qInsertVisit = sqlstore.InsertVisit
	qCloseVisit  = `UPDATE visits SET closed = ?, seal_number = ?, result = ? WHERE id = ? AND closed = 0`
)

// qAudit is also run outside Commit (AddAudit).
const qAudit = sqlstore.InsertAudit

var writeQueries = []string{qAudit, qDeleteDevice, qInsertDevice, qUpdateDevice, qInsertEvent, qInsertAlert, qInsertToken, qUseToken, qInsertVisit, qCloseVisit}

// txExec runs a statement of the write path inside tx, prepared once per query on the
// writer connection (parsing SQL was a sixth of the ingest CPU); the transaction's handle
// of each statement is made once per transaction.
type txExec struct {
	s       *Store
	tx      *sql.Tx
	stmts   map[string]*sql.Stmt
	updates map[store.DeviceFields]*sql.Stmt
	fresh   []store.DeviceFields // column sets first prepared in this transaction
}

// updateSQL is the compare-and-set UPDATE of the columns in fields.
func updateSQL(fields store.DeviceFields) string {
	var b strings.Builder
	b.WriteString(`UPDATE devices SET `)
	sep := ""
	for m := fields; m != 0; m &= m - 1 {
		b.WriteString(sep)
		b.WriteString(sqlstore.DeviceColumns[bits.TrailingZeros32(uint32(m))])
		b.WriteString(`=?`)
		sep = ", "
	}
	b.WriteString(` WHERE id = ? AND version = ? AND epoch = ?`)
	return b.String()
}

// updateStmt returns this transaction's statement updating the columns in fields, or nil
// when the store holds maxUpdates others already (the caller then writes every column).
// A set not met before is prepared inside the transaction, which holds the one writer
// connection, and for the store once the transaction is over (keepUpdates).
func (x *txExec) updateStmt(ctx context.Context, fields store.DeviceFields) (*sql.Stmt, error) {
	if st, ok := x.updates[fields]; ok {
		return st, nil
	}
	x.s.mu.Lock()
	shared, ok := x.s.updates[fields]
	room := len(x.s.updates)+len(x.fresh) < maxUpdates
	x.s.mu.Unlock()
	var st *sql.Stmt
	switch {
	case ok:
		st = x.tx.StmtContext(ctx, shared)
	case !room:
		return nil, nil
	default:
		var err error
		if st, err = x.tx.PrepareContext(ctx, updateSQL(fields)); err != nil {
			return nil, err
		}
		x.fresh = append(x.fresh, fields)
	}
	if x.updates == nil {
		x.updates = make(map[store.DeviceFields]*sql.Stmt, 4)
	}
	x.updates[fields] = st
	return st, nil
}

// keepUpdates prepares, on the writer connection, the UPDATEs a transaction met first.
func (s *Store) keepUpdates(ctx context.Context, fresh []store.DeviceFields) {
	for _, f := range fresh {
		s.mu.Lock()
		_, ok := s.updates[f]
		full := len(s.updates) >= maxUpdates
		s.mu.Unlock()
		if ok || full {
			continue
		}
		// Not under s.mu: preparing waits for the writer connection, whose holder may
		// want s.mu.
		st, err := s.w.PrepareContext(ctx, updateSQL(f))
		if err != nil {
			continue // prepared again when next met
		}
		s.mu.Lock()
		if _, ok := s.updates[f]; ok || len(s.updates) >= maxUpdates {
			st.Close()
		} else {
			s.updates[f] = st
		}
		s.mu.Unlock()
	}
}

func (x *txExec) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := x.stmts[query]; ok {
		return st.ExecContext(ctx, args...)
	}
	if st := x.s.stmt(query); st != nil {
		ts := x.tx.StmtContext(ctx, st)
		if x.stmts == nil {
			x.stmts = make(map[string]*sql.Stmt, 4)
		}
		x.stmts[query] = ts
		return ts.ExecContext(ctx, args...)
	}
	return x.tx.ExecContext(ctx, query, args...)
}

func (x *txExec) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return x.tx.QueryRowContext(ctx, query, args...)
}

func (s *Store) stmt(query string) *sql.Stmt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stmts[query]
}

func applyChange(ctx context.Context, tx *txExec, c *store.Change) error {
	if d := c.Device; d != nil {
		if c.Create {
			// Re-provisioning replaces the row only with a higher epoch.
			var epoch int64
			err := tx.QueryRowContext(ctx, `SELECT epoch FROM devices WHERE id = ?`, d.ID).Scan(&epoch)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			case uint32(epoch) >= d.Epoch:
				return fmt.Errorf("%w: device %s exists with epoch %d", store.ErrConflict, d.ID, epoch)
			default:
				if _, err := tx.ExecContext(ctx, qDeleteDevice, d.ID); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, qInsertDevice, deviceArgs(d, 1)...); err != nil {
				return classify(err, "device %s", d.ID)
			}
		} else {
			var res sql.Result
			var st *sql.Stmt
			var err error
			fields := c.WriteFields()
			if fields != store.AllDeviceFields {
				if st, err = tx.updateStmt(ctx, fields); err != nil {
					return err
				}
			}
			if st != nil {
				// Only the columns that changed since c.Was (which the guard proves is the
				// stored row): binding is a large part of an update's cost.
				args := make([]any, 0, bits.OnesCount32(uint32(fields))+3)
				for m := fields; m != 0; m &= m - 1 {
					args = append(args, deviceField(d, bits.TrailingZeros32(uint32(m)), d.Version+1))
				}
				args = append(args, d.ID, int64(d.Version), int64(d.Epoch))
				res, err = st.ExecContext(ctx, args...)
			} else {
				args := deviceArgs(d, d.Version+1)
				// The guard includes the epoch: re-provisioning restarts the version at 1, and a
				// writer still holding the old epoch's row at version 1 must not overwrite the new one.
				args = append(args[1:], d.ID, int64(d.Version), int64(d.Epoch))
				res, err = tx.ExecContext(ctx, qUpdateDevice, args...)
			}
			if err != nil {
				return classify(err, "update of device %s", d.ID) // a duplicate DevEUI is a conflict
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n != 1 {
				return fmt.Errorf("%w: device %s changed since version %d (epoch %d)", store.ErrConflict, d.ID, d.Version, d.Epoch)
			}
		}
	}
	for _, e := range c.Events {
		if _, err := tx.ExecContext(ctx, qInsertEvent,
			e.Dev, int64(e.Epoch), int64(e.N), int64(e.T), int64(e.Type), b2i(e.Tamper), nonNil(e.Payload), e.Decoded, nonNil(e.Tag), nonNil(e.Head), nanos(e.Received)); err != nil {
			return classify(err, "event %s/%d/%d", e.Dev, e.Epoch, e.N)
		}
	}
	for _, a := range c.Audits {
		if err := addAudit(ctx, tx, a); err != nil {
			return err
		}
	}
	for _, a := range c.Alerts {
		if _, err := tx.ExecContext(ctx, qInsertAlert, nanos(a.At), a.Dev, a.Kind, a.Reason, a.Detail); err != nil {
			return err
		}
	}
	for _, t := range c.Tokens {
		if _, err := tx.ExecContext(ctx, qInsertToken,
			t.ID, t.Dev, int64(t.Epoch), t.Action, t.Sealed, nanos(t.Issued), nanos(t.Expires), int64(t.Window), b2i(t.Used), nanos(t.UsedAt)); err != nil {
			return classify(err, "token %x", t.ID)
		}
	}
	for _, id := range c.UsedTokens {
		res, err := tx.ExecContext(ctx, qUseToken, time.Now().UnixNano(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: token %x already used or unknown", store.ErrConflict, id)
		}
	}
	for _, v := range c.Visits {
		if _, err := tx.ExecContext(ctx, qInsertVisit,
			v.ID, v.Dev, v.WorkOrder, v.Technician, v.TokenID, nanos(v.Opened), nanos(v.Closed), v.SealNumber, v.Result); err != nil {
			return classify(err, "visit %s", v.ID)
		}
	}
	for _, v := range c.CloseVisits {
		res, err := tx.ExecContext(ctx, qCloseVisit, nanos(v.Closed), v.SealNumber, v.Result, v.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: visit %s already closed or unknown", store.ErrConflict, v.ID)
		}
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func addAudit(ctx context.Context, db execer, a store.Audit) error {
	_, err := db.ExecContext(ctx, qAudit, nanos(a.At), a.Actor, a.Kind, a.Dev, a.Reason, a.Detail)
	return err
}

func (s *Store) GetDevice(ctx context.Context, id string) (*store.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, sqlstore.GetDevice, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: device %q", store.ErrNotFound, id)
	}
	return d, err
}

func (s *Store) DeviceByEUI(ctx context.Context, eui string) (*store.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, sqlstore.DeviceByEUI, eui))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: DevEUI %q", store.ErrNotFound, eui)
	}
	return d, err
}

func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter) ([]*store.Device, error) {
	q := `SELECT ` + sqlstore.DeviceCols + ` FROM devices WHERE 1=1`
	var args []any
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, f.State)
	}
	if f.Product != "" {
		q += ` AND product = ?`
		args = append(args, f.Product)
	}
	if !f.OverdueAt.IsZero() {
		// last_seen + missed × interval < at, in nanoseconds; interval 0 means the default.
		q += ` AND last_seen > 0 AND last_seen + ? * (CASE WHEN report_interval > 0 THEN report_interval * 1000000000 ELSE ? END) < ?`
		args = append(args, int64(f.Missed), int64(f.DefaultInterval), nanos(f.OverdueAt))
	}
	q += ` ORDER BY id`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	return queryAll(ctx, s.r, scanDevice, q, args...)
}

func (s *Store) CountDevices(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, sqlstore.CountDevices)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

func (s *Store) PutManifest(ctx context.Context, m *store.Manifest) error {
	_, err := s.w.ExecContext(ctx, sqlstore.InsertManifest,
		m.Product, int64(m.Version), m.Root, m.Signed, nanos(m.Created), int64(m.ReportInterval))
	if err != nil {
		return classify(err, "manifest %s version %d", m.Product, m.Version)
	}
	return nil
}

func scanManifest(r scanner) (*store.Manifest, error) {
	var m store.Manifest
	var v, c, ri int64
	if err := r.Scan(&m.Product, &v, &m.Root, &m.Signed, &c, &ri); err != nil {
		return nil, err
	}
	m.Version, m.Created, m.ReportInterval = uint64(v), fromNanos(c), uint32(ri)
	return &m, nil
}

func (s *Store) GetManifest(ctx context.Context, product string, version uint64) (*store.Manifest, error) {
	m, err := scanManifest(s.r.QueryRowContext(ctx, sqlstore.GetManifest, product, int64(version)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: manifest %s version %d", store.ErrNotFound, product, version)
	}
	return m, err
}

func (s *Store) CurrentManifest(ctx context.Context, product string) (*store.Manifest, error) {
	m, err := scanManifest(s.r.QueryRowContext(ctx, sqlstore.CurrentManifest, product))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no manifest for product %s", store.ErrNotFound, product)
	}
	return m, err
}

func (s *Store) ListManifests(ctx context.Context) ([]*store.Manifest, error) {
	return queryAll(ctx, s.r, scanManifest, sqlstore.ListManifests)
}

func (s *Store) ListEvents(ctx context.Context, p store.Page) ([]store.Event, error) {
	return queryAll(ctx, s.r, func(rows scanner) (store.Event, error) {
		var e store.Event
		var epoch, n, t, typ, tamper, rec int64
		if err := rows.Scan(&e.Dev, &epoch, &n, &t, &typ, &tamper, &e.Payload, &e.Decoded, &e.Tag, &e.Head, &rec); err != nil {
			return store.Event{}, err
		}
		e.Epoch, e.N, e.T, e.Type, e.Tamper, e.Received = uint32(epoch), uint64(n), uint64(t), uint16(typ), tamper != 0, fromNanos(rec)
		e.TypeName = wire.EntryName(e.Type)
		return e, nil
	}, sqlstore.ListEvents, p.Dev, int64(p.AfterN), sqlstore.Limit(p.Limit))
}

func (s *Store) EventHead(ctx context.Context, dev string, epoch uint32, n uint64) ([]byte, error) {
	var h []byte
	err := s.r.QueryRowContext(ctx, sqlstore.EventHead, dev, int64(epoch), int64(n)).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: event %s/%d/%d", store.ErrNotFound, dev, epoch, n)
	}
	return h, err
}

func (s *Store) AddAudit(ctx context.Context, a store.Audit) error { return addAudit(ctx, s.w, a) }

func (s *Store) ListAudit(ctx context.Context, p store.Page) ([]store.Audit, error) {
	q := `SELECT id, at, actor, kind, dev, reason, detail FROM audit WHERE 1=1`
	var args []any
	if p.Dev != "" {
		q += ` AND dev = ?`
		args = append(args, p.Dev)
	}
	if p.BeforeID > 0 {
		q += ` AND id < ?`
		args = append(args, p.BeforeID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, sqlstore.Limit(p.Limit))
	return queryAll(ctx, s.r, func(rows scanner) (store.Audit, error) {
		var a store.Audit
		var at int64
		if err := rows.Scan(&a.ID, &at, &a.Actor, &a.Kind, &a.Dev, &a.Reason, &a.Detail); err != nil {
			return store.Audit{}, err
		}
		a.At = fromNanos(at)
		return a, nil
	}, q, args...)
}

func (s *Store) ListAlerts(ctx context.Context, p store.Page, unackedOnly bool) ([]store.Alert, error) {
	q := `SELECT id, at, dev, kind, reason, detail, acked_at, acked_by FROM alerts WHERE 1=1`
	var args []any
	if p.Dev != "" {
		q += ` AND dev = ?`
		args = append(args, p.Dev)
	}
	if p.BeforeID > 0 {
		q += ` AND id < ?`
		args = append(args, p.BeforeID)
	}
	if unackedOnly {
		q += ` AND acked_at = 0`
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, sqlstore.Limit(p.Limit))
	return queryAll(ctx, s.r, func(rows scanner) (store.Alert, error) {
		var a store.Alert
		var at, acked int64
		if err := rows.Scan(&a.ID, &at, &a.Dev, &a.Kind, &a.Reason, &a.Detail, &acked, &a.AckedBy); err != nil {
			return store.Alert{}, err
		}
		a.At, a.AckedAt = fromNanos(at), fromNanos(acked)
		return a, nil
	}, q, args...)
}

func (s *Store) AckAlert(ctx context.Context, id int64, by string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE alerts SET acked_at = ?, acked_by = ? WHERE id = ? AND acked_at = 0`, nanos(at), by, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		var x int
		if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM alerts WHERE id = ?`, id).Scan(&x); err == nil && x == 0 {
			return fmt.Errorf("%w: alert %d", store.ErrNotFound, id)
		}
		return fmt.Errorf("%w: alert %d already acknowledged", store.ErrConflict, id)
	}
	return nil
}

func scanToken(r scanner) (*store.Token, error) {
	var t store.Token
	var epoch, issued, expires, win, used, usedAt int64
	if err := r.Scan(&t.ID, &t.Dev, &epoch, &t.Action, &t.Sealed, &issued, &expires, &win, &used, &usedAt); err != nil {
		return nil, err
	}
	t.Epoch, t.Issued, t.Expires, t.Window, t.Used, t.UsedAt = uint32(epoch), fromNanos(issued), fromNanos(expires), uint32(win), used != 0, fromNanos(usedAt)
	return &t, nil
}

func (s *Store) GetToken(ctx context.Context, id []byte) (*store.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, sqlstore.GetToken, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: token %x", store.ErrNotFound, id)
	}
	return t, err
}

func (s *Store) PendingTokens(ctx context.Context, dev string, epoch uint32, now time.Time) ([]store.Token, error) {
	return queryAll(ctx, s.r, func(rows scanner) (store.Token, error) {
		t, err := scanToken(rows)
		if err != nil {
			return store.Token{}, err
		}
		return *t, nil
	}, `SELECT `+sqlstore.TokenCols+` FROM tokens WHERE dev = ? AND epoch = ? AND used = 0 AND expires > ? ORDER BY issued`, dev, int64(epoch), nanos(now))
}

func scanVisit(r scanner) (*store.Visit, error) {
	var v store.Visit
	var opened, closed int64
	if err := r.Scan(&v.ID, &v.Dev, &v.WorkOrder, &v.Technician, &v.TokenID, &opened, &closed, &v.SealNumber, &v.Result); err != nil {
		return nil, err
	}
	v.Opened, v.Closed = fromNanos(opened), fromNanos(closed)
	return &v, nil
}

func (s *Store) GetVisit(ctx context.Context, id string) (*store.Visit, error) {
	v, err := scanVisit(s.r.QueryRowContext(ctx, sqlstore.GetVisit, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: visit %s", store.ErrNotFound, id)
	}
	return v, err
}

func (s *Store) ListVisits(ctx context.Context, dev string) ([]store.Visit, error) {
	return queryAll(ctx, s.r, func(rows scanner) (store.Visit, error) {
		v, err := scanVisit(rows)
		if err != nil {
			return store.Visit{}, err
		}
		return *v, nil
	}, `SELECT `+sqlstore.VisitCols+` FROM visits WHERE dev = ? OR ? = '' ORDER BY opened DESC`, dev, dev)
}

func (s *Store) PutAPIToken(ctx context.Context, t store.APIToken) error {
	_, err := s.w.ExecContext(ctx, sqlstore.InsertAPIToken, t.Hash, t.Name, t.Role, nanos(t.Created))
	if err != nil {
		return classify(err, "API token %q", t.Name)
	}
	return nil
}

func (s *Store) GetAPIToken(ctx context.Context, hash []byte) (*store.APIToken, error) {
	var t store.APIToken
	var c int64
	err := s.r.QueryRowContext(ctx, sqlstore.GetAPIToken, hash).Scan(&t.Hash, &t.Name, &t.Role, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: API token", store.ErrNotFound)
	}
	t.Created = fromNanos(c)
	return &t, err
}

func (s *Store) ListAPITokens(ctx context.Context) ([]store.APIToken, error) {
	return queryAll(ctx, s.r, func(rows scanner) (store.APIToken, error) {
		var t store.APIToken
		var c int64
		if err := rows.Scan(&t.Hash, &t.Name, &t.Role, &c); err != nil {
			return store.APIToken{}, err
		}
		t.Created = fromNanos(c)
		return t, nil
	}, sqlstore.ListAPITokens)
}

func (s *Store) DeleteAPIToken(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, sqlstore.DeleteAPIToken, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: API token %q", store.ErrNotFound, name)
	}
	return nil
}

// SQLite result codes (https://sqlite.org/rescode.html). The driver reports extended
// codes; the low byte of one is its primary code.
const (
	resultFull             = 13   // SQLITE_FULL: the disk (or max_page_count) is full
	resultPrimaryKeyExists = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	resultUniqueExists     = 2067 // SQLITE_CONSTRAINT_UNIQUE
)

// classify turns a write error into what it means, by SQLite's result code, never by its
// text: a duplicate key (the row exists: another writer got there first) is
// store.ErrConflict; everything else — a full disk, an I/O error, a NOT NULL or CHECK
// violation (a bug, not a race) — stays an error of its own, so a caller never retries a
// full disk as if it were a lost race.
func classify(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	var se *msqlite.Error
	if errors.As(err, &se) && (se.Code() == resultPrimaryKeyExists || se.Code() == resultUniqueExists) {
		return fmt.Errorf("%w: %s exists: %v", store.ErrConflict, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
