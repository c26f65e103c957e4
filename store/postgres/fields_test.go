package postgres

import (
	"testing"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlstore"
)

func TestDeviceColumnsMatchFields(t *testing.T) {
	if len(sqlstore.DeviceColumns) != store.NumDeviceFields {
		t.Fatalf("%d device columns, %d fields", len(sqlstore.DeviceColumns), store.NumDeviceFields)
	}
	d := &store.Device{ID: "m-1", Product: "p", AnchorN: 7}
	args := deviceArgs(d, 9)
	if len(args) != 1+store.NumDeviceFields || args[0] != "m-1" || args[1] != "p" || args[3] != int64(9) || args[11] != int64(7) || sqlstore.DeviceColumns[10] != "anchor_n" {
		t.Fatalf("deviceArgs %v", args)
	}
	want := `WITH u AS (UPDATE devices SET version=$2, anchor_n=$3, last_seen=$4 WHERE id = $1 AND version = $5 AND epoch = $6 RETURNING 1)
SELECT fieldseal_conflict($7) WHERE NOT EXISTS (SELECT FROM u)`
	if got := updateSQL(store.FieldVersion | store.FieldAnchorN | store.FieldLastSeen); got != want {
		t.Fatalf("updateSQL:\n%s\nwant\n%s", got, want)
	}
}
