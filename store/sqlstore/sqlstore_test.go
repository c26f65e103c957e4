package sqlstore

import (
	"strings"
	"testing"
)

func TestRebindNumbersPlaceholdersInOrder(t *testing.T) {
	for q, want := range map[string]string{
		`SELECT 1`: `SELECT 1`,
		`DELETE FROM district_members WHERE district = ? AND dev = ?`: `DELETE FROM district_members WHERE district = $1 AND dev = $2`,
		InsertVisit: `INSERT INTO visits (` + VisitCols + `) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
	} {
		if got := Rebind(q); got != want {
			t.Errorf("Rebind(%q) = %q, want %q", q, got, want)
		}
	}
	// Eleven and more: two-digit numbers, no placeholder left behind.
	if got := Rebind(InsertDevice); !strings.HasSuffix(got, `$27,$28)`) || strings.Contains(got, "?") {
		t.Errorf("Rebind(InsertDevice) = …%s", got[len(got)-40:])
	}
}

// Every INSERT has one placeholder per column it names.
func TestInsertsHaveOnePlaceholderPerColumn(t *testing.T) {
	for _, q := range []string{InsertDevice, InsertEvent, InsertAudit, InsertAlert, InsertToken, InsertVisit, InsertManifest, InsertAPIToken, PutDistrict, PutMember, InsertMigration} {
		cols := q[strings.Index(q, "(")+1 : strings.Index(q, ")")]
		if n, p := len(strings.Split(cols, ",")), strings.Count(q, "?"); n != p {
			t.Errorf("%d columns, %d placeholders: %s", n, p, q)
		}
	}
}
