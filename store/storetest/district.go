package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/store"
)

func testDistricts(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.GetDistrict(ctx, "north"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDistrict of none: %v, want ErrNotFound", err)
	}
	// Members of a district that does not exist: refused, and nothing of the batch applied.
	err := s.SetDistrictMembers(ctx, []store.DistrictMember{{District: "north", Dev: "m-1", Role: store.RoleCustomer}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("members of an unknown district: %v, want ErrNotFound", err)
	}
	north := store.District{ID: "north", Name: "North", Config: []byte(`{"nrw_target_pct":12}`), Updated: t0}
	south := store.District{ID: "South-2", Name: "South", Config: []byte(`{}`), Updated: t0.Add(time.Hour)}
	for _, d := range []store.District{north, south} {
		if err := s.PutDistrict(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetDistrict(ctx, "north")
	if err != nil || !reflect.DeepEqual(*got, north) {
		t.Fatalf("GetDistrict = %+v, %v; want %+v", got, err, north)
	}
	north.Name, north.Config, north.Updated = "North DMA", []byte(`{"nrw_target_pct":10}`), t0.Add(2*time.Hour)
	if err := s.PutDistrict(ctx, north); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListDistricts(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "South-2" || !reflect.DeepEqual(all[1], north) {
		t.Fatalf("ListDistricts (bytewise by id, replaced) = %+v, %v", all, err)
	}

	// A batch naming one unknown district applies none of its rows.
	err = s.SetDistrictMembers(ctx, []store.DistrictMember{{District: "north", Dev: "m-1", Role: store.RoleCustomer}, {District: "east", Dev: "m-2", Role: store.RoleCustomer}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("batch with an unknown district: %v", err)
	}
	if ms, _ := s.ListDistrictMembers(ctx, "north"); len(ms) != 0 {
		t.Fatalf("a refused batch left members: %+v", ms)
	}
	in := []store.DistrictMember{
		{District: "north", Dev: "m-2", Role: store.RoleCustomer},
		{District: "north", Dev: "m-1", Role: store.RoleCustomer},
		{District: "north", Dev: "bulk-1", Role: store.RoleInlet},
		{District: "north", Dev: "bulk-2", Role: store.RoleOutlet},
		{District: "South-2", Dev: "bulk-2", Role: store.RoleInlet}, // the outlet of one is the inlet of the next
	}
	if err := s.SetDistrictMembers(ctx, in); err != nil {
		t.Fatal(err)
	}
	// A second import changes a role in place.
	if err := s.SetDistrictMembers(ctx, []store.DistrictMember{{District: "north", Dev: "m-2", Role: store.RoleInlet}}); err != nil {
		t.Fatal(err)
	}
	ms, err := s.ListDistrictMembers(ctx, "north")
	want := []store.DistrictMember{{District: "north", Dev: "bulk-1", Role: store.RoleInlet}, {District: "north", Dev: "bulk-2", Role: store.RoleOutlet}, {District: "north", Dev: "m-1", Role: store.RoleCustomer}, {District: "north", Dev: "m-2", Role: store.RoleInlet}}
	if err != nil || !reflect.DeepEqual(ms, want) {
		t.Fatalf("ListDistrictMembers(north) = %+v, %v; want %+v", ms, err, want)
	}
	ms, err = s.ListDistrictMembers(ctx, "")
	if err != nil || len(ms) != 5 || ms[0] != (store.DistrictMember{District: "South-2", Dev: "bulk-2", Role: store.RoleInlet}) {
		t.Fatalf("ListDistrictMembers(all) = %+v, %v", ms, err)
	}
	if err := s.RemoveDistrictMember(ctx, "north", "m-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDistrictMember(ctx, "north", "m-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing twice: %v, want ErrNotFound", err)
	}
	if ms, _ := s.ListDistrictMembers(ctx, "north"); len(ms) != 3 {
		t.Fatalf("after removal: %+v", ms)
	}
	// Replacing a district's configuration keeps its members.
	if err := s.PutDistrict(ctx, north); err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.ListDistrictMembers(ctx, "north"); len(ms) != 3 {
		t.Fatalf("PutDistrict dropped members: %+v", ms)
	}
}
