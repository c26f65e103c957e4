package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlstore"
	"github.com/fieldseal/fieldseal/store/storetest"
)

func TestDeviceColumnsMatchFields(t *testing.T) {
	if len(sqlstore.DeviceColumns) != store.NumDeviceFields {
		t.Fatalf("%d device columns, %d fields", len(sqlstore.DeviceColumns), store.NumDeviceFields)
	}
	for f, col := range map[store.DeviceFields]string{store.FieldProduct: "product", store.FieldVersion: "version",
		store.FieldAnchorHead: "anchor_head", store.FieldLastSeen: "last_seen", store.FieldCreated: "created", store.FieldDevEUI: "dev_eui"} {
		if i := bitIndex(f); sqlstore.DeviceColumns[i] != col {
			t.Errorf("field bit %d is column %s, want %s", i, sqlstore.DeviceColumns[i], col)
		}
	}
	want := `UPDATE devices SET version=?, anchor_n=?, last_seen=? WHERE id = ? AND version = ? AND epoch = ?`
	if got := updateSQL(store.FieldVersion | store.FieldAnchorN | store.FieldLastSeen); got != want {
		t.Fatalf("updateSQL:\n%s\nwant\n%s", got, want)
	}
}

func bitIndex(f store.DeviceFields) int {
	for i := 0; ; i++ {
		if f == 1<<i {
			return i
		}
	}
}

// An update with Was prepares its column set once, for the store, after its transaction.
func TestUpdatesPreparedOnce(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "fieldseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := storetest.NewDevice("m-1")
	if errs := s.Commit(t.Context(), []*store.Change{{Device: d, Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	d.Version = 1
	for i := range 3 {
		nd := d.Clone()
		nd.AnchorN++
		if errs := s.Commit(t.Context(), []*store.Change{{Device: nd, Was: d}}); errs[0] != nil {
			t.Fatalf("commit %d: %v", i, errs[0])
		}
		nd.Version++
		d = nd
		s.mu.Lock()
		_, ok := s.updates[store.FieldVersion|store.FieldAnchorN]
		n := len(s.updates)
		s.mu.Unlock()
		if !ok || n != 1 {
			t.Fatalf("after commit %d: %d prepared updates (anchor_n's: %v)", i, n, ok)
		}
	}
	got, err := s.GetDevice(t.Context(), "m-1")
	if err != nil || got.AnchorN != 3 || got.Version != 4 {
		t.Fatalf("row %+v %v", got, err)
	}
}
