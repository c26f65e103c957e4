// Package storeurl opens the store.Store a URL names, so the server can be pointed at
// SQLite (the default) or at a PostgreSQL database shared by several replicas with one
// flag.
package storeurl

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/postgres"
	"github.com/fieldseal/fieldseal/store/sqlite"
)

// DefaultFile is the SQLite file in the data folder when the URL names none.
const DefaultFile = "fieldseal.db"

// Usage describes the accepted URLs, for flag help.
const Usage = `storage: "sqlite:" (default: <data>/` + DefaultFile + `), "sqlite:/path/to/file.db", or "postgres://user@host:5432/db?sslmode=verify-full"`

// Open opens the store named by rawURL:
//
//	""  or "sqlite:"         SQLite in dataDir/fieldseal.db (the folder is created)
//	"sqlite:/path/file.db"   that SQLite file ("sqlite:///path/file.db" too; a relative
//	                         path is relative to the working directory)
//	"postgres://…", "postgresql://…"
//	                         PostgreSQL; migrations are applied before Open returns
//
// The caller closes the store.
func Open(ctx context.Context, rawURL, dataDir string) (store.Store, error) {
	switch {
	case rawURL == "" || rawURL == "sqlite:" || rawURL == "sqlite://":
		if dataDir == "" {
			return nil, fmt.Errorf("store: sqlite needs a data folder")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return openSQLite(filepath.Join(dataDir, DefaultFile))
	case strings.HasPrefix(rawURL, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "//") // sqlite:///abs/path too
		return openSQLite(path)
	case strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://"):
		st, err := postgres.Open(ctx, rawURL)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", Redact(rawURL), err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("store: unknown URL %q; %s", Redact(rawURL), Usage)
}

func openSQLite(path string) (store.Store, error) {
	st, err := sqlite.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

// Redact returns rawURL with any password replaced by "xxxxx", for logs.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		if strings.Contains(rawURL, "@") || strings.Contains(rawURL, "password") {
			return "(unparsable URL with credentials)"
		}
		return rawURL
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
