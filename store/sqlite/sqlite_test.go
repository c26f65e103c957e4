package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/sqlite"
	"github.com/fieldseal/fieldseal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "fieldseal.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldseal.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if errs := s.Commit(t.Context(), []*store.Change{{Device: storetest.NewDevice("m-1"), Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	s.Close()
	s, err = sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetDevice(t.Context(), "m-1"); err != nil {
		t.Fatal(err)
	}
}

// A database made before migration 004 (no DevEUI column) is upgraded in place at open: its
// devices keep their rows, with no DevEUI, and DevEUIs can be set from then on.
func TestUpgradeAddsDevEUI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fieldseal.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if errs := s.Commit(t.Context(), []*store.Change{{Device: storetest.NewDevice("m-1"), Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	s.Close()
	// back to the schema of migrations 001–003
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP INDEX devices_dev_eui`, `ALTER TABLE devices DROP COLUMN dev_eui`, `DELETE FROM schema_migrations WHERE name = 'migrations/004_dev_eui.sql'`} {
		if res, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		} else if n, _ := res.RowsAffected(); strings.HasPrefix(q, "DELETE") && n != 1 {
			t.Fatalf("%s: %d rows", q, n)
		}
	}
	db.Close()
	s, err = sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.GetDevice(t.Context(), "m-1")
	if err != nil || d.DevEUI != "" || d.Product != "watermeter" || d.Epoch != 1 {
		t.Fatalf("after the upgrade: %+v, %v", d, err)
	}
	m2 := storetest.NewDevice("m-2")
	m2.DevEUI = "70b3d57ed0000001"
	if errs := s.Commit(t.Context(), []*store.Change{{Device: m2, Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if d, err := s.DeviceByEUI(t.Context(), m2.DevEUI); err != nil || d.ID != "m-2" {
		t.Fatalf("DeviceByEUI after the upgrade: %+v, %v", d, err)
	}
}
