package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/fieldseal/fieldseal/store"
)

// testDevEUI: a DevEUI is set at provisioning, names one device (a second device with it
// is refused, leaving nothing behind), is found by DeviceByEUI, survives updates, and is
// kept or changed by re-provisioning.
func testDevEUI(t *testing.T, s store.Store) {
	ctx := context.Background()
	const a, b = "70b3d57ed0000001", "70b3d57ed0000002"
	m1 := NewDevice("m-1")
	m1.DevEUI = a
	if err := commit1(t, s, &store.Change{Device: m1, Create: true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"m-2", "m-3"} { // any number of devices without one
		if err := commit1(t, s, &store.Change{Device: NewDevice(id), Create: true}); err != nil {
			t.Fatalf("%s without a DevEUI: %v", id, err)
		}
	}
	byEUI := func(eui, want string) {
		t.Helper()
		d, err := s.DeviceByEUI(ctx, eui)
		if want == "" {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("DeviceByEUI(%s): %v, %v; want ErrNotFound", eui, d, err)
			}
			return
		}
		if err != nil || d.ID != want || d.DevEUI != eui {
			t.Fatalf("DeviceByEUI(%s): %+v, %v; want %s", eui, d, err, want)
		}
	}
	byEUI(a, "m-1")
	byEUI(b, "")
	if d, err := s.GetDevice(ctx, "m-2"); err != nil || d.DevEUI != "" {
		t.Fatalf("m-2: %+v, %v", d, err)
	}

	// a second device with the same DevEUI: refused, in a batch whose other change applies
	dup := NewDevice("m-4")
	dup.DevEUI = a
	errs := s.Commit(ctx, []*store.Change{{Device: dup, Create: true}, {Device: NewDevice("m-5"), Create: true}})
	if !errors.Is(errs[0], store.ErrConflict) || errs[1] != nil {
		t.Fatalf("duplicate DevEUI: %v", errs)
	}
	if _, err := s.GetDevice(ctx, "m-4"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused device was stored: %v", err)
	}
	// nor can an update take another device's DevEUI
	m2, _ := s.GetDevice(ctx, "m-2")
	was := m2.Clone()
	m2.DevEUI = a
	if err := commit1(t, s, &store.Change{Device: m2, Was: was}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update to a taken DevEUI: %v", err)
	}

	// a routine update (only some columns written) keeps it
	cur, _ := s.GetDevice(ctx, "m-1")
	was = cur.Clone()
	cur.LastRSeq, cur.AnchorN = 3, 2
	if err := commit1(t, s, &store.Change{Device: cur, Was: was}); err != nil {
		t.Fatal(err)
	}
	byEUI(a, "m-1")

	// re-provisioning keeps it, or changes it (freeing the old one)
	re := NewDevice("m-1")
	re.Epoch, re.DevEUI = 2, a
	if err := commit1(t, s, &store.Change{Device: re, Create: true}); err != nil {
		t.Fatal(err)
	}
	byEUI(a, "m-1")
	re = NewDevice("m-1")
	re.Epoch, re.DevEUI = 3, b
	if err := commit1(t, s, &store.Change{Device: re, Create: true}); err != nil {
		t.Fatal(err)
	}
	byEUI(b, "m-1")
	byEUI(a, "")
	dup = NewDevice("m-4")
	dup.DevEUI = a
	if err := commit1(t, s, &store.Change{Device: dup, Create: true}); err != nil {
		t.Fatalf("a freed DevEUI: %v", err)
	}
	byEUI(a, "m-4")
}
