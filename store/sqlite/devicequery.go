package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlstore"
)

// QueryDevices answers one page of the fleet list with a keyset query (no OFFSET): the
// indexes of migration 002 serve each filter together with the sort. A search is two
// range reads joined by UNION ALL — ids with the prefix (a primary-key range) and the
// devices of matching visits (the visits indexes) — because SQLite would answer the OR of
// the two with a scan of the whole table.
func (s *Store) QueryDevices(ctx context.Context, q store.DeviceQuery) ([]*store.Device, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if q.State != "" {
		add(`state = ?`, q.State)
	}
	if q.Product != "" {
		add(`product = ?`, q.Product)
	}
	if q.Version != 0 {
		add(`running_version = ?`, int64(q.Version))
	}
	if q.District != "" {
		// The membership primary key (district, dev) answers this per device.
		add(`EXISTS (SELECT 1 FROM district_members m WHERE m.district = ? AND m.dev = devices.id)`, q.District)
	}
	cmp, dir := ">", "ASC"
	if q.Desc {
		cmp, dir = "<", "DESC"
	}
	order := `id ` + dir
	if q.Sort == store.SortLastSeen {
		order = `last_seen ` + dir + `, id ` + dir
		if q.After != nil {
			add(`(last_seen, id) `+cmp+` (?, ?)`, nanos(q.After.LastSeen), q.After.ID)
		}
	} else if q.After != nil {
		add(`id `+cmp+` ?`, q.After.ID)
	}
	limit := fmt.Sprintf(` ORDER BY %s LIMIT %d`, order, q.QueryLimit())
	if q.Search == "" {
		sql := `SELECT ` + sqlstore.DeviceCols + ` FROM devices`
		if len(where) > 0 {
			sql += ` WHERE ` + strings.Join(where, ` AND `)
		}
		return queryAll(ctx, s.r, scanDevice, sql+limit, args...)
	}
	// Device ids are [A-Za-z0-9._:-]: "~" sorts after every one of them.
	lo, hi := q.Search, q.Search+"~"
	rest := ""
	if len(where) > 0 {
		rest = ` AND ` + strings.Join(where, ` AND `)
	}
	sql := `SELECT * FROM (SELECT ` + sqlstore.DeviceCols + ` FROM devices WHERE id >= ? AND id < ?` + rest +
		` UNION ALL SELECT ` + sqlstore.DeviceCols + ` FROM devices WHERE id IN (SELECT dev FROM visits WHERE work_order = ? OR seal_number = ?) AND NOT (id >= ? AND id < ?)` + rest + `)` + limit
	all := append([]any{lo, hi}, args...)
	all = append(all, q.Search, q.Search, lo, hi)
	all = append(all, args...)
	return queryAll(ctx, s.r, scanDevice, sql, all...)
}
