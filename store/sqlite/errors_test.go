package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/store"
)

// A full disk is an error, never a conflict: a caller retries a conflict (another writer
// won) but must stop on a full disk. SQLite's max_page_count makes the database full for
// real (SQLITE_FULL), without filling the machine's disk.
func TestFullDiskIsNotAConflict(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "fieldseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	d := &store.Device{ID: "m1", Product: "p", Epoch: 1, UplinkKey: make([]byte, 32), DownlinkKey: make([]byte, 32), State: store.StateTrusted,
		StateSince: now, AnchorHead: make([]byte, 32), AnchorKey: make([]byte, 32), Created: now}
	if errs := s.Commit(ctx, []*store.Change{{Device: d, Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	d.Version = 1
	var pages int64
	if err := s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA max_page_count = `+itoa(pages)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<10)
	ev := store.Event{Dev: "m1", Epoch: 1, N: 1, Type: 13, Payload: big, Tag: make([]byte, 16), Head: make([]byte, 32), Received: now}
	errs := s.Commit(ctx, []*store.Change{{Device: d.Clone(), Events: []store.Event{ev}}})
	if errs[0] == nil {
		t.Fatal("a write beyond max_page_count succeeded")
	}
	if errors.Is(errs[0], store.ErrConflict) {
		t.Fatalf("a full database reported as a conflict: %v", errs[0])
	}
	if !strings.Contains(errs[0].Error(), "full") {
		t.Fatalf("error does not say the database is full: %v", errs[0])
	}
	var se interface{ Code() int }
	if !errors.As(errs[0], &se) || se.Code()&0xff != resultFull {
		t.Fatalf("error does not carry SQLITE_FULL: %v", errs[0])
	}
	// A duplicate key is the conflict.
	if _, err := s.w.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	ev.Payload = []byte{0xa0}
	if errs := s.Commit(ctx, []*store.Change{{Device: d.Clone(), Events: []store.Event{ev}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	d.Version = 2
	if errs := s.Commit(ctx, []*store.Change{{Device: d.Clone(), Events: []store.Event{ev}}}); !errors.Is(errs[0], store.ErrConflict) {
		t.Fatalf("a duplicate event: %v, want a conflict", errs[0])
	}
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
