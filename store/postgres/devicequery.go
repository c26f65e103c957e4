package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlstore"
)

// QueryDevices answers one page of the fleet list with a keyset query (no OFFSET). The
// zero time is NULL here: a never-seen device sorts first by last seen (NULLS FIRST), as
// its 0 does on SQLite.
func (s *Store) QueryDevices(ctx context.Context, q store.DeviceQuery) ([]*store.Device, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if q.State != "" {
		where = append(where, `state = `+arg(q.State))
	}
	if q.Product != "" {
		where = append(where, `product = `+arg(q.Product))
	}
	if q.Version != 0 {
		where = append(where, `running_version = `+arg(int64(q.Version)))
	}
	if q.District != "" {
		// EXISTS, not a join: a device is listed once whatever its roles.
		where = append(where, `EXISTS (SELECT 1 FROM district_members m WHERE m.district = `+arg(q.District)+` AND m.dev = devices.id)`)
	}
	if q.Search != "" {
		p := arg(q.Search)
		where = append(where, `(starts_with(id, `+p+`) OR id IN (SELECT dev FROM visits WHERE work_order = `+p+` OR seal_number = `+p+`))`)
	}
	dir := "ASC"
	if q.Desc {
		dir = "DESC"
	}
	order := `id ` + dir
	if q.Sort == store.SortLastSeen {
		order = `last_seen ` + dir + ` NULLS FIRST, id ` + dir
		if q.Desc {
			order = `last_seen DESC NULLS LAST, id DESC`
		}
		if c := q.After; c != nil {
			id := arg(c.ID)
			switch {
			case c.LastSeen.IsZero() && !q.Desc:
				where = append(where, `(last_seen IS NOT NULL OR id > `+id+`)`)
			case c.LastSeen.IsZero():
				where = append(where, `(last_seen IS NULL AND id < `+id+`)`)
			case !q.Desc:
				where = append(where, `(last_seen, id) > (`+arg(c.LastSeen)+`, `+id+`)`)
			default:
				where = append(where, `((last_seen, id) < (`+arg(c.LastSeen)+`, `+id+`) OR last_seen IS NULL)`)
			}
		}
	} else if q.After != nil {
		cmp := ">"
		if q.Desc {
			cmp = "<"
		}
		where = append(where, `id `+cmp+` `+arg(q.After.ID))
	}
	sql := `SELECT ` + sqlstore.DeviceCols + ` FROM devices`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, ` AND `)
	}
	sql += fmt.Sprintf(` ORDER BY %s LIMIT %d`, order, q.QueryLimit())
	return collect(ctx, s, func(r pgx.Rows) (*store.Device, error) { return scanDevice(r) }, sql, args...)
}
