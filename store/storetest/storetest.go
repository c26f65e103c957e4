// Package storetest is the conformance suite every store.Store backend runs:
// storetest.Run(t, newStore). It uses only the interface, so the SQLite and PostgreSQL
// backends are held to the same behaviour.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/store"
)

// Run runs the suite. newStore returns an empty store; the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"DeviceCreateGet", testDeviceCreateGet},
		{"DeviceCompareAndSet", testDeviceCAS},
		{"WasHintSameRow", testWasHintSameRow},
		{"WasHintBatch", testWasHintBatch},
		{"WasHintCompareAndSet", testWasHintCAS},
		{"OverdueDevices", testOverdue},
		{"Reprovision", testReprovision},
		{"StaleEpochLoses", testStaleEpochLoses},
		{"BatchPartialConflict", testBatchPartialConflict},
		{"BatchManyConflicts", testBatchManyConflicts},
		{"ConcurrentCommits", testConcurrentCommits},
		{"Manifests", testManifests},
		{"Events", testEvents},
		{"AuditAlerts", testAuditAlerts},
		{"Tokens", testTokens},
		{"Visits", testVisits},
		{"APITokens", testAPITokens},
		{"QueryDevices", testQueryDevices},
		{"Districts", testDistricts},
		{"DevEUI", testDevEUI},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			defer s.Close()
			tc.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// NewDevice returns a device row as provisioning would create it.
func NewDevice(id string) *store.Device {
	return &store.Device{ID: id, Product: "watermeter", Epoch: 1, UplinkKey: bytes.Repeat([]byte{1}, 32), DownlinkKey: bytes.Repeat([]byte{2}, 32),
		State: store.StateProvisioned, StateSince: t0, AnchorHead: bytes.Repeat([]byte{3}, 32), AnchorKey: bytes.Repeat([]byte{4}, 32),
		ReportInterval: 900, Created: t0}
}

func commit1(t *testing.T, s store.Store, c *store.Change) error {
	t.Helper()
	errs := s.Commit(context.Background(), []*store.Change{c})
	if len(errs) != 1 {
		t.Fatalf("Commit returned %d errors for 1 change", len(errs))
	}
	return errs[0]
}

func testDeviceCreateGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	d := NewDevice("m-1")
	if err := commit1(t, s, &store.Change{Device: d, Create: true}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDevice(ctx, "m-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Product != "watermeter" || !bytes.Equal(got.UplinkKey, d.UplinkKey) || !got.StateSince.Equal(t0) || got.ReportInterval != 900 {
		t.Fatalf("got %+v", got)
	}
	if _, err := s.GetDevice(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing device: %v", err)
	}
	if err := commit1(t, s, &store.Change{Device: d, Create: true}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate create: %v", err)
	}
	d2 := NewDevice("m-2")
	d2.State = store.StateTampered
	if err := commit1(t, s, &store.Change{Device: d2, Create: true}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListDevices(ctx, store.DeviceFilter{State: store.StateTampered})
	if err != nil || len(list) != 1 || list[0].ID != "m-2" {
		t.Fatalf("list tampered: %v %v", list, err)
	}
	counts, err := s.CountDevices(ctx)
	if err != nil || counts[store.StateTampered] != 1 || counts[store.StateProvisioned] != 1 {
		t.Fatalf("counts %v %v", counts, err)
	}
}

func testDeviceCAS(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := commit1(t, s, &store.Change{Device: NewDevice("m-1"), Create: true}); err != nil {
		t.Fatal(err)
	}
	a, _ := s.GetDevice(ctx, "m-1")
	b, _ := s.GetDevice(ctx, "m-1")
	a.AnchorN, a.LastRSeq, a.State = 5, 1, store.StateTrusted
	a.LastAck = []byte("ack")
	if err := commit1(t, s, &store.Change{Device: a, Audits: []store.Audit{{At: t0, Actor: "pipeline", Kind: "transition", Dev: "m-1"}}}); err != nil {
		t.Fatal(err)
	}
	b.AnchorN = 3
	if err := commit1(t, s, &store.Change{Device: b, Audits: []store.Audit{{At: t0, Actor: "x", Kind: "must-not-exist", Dev: "m-1"}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale CAS: %v", err)
	}
	got, _ := s.GetDevice(ctx, "m-1")
	if got.AnchorN != 5 || got.Version != 2 || string(got.LastAck) != "ack" {
		t.Fatalf("after CAS: %+v", got)
	}
	audits, _ := s.ListAudit(ctx, store.Page{Dev: "m-1"})
	for _, a := range audits {
		if a.Kind == "must-not-exist" {
			t.Fatal("a change that lost its compare-and-set left an audit record")
		}
	}
}

func testReprovision(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := commit1(t, s, &store.Change{Device: NewDevice("m-1"), Create: true}); err != nil {
		t.Fatal(err)
	}
	d := NewDevice("m-1")
	d.Epoch = 2
	d.UplinkKey = bytes.Repeat([]byte{9}, 32)
	if err := commit1(t, s, &store.Change{Device: d, Create: true}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetDevice(ctx, "m-1")
	if got.Epoch != 2 || got.UplinkKey[0] != 9 {
		t.Fatalf("reprovisioned: %+v", got)
	}
	d.Epoch = 2
	if err := commit1(t, s, &store.Change{Device: d, Create: true}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same-epoch reprovision: %v", err)
	}
}

// A writer still holding the previous epoch's row must not overwrite a re-provisioned
// device, although both rows are at version 1.
func testStaleEpochLoses(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := commit1(t, s, &store.Change{Device: NewDevice("m-1"), Create: true}); err != nil {
		t.Fatal(err)
	}
	stale, err := s.GetDevice(ctx, "m-1")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDevice("m-1")
	d.Epoch = 2
	d.UplinkKey = bytes.Repeat([]byte{9}, 32)
	if err := commit1(t, s, &store.Change{Device: d, Create: true}); err != nil {
		t.Fatal(err)
	}
	if stale.Version != 1 {
		t.Fatalf("stale row at version %d, want 1", stale.Version)
	}
	stale.AnchorN = 7
	if err := commit1(t, s, &store.Change{Device: stale}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale epoch write: %v", err)
	}
	got, err := s.GetDevice(ctx, "m-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != 2 || got.Version != 1 || got.AnchorN != 0 || !bytes.Equal(got.UplinkKey, d.UplinkKey) {
		t.Fatalf("row %+v", got)
	}
}

func testBatchPartialConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	var cs []*store.Change
	for i := 0; i < 3; i++ {
		cs = append(cs, &store.Change{Device: NewDevice(fmt.Sprintf("m-%d", i)), Create: true})
	}
	for i, err := range s.Commit(ctx, cs) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	var batch []*store.Change
	for i := 0; i < 3; i++ {
		d, _ := s.GetDevice(ctx, fmt.Sprintf("m-%d", i))
		d.AnchorN = 10
		if i == 1 {
			d.Version = 99 // stale
		}
		batch = append(batch, &store.Change{Device: d, Events: []store.Event{{Dev: d.ID, Epoch: 1, N: 10, Type: 2, Payload: []byte{0xa0}, Tag: make([]byte, 16), Head: make([]byte, 32), Received: t0}}})
	}
	errs := s.Commit(ctx, batch)
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], store.ErrConflict) {
		t.Fatalf("errs %v", errs)
	}
	if ev, _ := s.ListEvents(ctx, store.Page{Dev: "m-1"}); len(ev) != 0 {
		t.Fatalf("conflicting change stored events: %v", ev)
	}
	if ev, _ := s.ListEvents(ctx, store.Page{Dev: "m-2"}); len(ev) != 1 {
		t.Fatalf("events of m-2: %v", ev)
	}
}

// A large batch with several failures in it: each failing change is skipped alone and
// every other change, before and after, is applied.
func testBatchManyConflicts(t *testing.T, s store.Store) {
	ctx := context.Background()
	var creates []*store.Change
	for i := range 300 {
		creates = append(creates, &store.Change{Device: NewDevice(fmt.Sprintf("m-%03d", i)), Create: true})
	}
	for i, err := range s.Commit(ctx, creates) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	bad := map[int]bool{0: true, 7: true, 8: true, 150: true, 299: true}
	var batch []*store.Change
	for i := range 300 {
		d := creates[i].Device.Clone()
		d.Version = 1
		d.AnchorN = 1
		c := &store.Change{Device: d, Events: []store.Event{{Dev: d.ID, Epoch: 1, N: 1, Type: 2, Payload: []byte{1}, Tag: []byte{2}, Head: []byte{3}, Received: time.Now()}}}
		switch {
		case i == 8: // a duplicate event, not a stale version
			c.Events = append(c.Events, c.Events[0])
		case bad[i]:
			d.Version = 5
		}
		batch = append(batch, c)
	}
	errs := s.Commit(ctx, batch)
	for i, err := range errs {
		if bad[i] != errors.Is(err, store.ErrConflict) || (!bad[i] && err != nil) {
			t.Fatalf("change %d: %v", i, err)
		}
		ev, _ := s.ListEvents(ctx, store.Page{Dev: batch[i].Device.ID})
		d, _ := s.GetDevice(ctx, batch[i].Device.ID)
		if bad[i] != (len(ev) == 0) || bad[i] != (d.Version == 1) {
			t.Fatalf("change %d: %d events, version %d", i, len(ev), d.Version)
		}
	}
}

// Times come back in UTC at microsecond precision; the zero time stays zero.
func testConcurrentCommits(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := commit1(t, s, &store.Change{Device: NewDevice("m-1"), Create: true}); err != nil {
		t.Fatal(err)
	}
	// Many writers race to advance the same anchor from the same read: exactly one wins.
	d, _ := s.GetDevice(ctx, "m-1")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := d.Clone()
			c.AnchorN = uint64(i + 1)
			if errs := s.Commit(ctx, []*store.Change{{Device: c}}); errs[0] == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d writers won the same compare-and-set", wins)
	}
}

func testManifests(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.CurrentManifest(ctx, "wm"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no manifest: %v", err)
	}
	for _, v := range []uint64{1, 3, 2} {
		if err := s.PutManifest(ctx, &store.Manifest{Product: "wm", Version: v, Root: []byte{byte(v)}, Signed: []byte("s"), Created: t0, ReportInterval: 60}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutManifest(ctx, &store.Manifest{Product: "wm", Version: 2, Root: []byte{2}, Signed: []byte("s"), Created: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate manifest: %v", err)
	}
	m, err := s.CurrentManifest(ctx, "wm")
	if err != nil || m.Version != 3 || m.ReportInterval != 60 {
		t.Fatalf("current %+v %v", m, err)
	}
	m, err = s.GetManifest(ctx, "wm", 2)
	if err != nil || m.Root[0] != 2 {
		t.Fatalf("get %+v %v", m, err)
	}
	all, _ := s.ListManifests(ctx)
	if len(all) != 3 {
		t.Fatalf("list %d", len(all))
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	var evs []store.Event
	for n := uint64(1); n <= 5; n++ {
		evs = append(evs, store.Event{Dev: "m-1", Epoch: 1, N: n, T: 100 + n, Type: 4, Tamper: true, Payload: []byte{0xa0}, Decoded: `{"source":"irq"}`, Tag: make([]byte, 16), Head: bytes.Repeat([]byte{byte(n)}, 32), Received: t0})
	}
	if err := commit1(t, s, &store.Change{Events: evs}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListEvents(ctx, store.Page{Dev: "m-1", AfterN: 2, Limit: 2})
	if err != nil || len(got) != 2 || got[0].N != 3 || !got[0].Tamper || got[0].TypeName != "cover-open" || got[0].Decoded == "" {
		t.Fatalf("events %+v %v", got, err)
	}
	h, err := s.EventHead(ctx, "m-1", 1, 4)
	if err != nil || h[0] != 4 {
		t.Fatalf("head %x %v", h, err)
	}
	if _, err := s.EventHead(ctx, "m-1", 1, 9); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing head: %v", err)
	}
	if err := commit1(t, s, &store.Change{Events: evs[:1]}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate event: %v", err)
	}
}

func testAuditAlerts(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := s.AddAudit(ctx, store.Audit{At: t0, Actor: "pipeline", Kind: "rejection", Dev: "m-1", Reason: "replay", Detail: "{}"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := commit1(t, s, &store.Change{Alerts: []store.Alert{{At: t0, Dev: "m-1", Kind: "tampered", Reason: "cover-open"}, {At: t0, Dev: "m-2", Kind: "silent", Reason: "silent"}}}); err != nil {
		t.Fatal(err)
	}
	au, err := s.ListAudit(ctx, store.Page{Dev: "m-1"})
	if err != nil || len(au) != 3 || au[0].ID < au[2].ID || au[0].Reason != "replay" {
		t.Fatalf("audit %+v %v", au, err)
	}
	// Newest first, paged by BeforeID: the next page starts below the last id seen.
	older, err := s.ListAudit(ctx, store.Page{Dev: "m-1", BeforeID: au[0].ID, Limit: 1})
	if err != nil || len(older) != 1 || older[0].ID != au[1].ID {
		t.Fatalf("audit page below %d: %+v %v", au[0].ID, older, err)
	}
	al, err := s.ListAlerts(ctx, store.Page{}, true)
	if err != nil || len(al) != 2 {
		t.Fatalf("alerts %+v %v", al, err)
	}
	if al[0].Dev != "m-2" || al[1].Dev != "m-1" {
		t.Fatalf("alerts not newest first: %+v", al)
	}
	if page, err := s.ListAlerts(ctx, store.Page{BeforeID: al[0].ID}, true); err != nil || len(page) != 1 || page[0].ID != al[1].ID {
		t.Fatalf("alerts below %d: %+v %v", al[0].ID, page, err)
	}
	if err := s.AckAlert(ctx, al[1].ID, "op", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.AckAlert(ctx, al[1].ID, "op", t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("double ack: %v", err)
	}
	if err := s.AckAlert(ctx, 987654, "op", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown alert: %v", err)
	}
	al, _ = s.ListAlerts(ctx, store.Page{}, true)
	if len(al) != 1 {
		t.Fatalf("unacked after ack: %d", len(al))
	}
	al, _ = s.ListAlerts(ctx, store.Page{Dev: "m-1"}, false)
	if len(al) != 1 || al[0].AckedBy != "op" {
		t.Fatalf("acked alert: %+v", al)
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	id := bytes.Repeat([]byte{7}, 16)
	tok := store.Token{ID: id, Dev: "m-1", Epoch: 1, Action: "service", Sealed: []byte("sealed"), Issued: t0, Expires: t0.Add(time.Hour), Window: 600}
	old := store.Token{ID: bytes.Repeat([]byte{8}, 16), Dev: "m-1", Epoch: 1, Action: "clear", Sealed: []byte("x"), Issued: t0, Expires: t0.Add(time.Minute)}
	if err := commit1(t, s, &store.Change{Tokens: []store.Token{tok, old}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.PendingTokens(ctx, "m-1", 1, t0.Add(30*time.Minute))
	if err != nil || len(p) != 1 || p[0].Window != 600 || string(p[0].Sealed) != "sealed" {
		t.Fatalf("pending %+v %v", p, err)
	}
	if err := commit1(t, s, &store.Change{UsedTokens: [][]byte{id}}); err != nil {
		t.Fatal(err)
	}
	if err := commit1(t, s, &store.Change{UsedTokens: [][]byte{id}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("token used twice: %v", err)
	}
	got, err := s.GetToken(ctx, id)
	if err != nil || !got.Used {
		t.Fatalf("token %+v %v", got, err)
	}
	if p, _ := s.PendingTokens(ctx, "m-1", 1, t0); len(p) != 1 || p[0].Action != "clear" {
		t.Fatalf("pending after use %+v", p)
	}
}

func testVisits(t *testing.T, s store.Store) {
	ctx := context.Background()
	v := store.Visit{ID: "v1", Dev: "m-1", WorkOrder: "WO-7", Technician: "ann", TokenID: []byte{1}, Opened: t0}
	if err := commit1(t, s, &store.Change{Visits: []store.Visit{v}}); err != nil {
		t.Fatal(err)
	}
	if err := commit1(t, s, &store.Change{CloseVisits: []store.Visit{{ID: "v1", Closed: t0.Add(time.Hour), SealNumber: "S-123", Result: "ok"}}}); err != nil {
		t.Fatal(err)
	}
	if err := commit1(t, s, &store.Change{CloseVisits: []store.Visit{{ID: "v1", Closed: t0, Result: "again"}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("closed twice: %v", err)
	}
	got, err := s.GetVisit(ctx, "v1")
	if err != nil || got.SealNumber != "S-123" || got.Result != "ok" || got.Closed.IsZero() {
		t.Fatalf("visit %+v %v", got, err)
	}
	if list, _ := s.ListVisits(ctx, "m-1"); len(list) != 1 {
		t.Fatalf("visits %v", list)
	}
	if _, err := s.GetVisit(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing visit: %v", err)
	}
}

func testAPITokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	tok := store.APIToken{Hash: []byte("h1"), Name: "admin", Role: "admin", Created: t0}
	if err := s.PutAPIToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIToken(ctx, store.APIToken{Hash: []byte("h2"), Name: "admin", Role: "viewer", Created: t0}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	got, err := s.GetAPIToken(ctx, []byte("h1"))
	if err != nil || got.Role != "admin" {
		t.Fatalf("get %+v %v", got, err)
	}
	if _, err := s.GetAPIToken(ctx, []byte("zz")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if l, _ := s.ListAPITokens(ctx); len(l) != 1 {
		t.Fatalf("list %v", l)
	}
	if err := s.DeleteAPIToken(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAPIToken(ctx, []byte("h1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func testOverdue(t *testing.T, s store.Store) {
	ctx := context.Background()
	mk := func(id string, seen time.Time, interval uint32) {
		d := NewDevice(id)
		d.State, d.LastSeen, d.ReportInterval = store.StateTrusted, seen, interval
		if err := commit1(t, s, &store.Change{Device: d, Create: true}); err != nil {
			t.Fatal(err)
		}
	}
	mk("never", time.Time{}, 60)
	mk("fresh", t0.Add(-2*time.Minute), 60)        // 2 of 3 intervals
	mk("late", t0.Add(-4*time.Minute), 60)         // 4 > 3 intervals
	mk("default", t0.Add(-40*time.Minute), 0)      // default 15 min: 40 < 45
	mk("default-late", t0.Add(-50*time.Minute), 0) // 50 > 45
	got, err := s.ListDevices(ctx, store.DeviceFilter{State: store.StateTrusted, OverdueAt: t0, Missed: 3, DefaultInterval: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// OverdueAt is a hint (a backend may return more); Overdue is exact.
	f := store.DeviceFilter{OverdueAt: t0, Missed: 3, DefaultInterval: 15 * time.Minute}
	var ids []string
	for _, d := range got {
		if f.Overdue(d) {
			ids = append(ids, d.ID)
		}
	}
	if fmt.Sprint(ids) != "[default-late late]" {
		t.Fatalf("overdue devices %v, want [default-late late]", ids)
	}
}

// sameRow fails unless a and b hold the same values in every field but ID: times as
// instants, byte slices by content and nil-ness.
func sameRow(t *testing.T, what string, a, b *store.Device) {
	t.Helper()
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := 1; i < va.NumField(); i++ {
		name := va.Type().Field(i).Name
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if ta, ok := fa.(time.Time); ok {
			if !ta.Equal(fb.(time.Time)) {
				t.Errorf("%s: %s %v, want %v", what, name, ta, fb)
			}
			continue
		}
		if !reflect.DeepEqual(fa, fb) {
			t.Errorf("%s: %s %#v, want %#v", what, name, fa, fb)
		}
	}
}

// wasSteps are successive edits of a device row: routine reports (the hot columns), and
// each of the cold columns on its own.
var wasSteps = []struct {
	name string
	edit func(d *store.Device, i int)
}{
	{"report", func(d *store.Device, i int) {
		d.AnchorN += 3
		d.AnchorHead, d.AnchorKey = bytes.Repeat([]byte{byte(i)}, 32), bytes.Repeat([]byte{byte(i + 1)}, 32)
		d.LastRSeq++
		d.LastReportHash, d.LastAck = bytes.Repeat([]byte{byte(i + 2)}, 32), bytes.Repeat([]byte{byte(i + 3)}, 150)
		d.PrevNonce, d.Nonce = d.Nonce, bytes.Repeat([]byte{byte(i + 4)}, 16)
		d.LastSeen, d.LastDeviceTime = t0.Add(time.Duration(i)*time.Minute+1234567), uint64(1000+i)
	}},
	{"report with receipt and boot", func(d *store.Device, i int) {
		d.AnchorN++
		d.Receipt = bytes.Repeat([]byte{byte(i)}, 120)
		d.LastRSeq++
		d.LastBoot, d.RunningVersion, d.Rejections = d.LastBoot+1, 2, 0
	}},
	{"nothing but the version", func(d *store.Device, i int) {}},
	{"state", func(d *store.Device, i int) {
		d.State, d.StateSince, d.StateReason = store.StateTampered, t0.Add(time.Hour), "cover-open"
	}},
	{"product", func(d *store.Device, i int) { d.Product = "gasmeter" }},
	{"keys", func(d *store.Device, i int) {
		d.UplinkKey, d.DownlinkKey = bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32)
	}},
	{"pinned version", func(d *store.Device, i int) { d.PinnedVersion = 5 }},
	{"policy and window", func(d *store.Device, i int) {
		d.ReportInterval, d.WindowUntil, d.Rejections = 60, 99999, 4
	}},
	{"created", func(d *store.Device, i int) { d.Created = t0.Add(-time.Hour) }},
	{"bytes to nil and empty", func(d *store.Device, i int) {
		d.Receipt, d.LastAck, d.PrevNonce = nil, []byte{}, nil
	}},
	{"zero times", func(d *store.Device, i int) { d.LastSeen, d.StateSince = time.Time{}, time.Time{} }},
	{"everything", func(d *store.Device, i int) {
		d.Product, d.State, d.StateSince, d.StateReason = "watermeter", store.StateTrusted, t0.Add(2*time.Hour), "cleared"
		d.UplinkKey, d.DownlinkKey, d.PinnedVersion, d.RunningVersion = []byte{1}, []byte{2}, 0, 3
		d.AnchorN, d.AnchorHead, d.AnchorKey, d.Receipt = d.AnchorN+1, []byte{3}, []byte{4}, []byte{5}
		d.LastRSeq, d.LastReportHash, d.LastAck, d.Nonce, d.PrevNonce = d.LastRSeq+1, []byte{6}, []byte{7}, []byte{8}, []byte{9}
		d.LastSeen, d.LastDeviceTime, d.LastBoot, d.ReportInterval, d.Rejections, d.WindowUntil = t0.Add(3*time.Hour), 5, 6, 7, 8, 9
		d.Created = t0
	}},
	{"report again", func(d *store.Device, i int) {
		d.AnchorN++
		d.LastSeen = t0.Add(4 * time.Hour)
		d.Nonce, d.PrevNonce = []byte{10}, d.Nonce
	}},
}

// A change carrying Was stores exactly the row a change without it stores, whichever
// columns it changes, whether Was is the row as committed (the server's cache, with
// times finer than the backend keeps) or as read back.
func testWasHintSameRow(t *testing.T, s store.Store) {
	ctx := context.Background()
	// plain: no Was; cached: Was is the row as committed; read: Was is the row as read.
	ids := []string{"plain", "cached", "read"}
	rows := map[string]*store.Device{}
	for _, id := range ids {
		d := NewDevice(id)
		if err := commit1(t, s, &store.Change{Device: d, Create: true}); err != nil {
			t.Fatal(err)
		}
		d = d.Clone()
		d.Version = 1
		rows[id] = d
	}
	for i, step := range wasSteps {
		for _, id := range ids {
			was := rows[id]
			if id == "read" {
				var err error
				if was, err = s.GetDevice(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			nd := was.Clone()
			step.edit(nd, i)
			c := &store.Change{Device: nd}
			if id != "plain" {
				c.Was = was
			}
			if err := commit1(t, s, c); err != nil {
				t.Fatalf("%s: %s: %v", step.name, id, err)
			}
			nd = nd.Clone()
			nd.Version++
			rows[id] = nd
		}
		want, err := s.GetDevice(ctx, "plain")
		if err != nil {
			t.Fatal(err)
		}
		if want.Version != uint64(i)+2 {
			t.Fatalf("%s: version %d, want %d", step.name, want.Version, i+2)
		}
		for _, id := range ids[1:] {
			got, err := s.GetDevice(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			sameRow(t, fmt.Sprintf("%s: device %s", step.name, id), got, want)
		}
		// And the written values did arrive (times at the backend's precision).
		if want.AnchorN != rows["plain"].AnchorN || want.Product != rows["plain"].Product || want.State != rows["plain"].State ||
			!bytes.Equal(want.UplinkKey, rows["plain"].UplinkKey) || !want.Created.Equal(rows["plain"].Created) {
			t.Fatalf("%s: stored %+v, wrote %+v", step.name, want, rows["plain"])
		}
	}
}

// A batch of changes with Was, each writing a different set of columns, and one in the
// middle that lost its compare-and-set: the others store exactly what the same changes
// without Was store, that one nothing.
func testWasHintBatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := len(wasSteps)
	var creates []*store.Change
	for i := range 2 * n {
		creates = append(creates, &store.Change{Device: NewDevice(fmt.Sprintf("m-%02d", i)), Create: true})
	}
	for i, err := range s.Commit(ctx, creates) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	var batch []*store.Change
	for i := range 2 * n {
		was := creates[i].Device.Clone()
		was.Version = 1
		nd := was.Clone()
		wasSteps[i%n].edit(nd, i%n)
		c := &store.Change{Device: nd, Events: []store.Event{{Dev: nd.ID, Epoch: 1, N: 1, Type: 2, Payload: []byte{1}, Tag: []byte{2}, Head: []byte{3}, Received: t0}}}
		if i < n {
			c.Was = was // the second half is the same edits without the hint
		}
		if i == 3 {
			nd.Version, was.Version = 9, 9 // stale, hint and all
		}
		batch = append(batch, c)
	}
	errs := s.Commit(ctx, batch)
	for i, err := range errs {
		if (i == 3) != errors.Is(err, store.ErrConflict) || (i != 3 && err != nil) {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	for i := range n {
		got, err := s.GetDevice(ctx, fmt.Sprintf("m-%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			want := creates[3].Device.Clone()
			want.Version = 1
			sameRow(t, "device that lost its compare-and-set", got, want)
			continue
		}
		want, err := s.GetDevice(ctx, fmt.Sprintf("m-%02d", i+n))
		if err != nil {
			t.Fatal(err)
		}
		sameRow(t, fmt.Sprintf("%s in a batch", wasSteps[i].name), got, want)
	}
}

// Was changes nothing of the compare-and-set: a stale version or epoch still loses, and
// the loser leaves nothing behind.
func testWasHintCAS(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := commit1(t, s, &store.Change{Device: NewDevice("m-1"), Create: true}); err != nil {
		t.Fatal(err)
	}
	a, _ := s.GetDevice(ctx, "m-1")
	b, _ := s.GetDevice(ctx, "m-1")
	na := a.Clone()
	na.AnchorN, na.LastRSeq = 5, 1
	if err := commit1(t, s, &store.Change{Device: na, Was: a}); err != nil {
		t.Fatal(err)
	}
	// b read the same version: its change, hint and all, is stale now.
	nb := b.Clone()
	nb.AnchorN, nb.State = 3, store.StateSuspect
	if err := commit1(t, s, &store.Change{Device: nb, Was: b, Audits: []store.Audit{{At: t0, Actor: "x", Kind: "must-not-exist", Dev: "m-1"}}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale CAS with Was: %v", err)
	}
	got, _ := s.GetDevice(ctx, "m-1")
	if got.AnchorN != 5 || got.Version != 2 || got.State != store.StateProvisioned {
		t.Fatalf("after stale CAS with Was: %+v", got)
	}
	if audits, _ := s.ListAudit(ctx, store.Page{Dev: "m-1"}); len(audits) != 0 {
		t.Fatalf("a change that lost its compare-and-set left %d audit records", len(audits))
	}
	// A re-provisioned device restarts at version 1: a writer holding the old epoch's
	// row at version 1 loses too.
	if err := commit1(t, s, &store.Change{Device: NewDevice("m-2"), Create: true}); err != nil {
		t.Fatal(err)
	}
	stale, _ := s.GetDevice(ctx, "m-2")
	re := NewDevice("m-2")
	re.Epoch = 2
	if err := commit1(t, s, &store.Change{Device: re, Create: true}); err != nil {
		t.Fatal(err)
	}
	ns := stale.Clone()
	ns.AnchorN = 7
	if err := commit1(t, s, &store.Change{Device: ns, Was: stale}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale epoch with Was: %v", err)
	}
	if got, _ := s.GetDevice(ctx, "m-2"); got.Epoch != 2 || got.Version != 1 || got.AnchorN != 0 {
		t.Fatalf("re-provisioned row %+v", got)
	}
	// Racing writers with the hint: exactly one wins.
	d, _ := s.GetDevice(ctx, "m-2")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := d.Clone()
			c.AnchorN = uint64(i + 1)
			if errs := s.Commit(ctx, []*store.Change{{Device: c, Was: d}}); errs[0] == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d writers with Was won the same compare-and-set", wins)
	}
}
