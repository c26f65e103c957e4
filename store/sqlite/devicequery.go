package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/fieldseal/fieldseal/store"
)

// QueryDevices answers one page of the fleet list with a keyset query (no OFFSET): the
// indexes of migration 002 serve each filter together with the sort.
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
	if q.Search != "" {
		// Device ids are [A-Za-z0-9._:-]: "~" sorts after every one of them.
		add(`(id >= ? AND id < ? OR id IN (SELECT dev FROM visits WHERE work_order = ? OR seal_number = ?))`, q.Search, q.Search+"~", q.Search, q.Search)
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
	sql := `SELECT ` + deviceCols + ` FROM devices`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, ` AND `)
	}
	sql += fmt.Sprintf(` ORDER BY %s LIMIT %d`, order, q.QueryLimit())
	return queryAll(ctx, s.r, scanDevice, sql, args...)
}
