package store

import (
	"strings"
	"time"
)

// Sort orders of a DeviceQuery.
const (
	SortID       = "id"        // device id (the default)
	SortLastSeen = "last_seen" // when the device last reported; never seen sorts as oldest
)

// DeviceQuery selects one page of the fleet list: filters, a sort order and a keyset
// cursor, so that the next page costs the same at device 100,000 as at device 100 (no
// OFFSET). Backends answer it from indexes: devices(state, id), devices(product, id),
// devices(last_seen, id), devices(state, last_seen, id) and visits(work_order),
// visits(seal_number).
type DeviceQuery struct {
	State   string
	Product string
	Version uint64 // the manifest version the device runs; 0: any
	// Search matches a device whose id starts with it, or one of whose service visits has
	// it as work order or physical seal number (exactly).
	Search string
	Sort   string // SortID or SortLastSeen; "" is SortID
	Desc   bool
	After  *DeviceCursor // the last device of the previous page; nil: the first page
	Limit  int           // at most this many (default 100, at most 1000)
}

// DeviceCursor is where a page ends: the sort key of its last device.
type DeviceCursor struct {
	ID       string
	LastSeen time.Time
}

// CursorOf is the cursor a page ending at d continues from.
func CursorOf(d *Device) *DeviceCursor { return &DeviceCursor{ID: d.ID, LastSeen: d.LastSeen} }

// QueryLimit is q.Limit bounded to 1–1000 (default 100).
func (q DeviceQuery) QueryLimit() int {
	switch {
	case q.Limit <= 0:
		return 100
	case q.Limit > 1000:
		return 1000
	}
	return q.Limit
}

// Filters reports whether d passes q's filters (not the search's visit part, nor the
// cursor): for backends filtering in Go.
func (q DeviceQuery) Filters(d *Device) bool {
	return (q.State == "" || d.State == q.State) && (q.Product == "" || d.Product == q.Product) &&
		(q.Version == 0 || d.RunningVersion == q.Version)
}

// SearchMatches reports whether d (with its visits) matches q.Search.
func (q DeviceQuery) SearchMatches(d *Device, visits []Visit) bool {
	if q.Search == "" || strings.HasPrefix(d.ID, q.Search) {
		return true
	}
	for _, v := range visits {
		if v.Dev == d.ID && (v.WorkOrder == q.Search || v.SealNumber == q.Search) {
			return true
		}
	}
	return false
}

// Less orders a before b in q's sort (before Desc is applied): by last seen (the zero
// time first) then id, or by id.
func (q DeviceQuery) Less(a, b *DeviceCursor) bool {
	if q.Sort == SortLastSeen {
		au, bu := unixMicro(a.LastSeen), unixMicro(b.LastSeen)
		if au != bu {
			return au < bu
		}
	}
	return a.ID < b.ID
}

// IsAfter reports whether c comes after q.After in q's order (true when q.After is nil).
func (q DeviceQuery) IsAfter(c *DeviceCursor) bool {
	if q.After == nil {
		return true
	}
	if q.Desc {
		return q.Less(c, q.After)
	}
	return q.Less(q.After, c)
}

// unixMicro compares times at the precision every backend keeps (PostgreSQL: microseconds).
func unixMicro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}
