// Package pgtest gives tests a PostgreSQL database of their own: the server named by
// FIELDSEAL_TEST_POSTGRES (default: local, user postgres, else root, database test),
// checked with internal/testenv so that a missing server skips locally and fails under
// CI=true, and a fresh schema per call, dropped when the test ends, so parallel runs and
// reruns never meet.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

// DefaultDSN is used when FIELDSEAL_TEST_POSTGRES is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseDSN returns the DSN of the test server, or skips/fails as testenv says.
func BaseDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("FIELDSEAL_TEST_POSTGRES")
	explicit := dsn != ""
	if !explicit {
		dsn = DefaultDSN
	}
	addr := "127.0.0.1:5432"
	if u, err := url.Parse(dsn); err == nil && u.Host != "" {
		addr = u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "5432")
		}
	}
	testenv.Service(t, "FIELDSEAL_TEST_POSTGRES_ADDR", addr, "PostgreSQL")
	try := []string{dsn}
	if !explicit {
		try = append(try, strings.Replace(dsn, "//postgres@", "//root@", 1))
	}
	var errs []error
	for _, d := range try {
		c, err := pgx.Connect(context.Background(), d)
		if err == nil {
			c.Close(context.Background())
			return d
		}
		errs = append(errs, err)
	}
	testenv.SkipOrFail(t, fmt.Sprintf("PostgreSQL at %s refuses the test login (set FIELDSEAL_TEST_POSTGRES): %v", addr, errors.Join(errs...)))
	return ""
}

// DSN creates an empty schema fs_test_<random>, dropped when the test ends, and returns a
// DSN whose every connection works in it (search_path).
func DSN(t testing.TB) string {
	t.Helper()
	dsn := BaseDSN(t)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "fs_test_" + hex.EncodeToString(b)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(dsn, schema)
}

// WithSearchPath returns dsn (URL or key=value) with search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
