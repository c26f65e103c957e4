package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/postgres"
	"github.com/fieldseal/fieldseal/store/postgres/pgtest"
	"github.com/fieldseal/fieldseal/store/storetest"
)

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.DSN(t))
	})
}

// Two replicas (two pools) race to advance the same anchor from the same read: exactly
// one wins, and the loser leaves nothing behind.
func TestTwoReplicasCompareAndSet(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	if errs := a.Commit(ctx, []*store.Change{{Device: storetest.NewDevice("m-1"), Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	for round := range 20 {
		da, err := a.GetDevice(ctx, "m-1")
		if err != nil {
			t.Fatal(err)
		}
		db, err := b.GetDevice(ctx, "m-1")
		if err != nil {
			t.Fatal(err)
		}
		if da.Version != db.Version {
			t.Fatalf("replicas read versions %d and %d", da.Version, db.Version)
		}
		n := da.AnchorN
		start := make(chan struct{})
		var wg sync.WaitGroup
		res := make([]error, 2)
		for i, st := range []*postgres.Store{a, b} {
			d := []*store.Device{da, db}[i].Clone()
			d.AnchorN = n + uint64(i) + 1
			ch := &store.Change{Device: d,
				Events: []store.Event{{Dev: "m-1", Epoch: 1, N: d.AnchorN + 1000*uint64(round), Type: 2, Payload: []byte{0xa0}, Tag: make([]byte, 16), Head: make([]byte, 32), Received: time.Now()}},
				Audits: []store.Audit{{At: time.Now(), Actor: fmt.Sprintf("replica-%d", i), Kind: "race", Dev: "m-1"}}}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i] = st.Commit(ctx, []*store.Change{ch})[0]
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for i, err := range res {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("round %d: both replicas won", round)
				}
				won = i
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: replica %d: %v", round, i, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no replica won: %v", round, res)
		}
		got, _ := b.GetDevice(ctx, "m-1")
		if got.Version != da.Version+1 || got.AnchorN != n+uint64(won)+1 {
			t.Fatalf("round %d: winner %d, row %+v", round, won, got)
		}
		ev, _ := a.ListEvents(ctx, store.Page{Dev: "m-1", AfterN: uint64(1000 * round), Limit: 1000})
		if len(ev) != 1 || ev[0].N != got.AnchorN+1000*uint64(round) {
			t.Fatalf("round %d: events %+v", round, ev)
		}
	}
	au, _ := a.ListAudit(ctx, store.Page{Dev: "m-1"})
	if len(au) != 20 {
		t.Fatalf("%d audit records for 20 won races", len(au))
	}
}

// Replicas starting together all find the schema migrated, once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	files, _ := filepath.Glob("migrations/*.sql")
	var n int
	if err := c.QueryRow(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(files) || n == 0 {
		t.Fatalf("schema_migrations: %d rows, want one per migration (%d), %v", n, len(files), err)
	}
}

func TestTimes(t *testing.T) {
	s := open(t, pgtest.DSN(t))
	ctx := context.Background()
	d := storetest.NewDevice("m-1")
	d.StateSince = time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	if errs := s.Commit(ctx, []*store.Change{{Device: d, Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	got, _ := s.GetDevice(ctx, "m-1")
	if want := d.StateSince.Truncate(time.Microsecond).UTC(); got.StateSince != want {
		t.Fatalf("state_since %v, want %v", got.StateSince, want)
	}
	if got.LastSeen != (time.Time{}) {
		t.Fatalf("zero last_seen came back as %v", got.LastSeen)
	}
}

// A server restart or failover kills every connection; the store notices on next use and
// carries on with new ones, without the caller seeing an error.
func TestReconnect(t *testing.T) {
	dsn := pgtest.DSN(t)
	app := "fs_reconnect_" + fmt.Sprint(time.Now().UnixNano())
	s := open(t, dsn+"&application_name="+app)
	ctx := context.Background()
	if errs := s.Commit(ctx, []*store.Change{{Device: storetest.NewDevice("m-1"), Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	kill := func() {
		t.Helper()
		var n int
		if err := admin.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil || n == 0 {
			t.Fatalf("terminated %d connections: %v", n, err)
		}
		time.Sleep(50 * time.Millisecond) // let the terminations land
	}
	kill()
	d, err := s.GetDevice(ctx, "m-1")
	if err != nil {
		t.Fatalf("read after the connections died: %v", err)
	}
	kill()
	d.AnchorN = 1
	if err := s.Commit(ctx, []*store.Change{{Device: d}})[0]; err != nil {
		t.Fatalf("commit after the connections died: %v", err)
	}
	if got, _ := s.GetDevice(ctx, "m-1"); got.Version != 2 {
		t.Fatalf("version %d", got.Version)
	}
}

// A batch larger than the server's default group (1024) with several entries per report
// goes through in one pipeline: sending thousands of statements before reading any answer
// must not stall on full socket buffers.
func TestLargeBatch(t *testing.T) {
	s := open(t, pgtest.DSN(t))
	ctx := context.Background()
	var batch []*store.Change
	for i := range 2048 {
		d := storetest.NewDevice(fmt.Sprintf("m-%04d", i))
		c := &store.Change{Device: d, Create: true, Audits: []store.Audit{{At: time.Now(), Actor: "test", Kind: "provision", Dev: d.ID, Detail: strings.Repeat("x", 200)}}}
		for n := uint64(1); n <= 4; n++ {
			c.Events = append(c.Events, store.Event{Dev: d.ID, Epoch: 1, N: n, Type: 2, Payload: make([]byte, 64), Tag: make([]byte, 16), Head: make([]byte, 32), Received: time.Now()})
		}
		batch = append(batch, c)
	}
	for i, err := range s.Commit(ctx, batch) {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	if ev, err := s.ListEvents(ctx, store.Page{Dev: "m-2047"}); err != nil || len(ev) != 4 {
		t.Fatalf("events %v %v", ev, err)
	}
}

// An error of the database rather than of one change (here a statement timeout while a
// row is locked elsewhere) fails the whole batch at once: nothing is applied and the
// other changes do not each wait for their own timeout.
func TestStatementTimeoutFailsBatch(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := open(t, dsn+"&statement_timeout=300ms")
	ctx := context.Background()
	tok := make([]byte, 16)
	if err := s.Commit(ctx, []*store.Change{{Tokens: []store.Token{{ID: tok, Dev: "m-1", Epoch: 1, Action: "clear", Sealed: []byte("x"), Issued: time.Now(), Expires: time.Now().Add(time.Hour)}}}})[0]; err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM tokens WHERE id = $1 FOR UPDATE`, tok); err != nil {
		t.Fatal(err)
	}
	var batch []*store.Change
	for i := range 5 {
		c := &store.Change{Audits: []store.Audit{{At: time.Now(), Actor: "test", Kind: fmt.Sprint(i)}}}
		if i == 2 {
			c.UsedTokens = [][]byte{tok}
		}
		batch = append(batch, c)
	}
	start := time.Now()
	errs := s.Commit(ctx, batch)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("batch took %v", d)
	}
	for i, err := range errs {
		if err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("change %d: %v", i, err)
		}
	}
	if au, _ := s.ListAudit(ctx, store.Page{}); len(au) != 0 {
		t.Fatalf("%d audit records of a failed batch", len(au))
	}
}

// PostgreSQL filters overdue devices itself, exactly as DeviceFilter.Overdue decides (the
// suite accepts a superset).
func TestOverdueExact(t *testing.T) {
	s := open(t, pgtest.DSN(t))
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f := store.DeviceFilter{OverdueAt: at, Missed: 3, DefaultInterval: 15 * time.Minute}
	var want []string
	for i, c := range []struct {
		seen     time.Duration // before at
		interval uint32
	}{{0, 60}, {2 * time.Minute, 60}, {3 * time.Minute, 60}, {3*time.Minute + time.Microsecond, 60}, {40 * time.Minute, 0}, {50 * time.Minute, 0}, {30 * 24 * time.Hour, 86400}} {
		d := storetest.NewDevice(fmt.Sprintf("m-%d", i))
		d.ReportInterval = c.interval
		if c.seen > 0 {
			d.LastSeen = at.Add(-c.seen)
		}
		if f.Overdue(d) {
			want = append(want, d.ID)
		}
		if err := s.Commit(ctx, []*store.Change{{Device: d, Create: true}})[0]; err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListDevices(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		ids = append(ids, d.ID)
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) || len(want) != 3 {
		t.Fatalf("overdue %v, want %v", ids, want)
	}
	if got, _ := s.ListDevices(ctx, store.DeviceFilter{OverdueAt: at, Missed: 3, DefaultInterval: 15 * time.Minute, Limit: 1}); len(got) != 1 {
		t.Fatalf("limit: %d devices", len(got))
	}
}

// A database made before migration 004 (no DevEUI column) is upgraded in place at open: its
// devices keep their rows, with no DevEUI, and DevEUIs can be set from then on.
func TestUpgradeAddsDevEUI(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if errs := s.Commit(ctx, []*store.Change{{Device: storetest.NewDevice("m-1"), Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	s.Close()
	c, err := pgx.Connect(ctx, dsn) // back to the schema of migrations 001–003
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP INDEX devices_dev_eui`, `ALTER TABLE devices DROP COLUMN dev_eui`, `DELETE FROM schema_migrations WHERE name = 'migrations/004_dev_eui.sql'`} {
		if tag, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		} else if tag.Delete() && tag.RowsAffected() != 1 {
			t.Fatalf("%s: %d rows", q, tag.RowsAffected())
		}
	}
	c.Close(ctx)
	s = open(t, dsn)
	d, err := s.GetDevice(ctx, "m-1")
	if err != nil || d.DevEUI != "" || d.Product != "watermeter" || d.Epoch != 1 {
		t.Fatalf("after the upgrade: %+v, %v", d, err)
	}
	m2 := storetest.NewDevice("m-2")
	m2.DevEUI = "70b3d57ed0000001"
	if errs := s.Commit(ctx, []*store.Change{{Device: m2, Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if d, err := s.DeviceByEUI(ctx, m2.DevEUI); err != nil || d.ID != "m-2" {
		t.Fatalf("DeviceByEUI after the upgrade: %+v, %v", d, err)
	}
}
