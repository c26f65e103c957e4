package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/store"
)

// testQueryDevices pages through a small fleet with every sort, direction and filter
// and compares each walk with the order and selection DeviceQuery itself defines:
// keyset pages must neither repeat nor skip a device, whatever ties the sort key has.
func testQueryDevices(t *testing.T, s store.Store) {
	ctx := context.Background()
	states := []string{store.StateTrusted, store.StateTampered, store.StateSilent, store.StateProvisioned}
	var all []*store.Device
	for i := range 40 {
		d := NewDevice(fmt.Sprintf("q-%02d", i))
		if i%10 == 3 {
			d.ID = fmt.Sprintf("p-%02d", i)
		}
		d.State = states[i%len(states)]
		if i%3 == 0 {
			d.Product = "gasmeter"
		}
		d.RunningVersion = uint64(1 + i%2)
		if i%5 != 0 { // every fifth never seen; the others share some last-seen times (ties)
			d.LastSeen = t0.Add(time.Duration(i%7) * time.Minute)
		}
		if err := commit1(t, s, &store.Change{Device: d, Create: true}); err != nil {
			t.Fatal(err)
		}
		all = append(all, d)
	}
	visits := []store.Visit{
		{ID: "qv1", Dev: "q-17", WorkOrder: "WO-4711", Technician: "ann", TokenID: []byte{1}, Opened: t0},
		{ID: "qv2", Dev: "q-22", WorkOrder: "WO-4712", Technician: "ann", TokenID: []byte{2}, Opened: t0},
	}
	if err := commit1(t, s, &store.Change{Visits: visits}); err != nil {
		t.Fatal(err)
	}
	if err := commit1(t, s, &store.Change{CloseVisits: []store.Visit{{ID: "qv2", Closed: t0, SealNumber: "SEAL-0099", Result: "ok"}}}); err != nil {
		t.Fatal(err)
	}
	visits[1].SealNumber = "SEAL-0099"

	queries := []store.DeviceQuery{
		{}, {Desc: true}, {Sort: store.SortLastSeen}, {Sort: store.SortLastSeen, Desc: true},
		{State: store.StateTampered}, {State: store.StateSilent, Sort: store.SortLastSeen},
		{State: store.StateTrusted, Sort: store.SortLastSeen, Desc: true},
		{Product: "gasmeter"}, {Product: "gasmeter", Sort: store.SortLastSeen}, {Version: 2}, {Version: 2, State: store.StateTrusted},
		{Search: "q-1"}, {Search: "p-"}, {Search: "WO-4711"}, {Search: "SEAL-0099", Sort: store.SortLastSeen}, {Search: "nothing"},
		{Search: "q-2", State: store.StateTampered, Desc: true},
	}
	for _, q := range queries {
		var want []string
		var sel []*store.Device
		for _, d := range all {
			if q.Filters(d) && q.SearchMatches(d, visits) {
				sel = append(sel, d)
			}
		}
		slices.SortFunc(sel, func(a, b *store.Device) int {
			ca, cb := store.CursorOf(a), store.CursorOf(b)
			if q.Desc {
				ca, cb = cb, ca
			}
			if q.Less(ca, cb) {
				return -1
			}
			return 1
		})
		for _, d := range sel {
			want = append(want, d.ID)
		}
		var got []string
		page := q
		page.Limit = 3
		for range 50 {
			list, err := s.QueryDevices(ctx, page)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			for _, d := range list {
				got = append(got, d.ID)
			}
			if len(list) < page.Limit {
				break
			}
			page.After = store.CursorOf(list[len(list)-1])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("query %+v:\n got %v\nwant %v", q, got, want)
		}
	}
	if got, _ := s.QueryDevices(ctx, store.DeviceQuery{Search: "WO-4711"}); len(got) != 1 || got[0].ID != "q-17" {
		t.Errorf("search by work order: %v", got)
	}
	if got, _ := s.QueryDevices(ctx, store.DeviceQuery{Limit: 5000}); len(got) != 40 {
		t.Errorf("limit 5000 (capped at 1000) gave %d of 40", len(got))
	}
}
