package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlstore"
	"github.com/fieldseal/fieldseal/wire"
)

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// collect runs a query and scans every row with scan.
func collect[T any](ctx context.Context, s *Store, scan func(pgx.Rows) (T, error), sql string, args ...any) ([]T, error) {
	var out []T
	err := s.pool.with(ctx, true, func(c *pgx.Conn) error {
		out = nil // a second attempt starts over
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lazyRow runs its query when scanned, on a connection held only for the scan.
type lazyRow struct {
	s          *Store
	idempotent bool
	ctx        context.Context
	sql        string
	args       []any
}

func (r lazyRow) Scan(dest ...any) error {
	return r.s.pool.with(r.ctx, r.idempotent, func(c *pgx.Conn) error { return c.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...) })
}

func (s *Store) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return lazyRow{s: s, idempotent: true, ctx: ctx, sql: sql, args: args}
}

// writeRow is queryRow for a statement that writes: not run again on a new connection
// unless nothing reached the server.
func (s *Store) writeRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return lazyRow{s: s, ctx: ctx, sql: sql, args: args}
}

func (s *Store) exec(ctx context.Context, sql string, args ...any) (tag pgconn.CommandTag, err error) {
	err = s.pool.with(ctx, false, func(c *pgx.Conn) error {
		tag, err = c.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

func (s *Store) GetDevice(ctx context.Context, id string) (*store.Device, error) {
	d, err := scanDevice(s.queryRow(ctx, sqlGetDevice, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: device %q", store.ErrNotFound, id)
	}
	return d, err
}

func (s *Store) DeviceByEUI(ctx context.Context, eui string) (*store.Device, error) {
	d, err := scanDevice(s.queryRow(ctx, sqlDeviceByEUI, eui))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: DevEUI %q", store.ErrNotFound, eui)
	}
	return d, err
}

func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter) ([]*store.Device, error) {
	q := `SELECT ` + sqlstore.DeviceCols + ` FROM devices WHERE ($1 = '' OR state = $1) AND ($2 = '' OR product = $2)`
	args := []any{f.State, f.Product}
	if !f.OverdueAt.IsZero() {
		// Seen, and last seen more than Missed report intervals (0: the default) before
		// OverdueAt: exactly DeviceFilter.Overdue, at the store's microseconds.
		q += ` AND last_seen IS NOT NULL AND last_seen + $3::bigint * (CASE WHEN report_interval > 0 THEN report_interval * 1000000 ELSE $4::bigint END) * interval '1 microsecond' < $5`
		args = append(args, int64(f.Missed), f.DefaultInterval.Microseconds(), f.OverdueAt)
	}
	q += ` ORDER BY id`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += fmt.Sprintf(` LIMIT $%d`, len(args))
	}
	return collect(ctx, s, func(r pgx.Rows) (*store.Device, error) { return scanDevice(r) }, q, args...)
}

func (s *Store) CountDevices(ctx context.Context) (map[string]int, error) {
	type count struct {
		state string
		n     int64
	}
	counts, err := collect(ctx, s, func(r pgx.Rows) (count, error) {
		var c count
		err := r.Scan(&c.state, &c.n)
		return c, err
	}, sqlstore.CountDevices)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, c := range counts {
		out[c.state] = int(c.n)
	}
	return out, nil
}

func (s *Store) PutManifest(ctx context.Context, m *store.Manifest) error {
	_, err := s.exec(ctx, sqlManifestPut,
		m.Product, int64(m.Version), m.Root, m.Signed, ts(m.Created), int64(m.ReportInterval))
	if isUnique(err) {
		return fmt.Errorf("%w: manifest %s version %d exists", store.ErrConflict, m.Product, m.Version)
	}
	return err
}

func scanManifest(r pgx.Row) (*store.Manifest, error) {
	var m store.Manifest
	var v, ri int64
	if err := r.Scan(&m.Product, &v, &m.Root, &m.Signed, tsOut(&m.Created), &ri); err != nil {
		return nil, err
	}
	m.Version, m.ReportInterval = uint64(v), uint32(ri)
	return &m, nil
}

func (s *Store) GetManifest(ctx context.Context, product string, version uint64) (*store.Manifest, error) {
	m, err := scanManifest(s.queryRow(ctx, sqlManifestGet, product, int64(version)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: manifest %s version %d", store.ErrNotFound, product, version)
	}
	return m, err
}

func (s *Store) CurrentManifest(ctx context.Context, product string) (*store.Manifest, error) {
	m, err := scanManifest(s.queryRow(ctx, sqlManifestCur, product))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: no manifest for product %s", store.ErrNotFound, product)
	}
	return m, err
}

func (s *Store) ListManifests(ctx context.Context) ([]*store.Manifest, error) {
	return collect(ctx, s, func(r pgx.Rows) (*store.Manifest, error) { return scanManifest(r) },
		sqlstore.ListManifests)
}

func (s *Store) ListEvents(ctx context.Context, p store.Page) ([]store.Event, error) {
	return collect(ctx, s, func(r pgx.Rows) (store.Event, error) {
		var e store.Event
		var epoch, n, t int64
		var typ int32
		if err := r.Scan(&e.Dev, &epoch, &n, &t, &typ, &e.Tamper, &e.Payload, &e.Decoded, &e.Tag, &e.Head, tsOut(&e.Received)); err != nil {
			return e, err
		}
		e.Epoch, e.N, e.T, e.Type = uint32(epoch), uint64(n), uint64(t), uint16(typ)
		e.TypeName = wire.EntryName(e.Type)
		return e, nil
	}, sqlListEvents, p.Dev, int64(p.AfterN), sqlstore.Limit(p.Limit))
}

func (s *Store) EventHead(ctx context.Context, dev string, epoch uint32, n uint64) ([]byte, error) {
	var h []byte
	err := s.queryRow(ctx, sqlEventHead, dev, int64(epoch), int64(n)).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: event %s/%d/%d", store.ErrNotFound, dev, epoch, n)
	}
	return h, err
}

func (s *Store) AddAudit(ctx context.Context, a store.Audit) error {
	_, err := s.exec(ctx, sqlAudit, ts(a.At), a.Actor, a.Kind, a.Dev, a.Reason, a.Detail)
	return err
}

func (s *Store) ListAudit(ctx context.Context, p store.Page) ([]store.Audit, error) {
	return collect(ctx, s, func(r pgx.Rows) (store.Audit, error) {
		var a store.Audit
		err := r.Scan(&a.ID, tsOut(&a.At), &a.Actor, &a.Kind, &a.Dev, &a.Reason, &a.Detail)
		return a, err
	}, `SELECT id, at, actor, kind, dev, reason, detail FROM audit
 WHERE ($1 = '' OR dev = $1) AND ($2 <= 0 OR id < $2) ORDER BY id DESC LIMIT $3`, p.Dev, p.BeforeID, sqlstore.Limit(p.Limit))
}

func (s *Store) ListAlerts(ctx context.Context, p store.Page, unackedOnly bool) ([]store.Alert, error) {
	return collect(ctx, s, func(r pgx.Rows) (store.Alert, error) {
		var a store.Alert
		err := r.Scan(&a.ID, tsOut(&a.At), &a.Dev, &a.Kind, &a.Reason, &a.Detail, tsOut(&a.AckedAt), &a.AckedBy)
		return a, err
	}, `SELECT id, at, dev, kind, reason, detail, acked_at, acked_by FROM alerts
 WHERE ($1 = '' OR dev = $1) AND ($2 <= 0 OR id < $2) AND (NOT $3 OR acked_at IS NULL) ORDER BY id DESC LIMIT $4`,
		p.Dev, p.BeforeID, unackedOnly, sqlstore.Limit(p.Limit))
}

func (s *Store) AckAlert(ctx context.Context, id int64, by string, at time.Time) error {
	// One statement: whether the alert exists is read in the same snapshot as the update.
	var exists, updated bool
	err := s.writeRow(ctx, `WITH u AS (UPDATE alerts SET acked_at = $1, acked_by = $2 WHERE id = $3 AND acked_at IS NULL RETURNING 1)
SELECT EXISTS (SELECT 1 FROM alerts WHERE id = $3), EXISTS (SELECT 1 FROM u)`, ts(at), by, id).Scan(&exists, &updated)
	switch {
	case err != nil:
		return err
	case updated:
		return nil
	case !exists:
		return fmt.Errorf("%w: alert %d", store.ErrNotFound, id)
	}
	return fmt.Errorf("%w: alert %d already acknowledged", store.ErrConflict, id)
}

func scanToken(r pgx.Row) (store.Token, error) {
	var t store.Token
	var epoch, win int64
	if err := r.Scan(&t.ID, &t.Dev, &epoch, &t.Action, &t.Sealed, tsOut(&t.Issued), tsOut(&t.Expires), &win, &t.Used, tsOut(&t.UsedAt)); err != nil {
		return t, err
	}
	t.Epoch, t.Window = uint32(epoch), uint32(win)
	return t, nil
}

func (s *Store) GetToken(ctx context.Context, id []byte) (*store.Token, error) {
	t, err := scanToken(s.queryRow(ctx, sqlGetToken, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: token %x", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func (s *Store) PendingTokens(ctx context.Context, dev string, epoch uint32, now time.Time) ([]store.Token, error) {
	// A zero now is SQLite's 0: every token with an expiry is still pending.
	return collect(ctx, s, func(r pgx.Rows) (store.Token, error) { return scanToken(r) },
		`SELECT `+sqlstore.TokenCols+` FROM tokens WHERE dev = $1 AND epoch = $2 AND NOT used AND expires > COALESCE($3::timestamptz, '-infinity')
 ORDER BY issued NULLS FIRST`, dev, int64(epoch), ts(now))
}

func scanVisit(r pgx.Row) (store.Visit, error) {
	var v store.Visit
	err := r.Scan(&v.ID, &v.Dev, &v.WorkOrder, &v.Technician, &v.TokenID, tsOut(&v.Opened), tsOut(&v.Closed), &v.SealNumber, &v.Result)
	return v, err
}

func (s *Store) GetVisit(ctx context.Context, id string) (*store.Visit, error) {
	v, err := scanVisit(s.queryRow(ctx, sqlGetVisit, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: visit %s", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (s *Store) ListVisits(ctx context.Context, dev string) ([]store.Visit, error) {
	return collect(ctx, s, func(r pgx.Rows) (store.Visit, error) { return scanVisit(r) },
		`SELECT `+sqlstore.VisitCols+` FROM visits WHERE ($1 = '' OR dev = $1) ORDER BY opened DESC NULLS LAST`, dev)
}

func (s *Store) PutAPIToken(ctx context.Context, t store.APIToken) error {
	_, err := s.exec(ctx, sqlAPITokenPut, t.Hash, t.Name, t.Role, ts(t.Created))
	if isUnique(err) {
		return fmt.Errorf("%w: API token %q exists", store.ErrConflict, t.Name)
	}
	return err
}

func scanAPIToken(r pgx.Row) (store.APIToken, error) {
	var t store.APIToken
	err := r.Scan(&t.Hash, &t.Name, &t.Role, tsOut(&t.Created))
	return t, err
}

func (s *Store) GetAPIToken(ctx context.Context, hash []byte) (*store.APIToken, error) {
	t, err := scanAPIToken(s.queryRow(ctx, sqlAPITokenGet, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: API token", store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func (s *Store) ListAPITokens(ctx context.Context) ([]store.APIToken, error) {
	return collect(ctx, s, func(r pgx.Rows) (store.APIToken, error) { return scanAPIToken(r) },
		sqlstore.ListAPITokens)
}

func (s *Store) DeleteAPIToken(ctx context.Context, name string) error {
	tag, err := s.exec(ctx, sqlAPITokenDel, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w: API token %q", store.ErrNotFound, name)
	}
	return nil
}
