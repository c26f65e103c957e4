package sqlite_test

import (
	"path/filepath"
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
