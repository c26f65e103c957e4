package memstore_test

import (
	"errors"
	"testing"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/memstore"
	"github.com/fieldseal/fieldseal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
}

// A Was that is not the stored row would lose writes on a durable backend: memstore
// refuses it (and not as a conflict, which callers would take for a lost race).
func TestWasMustBeTheStoredRow(t *testing.T) {
	s := memstore.New()
	d := storetest.NewDevice("m-1")
	if errs := s.Commit(t.Context(), []*store.Change{{Device: d, Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	was := d.Clone()
	was.Version = 1
	was.Product = "not-what-is-stored"
	nd := was.Clone()
	nd.AnchorN = 1
	err := s.Commit(t.Context(), []*store.Change{{Device: nd, Was: was}})[0]
	if err == nil || errors.Is(err, store.ErrConflict) {
		t.Fatalf("inconsistent Was: %v", err)
	}
	if got, _ := s.GetDevice(t.Context(), "m-1"); got.Version != 1 || got.AnchorN != 0 {
		t.Fatalf("row changed: %+v", got)
	}
}
