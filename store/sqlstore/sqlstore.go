// Package sqlstore is the SQL the store backends (store/sqlite, store/postgres) share: the
// column lists and every statement that differs between them only in its placeholders.
// Statements are written with ? placeholders, as SQLite takes them; Rebind numbers them
// for PostgreSQL ($1, $2, …). What really differs — time columns (unix nanoseconds against
// timestamptz), compare-and-set (a changed-rows count against fieldseal_conflict), booleans,
// NULLs, paging — stays in each backend. It imports no driver.
package sqlstore

import (
	"strconv"
	"strings"
)

// Column lists, in the order the backends scan them.
const (
	DeviceCols = `id, product, epoch, version, uplink_key, downlink_key, state, state_since, state_reason,
 pinned_version, running_version, anchor_n, anchor_head, anchor_key, receipt, last_rseq, last_report_hash,
 last_ack, nonce, prev_nonce, last_seen, last_device_time, last_boot, report_interval, rejections, window_until, created, dev_eui`
	ManifestCols = `product, version, root, signed, created, report_interval`
	TokenCols    = `id, dev, epoch, action, sealed, issued, expires, win, used, used_at`
	VisitCols    = `id, dev, work_order, technician, token_id, opened, closed, seal_number, result`
	EventCols    = `dev, epoch, n, t, type, tamper, payload, decoded, tag, head, received`
	APITokenCols = `hash, name, role, created`
	DistrictCols = `id, name, config, updated`
	MemberCols   = `district, dev, role`
)

// DeviceColumns are the columns of DeviceCols after id: column i holds store.DeviceFields
// bit i.
var DeviceColumns = strings.Fields(strings.ReplaceAll(DeviceCols, ",", " "))[1:]

// The shared statements.
const (
	InsertDevice   = `INSERT INTO devices (` + DeviceCols + `) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
	GetDevice      = `SELECT ` + DeviceCols + ` FROM devices WHERE id = ?`
	DeviceByEUI    = `SELECT ` + DeviceCols + ` FROM devices WHERE dev_eui = ?`
	CountDevices   = `SELECT state, COUNT(*) FROM devices GROUP BY state`
	InsertEvent    = `INSERT INTO events (` + EventCols + `) VALUES (?,?,?,?,?,?,?,?,?,?,?)`
	ListEvents     = `SELECT ` + EventCols + ` FROM events WHERE dev = ? AND n > ? ORDER BY epoch, n LIMIT ?`
	EventHead      = `SELECT head FROM events WHERE dev = ? AND epoch = ? AND n = ?`
	InsertAudit    = `INSERT INTO audit (at, actor, kind, dev, reason, detail) VALUES (?,?,?,?,?,?)`
	InsertAlert    = `INSERT INTO alerts (at, dev, kind, reason, detail) VALUES (?,?,?,?,?)`
	InsertToken    = `INSERT INTO tokens (` + TokenCols + `) VALUES (?,?,?,?,?,?,?,?,?,?)`
	GetToken       = `SELECT ` + TokenCols + ` FROM tokens WHERE id = ?`
	InsertVisit    = `INSERT INTO visits (` + VisitCols + `) VALUES (?,?,?,?,?,?,?,?,?)`
	GetVisit       = `SELECT ` + VisitCols + ` FROM visits WHERE id = ?`
	InsertManifest = `INSERT INTO manifests (` + ManifestCols + `) VALUES (?,?,?,?,?,?)`
	GetManifest    = `SELECT ` + ManifestCols + ` FROM manifests WHERE product = ? AND version = ?`
	// CurrentManifest is the product's highest version.
	CurrentManifest = `SELECT ` + ManifestCols + ` FROM manifests WHERE product = ? ORDER BY version DESC LIMIT 1`
	ListManifests   = `SELECT ` + ManifestCols + ` FROM manifests ORDER BY product, version`
	InsertAPIToken  = `INSERT INTO api_tokens (` + APITokenCols + `) VALUES (?,?,?,?)`
	GetAPIToken     = `SELECT ` + APITokenCols + ` FROM api_tokens WHERE hash = ?`
	ListAPITokens   = `SELECT ` + APITokenCols + ` FROM api_tokens ORDER BY name`
	DeleteAPIToken  = `DELETE FROM api_tokens WHERE name = ?`
	// PutDistrict creates or replaces a district's name and configuration.
	PutDistrict = `INSERT INTO districts (` + DistrictCols + `) VALUES (?,?,?,?)
 ON CONFLICT (id) DO UPDATE SET name = excluded.name, config = excluded.config, updated = excluded.updated`
	GetDistrict   = `SELECT ` + DistrictCols + ` FROM districts WHERE id = ?`
	ListDistricts = `SELECT ` + DistrictCols + ` FROM districts ORDER BY id`
	CountDistrict = `SELECT COUNT(*) FROM districts WHERE id = ?`
	// PutMember sets a meter's role in a district.
	PutMember = `INSERT INTO district_members (` + MemberCols + `) VALUES (?,?,?)
 ON CONFLICT (district, dev) DO UPDATE SET role = excluded.role`
	DeleteMember    = `DELETE FROM district_members WHERE district = ? AND dev = ?`
	ListMembers     = `SELECT ` + MemberCols + ` FROM district_members ORDER BY district, dev`
	ListMembersOf   = `SELECT ` + MemberCols + ` FROM district_members WHERE district = ? ORDER BY dev`
	InsertMigration = `INSERT INTO schema_migrations (name, applied) VALUES (?,?)`
)

// Rebind numbers the ? placeholders of q for PostgreSQL: $1, $2, … in order. (No shared
// statement has a ? inside a string literal.)
func Rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// Limit is a list's page size: n, or 1000 when n is not in 1..1000.
func Limit(n int) int {
	if n <= 0 || n > 1000 {
		return 1000
	}
	return n
}
