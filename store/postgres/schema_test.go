package postgres

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The two backends must keep the same schema: every SQLite migration has a PostgreSQL
// twin of the same name, with the same tables, columns and indexes. A migration added to
// one backend alone fails here.
func TestSchemaMatchesSQLite(t *testing.T) {
	lite, err := filepath.Glob(filepath.Join("..", "sqlite", "migrations", "*.sql"))
	if err != nil || len(lite) == 0 {
		t.Fatalf("no SQLite migrations: %v", err)
	}
	var liteSQL, pgSQL strings.Builder
	var liteNames, pgNames []string
	for _, p := range lite {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		liteNames = append(liteNames, filepath.Base(p))
		liteSQL.Write(b)
	}
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		pgNames = append(pgNames, e.Name())
		pgSQL.Write(b)
	}
	if !slices.Equal(liteNames, pgNames) {
		t.Fatalf("migrations differ: SQLite %v, PostgreSQL %v", liteNames, pgNames)
	}
	l, p := schemaOf(liteSQL.String()), schemaOf(pgSQL.String())
	if len(l) < 13 || len(l["table devices"]) < 20 {
		t.Fatalf("parsed too little of the SQLite schema (%d tables and indexes): fix schemaOf", len(l))
	}
	for _, k := range slices.Sorted(mapsKeys(l, p)) {
		if !slices.Equal(l[k], p[k]) {
			t.Errorf("%s: SQLite %v, PostgreSQL %v", k, l[k], p[k])
		}
	}
}

var (
	tableRe = regexp.MustCompile(`(?is)CREATE TABLE (\w+) \((.*?)\n\);`)
	indexRe = regexp.MustCompile(`(?i)CREATE INDEX (\w+) ON (\w+)\(([^)]*)\)`)
)

// schemaOf maps "table t" to its columns in order and "index i" to its table and columns.
func schemaOf(sql string) map[string][]string {
	out := map[string][]string{}
	for _, m := range tableRe.FindAllStringSubmatch(sql, -1) {
		var cols []string
		for _, line := range strings.Split(m[2], "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.EqualFold(f[0], "PRIMARY") || strings.HasPrefix(f[0], "--") {
				continue
			}
			cols = append(cols, f[0])
		}
		out["table "+m[1]] = cols
	}
	for _, m := range indexRe.FindAllStringSubmatch(sql, -1) {
		out["index "+m[1]] = append([]string{m[2]}, strings.Split(strings.ReplaceAll(m[3], " ", ""), ",")...)
	}
	return out
}

func mapsKeys(ms ...map[string][]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}
