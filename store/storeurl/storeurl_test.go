package storeurl_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/postgres"
	"github.com/fieldseal/fieldseal/store/postgres/pgtest"
	"github.com/fieldseal/fieldseal/store/sqlite"
	"github.com/fieldseal/fieldseal/store/storetest"
	"github.com/fieldseal/fieldseal/store/storeurl"
)

func roundTrip(t *testing.T, st store.Store, id string) {
	t.Helper()
	defer st.Close()
	if errs := st.Commit(context.Background(), []*store.Change{{Device: storetest.NewDevice(id), Create: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if _, err := st.GetDevice(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

func TestSQLite(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"", "sqlite:"} {
		dir := filepath.Join(t.TempDir(), "data") // not there yet: Open creates it
		st, err := storeurl.Open(ctx, u, dir)
		if err != nil {
			t.Fatalf("%q: %v", u, err)
		}
		if _, ok := st.(*sqlite.Store); !ok {
			t.Fatalf("%q: %T", u, st)
		}
		roundTrip(t, st, "m-1")
		if _, err := os.Stat(filepath.Join(dir, storeurl.DefaultFile)); err != nil {
			t.Fatalf("%q: %v", u, err)
		}
	}
	for _, prefix := range []string{"sqlite:", "sqlite://"} {
		path := filepath.Join(t.TempDir(), "other.db")
		st, err := storeurl.Open(ctx, prefix+path, "/nonexistent-data-dir")
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, st, "m-1")
		if _, err := os.Stat(path); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnknown(t *testing.T) {
	_, err := storeurl.Open(context.Background(), "mysql://root:hunter2@db/x", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "unknown URL") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://fs:secret@db:5432/fs?sslmode=disable":     "postgres://fs:xxxxx@db:5432/fs?sslmode=disable",
		"postgres://fs@db/fs?password=secret&sslmode=require": "postgres://fs@db/fs?password=xxxxx&sslmode=require",
		"sqlite:/var/lib/fieldseal/fieldseal.db":              "sqlite:/var/lib/fieldseal/fieldseal.db",
	} {
		if got := storeurl.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	rest, ok := strings.CutPrefix(dsn, "postgres://")
	if !ok {
		t.Skipf("FIELDSEAL_TEST_POSTGRES is not a postgres:// URL")
	}
	for i, scheme := range []string{"postgres://", "postgresql://"} {
		st, err := storeurl.Open(context.Background(), scheme+rest, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.(*postgres.Store); !ok {
			t.Fatalf("%T", st)
		}
		roundTrip(t, st, fmt.Sprintf("m-%d", i))
	}
}
