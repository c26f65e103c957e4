// Package docs holds fieldseal's documentation; its test keeps the docs from rotting.
package docs

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

// Every row of the threat table names the tests that show its answer; each named test must
// exist somewhere in the repository, so the threat model cannot claim a test nobody wrote.
func TestThreatModelNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("THREAT_MODEL.md")
	if err != nil {
		t.Fatal(err)
	}
	rowRe := regexp.MustCompile(`(?m)^\| ([DS]\d+)( \*hw\*)? \|.*\| ([^|]*) \|$`)
	rows := rowRe.FindAllStringSubmatch(string(doc), -1)
	wantRows := 21 + 10
	if len(rows) != wantRows {
		t.Fatalf("threat table has %d rows, want %d (D1–D21, S1–S10)", len(rows), wantRows)
	}
	defined := testFuncs(t)
	for _, r := range rows {
		id, tests := r[1], r[3]
		if id == "D21" {
			continue // out of scope: no test can show a glitch
		}
		want := "TestThreat" + id
		if !strings.Contains(tests, want) {
			t.Errorf("row %s names no %s test (column: %q)", id, want, tests)
			continue
		}
		// Packages listed in parentheses must each hold such a test.
		pkgs := regexp.MustCompile(`\(([^)]*)\)`).FindStringSubmatch(tests)
		if pkgs == nil {
			t.Errorf("row %s: name the packages holding %s in parentheses", id, want)
			continue
		}
		for _, p := range strings.Split(pkgs[1], ",") {
			p = strings.TrimSpace(p)
			if !defined[p+" "+want] {
				t.Errorf("row %s: THREAT_MODEL.md says %s has a %s_… test; none found", id, p, want)
			}
		}
	}
}

// testFuncs maps "area TestThreatXn" for every TestThreat function in the repository. The
// area is the component the docs speak of: manifest, fschain, guard, agent, server, audit.
func testFuncs(t *testing.T) map[string]bool {
	root := testenv.RepoRoot()
	areas := map[string]string{
		"manifest": "manifest", "internal/cli": "manifest", "fschain": "fschain",
		"device/micropython": "guard", "agent": "agent", "sim": "agent", "server": "server",
		"store": "server", "audit": "audit",
	}
	funcRe := regexp.MustCompile(`^func (TestThreat[DS]\d+)_`)
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		area := ""
		for prefix, a := range areas {
			if strings.HasPrefix(rel, prefix+"/") && len(prefix) > len(area) {
				area = a
			}
		}
		if area == "" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := funcRe.FindStringSubmatch(sc.Text()); m != nil {
				out[area+" "+m[1]] = true
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
