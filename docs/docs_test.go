// Package docs holds fieldseal's documentation; its test keeps the docs from rotting.
package docs

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the test index of THREAT_MODEL.md")

// Every row of the threat table names the tests that show its answer; each named test must
// exist somewhere in the repository, so the threat model cannot claim a test nobody wrote.
func TestThreatModelNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("THREAT_MODEL.md")
	if err != nil {
		t.Fatal(err)
	}
	rowRe := regexp.MustCompile(`(?m)^\| ([DS]\d+)( \*hw\*)? \|.*\| ([^|]*) \|$`)
	table, _, _ := strings.Cut(string(doc), indexMarker)
	rows := rowRe.FindAllStringSubmatch(table, -1)
	// D1–D21 and S1–S10 of the original model, and the rows added since (D22…, S11…).
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r[1]] {
			t.Errorf("threat table has row %s twice", r[1])
		}
		seen[r[1]] = true
	}
	for i := 1; i <= 21; i++ {
		if !seen[fmt.Sprintf("D%d", i)] {
			t.Errorf("threat table lacks row D%d", i)
		}
	}
	for i := 1; i <= 10; i++ {
		if !seen[fmt.Sprintf("S%d", i)] {
			t.Errorf("threat table lacks row S%d", i)
		}
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
	out := map[string]bool{}
	for _, f := range threatTests(t) {
		out[f.area+" "+f.row] = true
	}
	return out
}

type threatTest struct{ area, row, name, dir string }

// threatTests lists every TestThreat function with its component and folder.
func threatTests(t *testing.T) []threatTest {
	root := testenv.RepoRoot()
	areas := map[string]string{
		"manifest": "manifest", "internal/cli": "cli", "fschain": "fschain",
		"device/micropython": "guard", "agent": "agent", "sim": "agent", "server": "server",
		"store": "server", "audit": "audit",
	}
	funcRe := regexp.MustCompile(`^func ((TestThreat[DS]\d+)_\w*)`)
	var out []threatTest
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
				out = append(out, threatTest{area: area, row: m[2], name: m[1], dir: filepath.ToSlash(filepath.Dir(rel))})
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const indexMarker = "## Test index"

// The test index at the end of THREAT_MODEL.md lists every TestThreat function, row by row.
// After adding or renaming one: go test ./docs -run TestThreatIndex -update
func TestThreatIndexIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("THREAT_MODEL.md")
	if err != nil {
		t.Fatal(err)
	}
	tests := threatTests(t)
	rowNum := func(r string) (byte, int) {
		var n int
		fmt.Sscanf(r[len("TestThreat")+1:], "%d", &n)
		return r[len("TestThreat")], n
	}
	sort.Slice(tests, func(i, j int) bool {
		ki, ni := rowNum(tests[i].row)
		kj, nj := rowNum(tests[j].row)
		if ki != kj {
			return ki < kj
		}
		if ni != nj {
			return ni < nj
		}
		return tests[i].dir+tests[i].name < tests[j].dir+tests[j].name
	})
	var b strings.Builder
	b.WriteString(indexMarker + "\n\nEvery threat test in the repository (kept current by `docs/docs_test.go`; regenerate\nwith `go test ./docs -run TestThreatIndex -update`). Run one with\n`go test ./FOLDER -run NAME`.\n\n| row | test | folder |\n|---|---|---|\n")
	for _, f := range tests {
		fmt.Fprintf(&b, "| %s | `%s` | `%s` |\n", strings.TrimPrefix(f.row, "TestThreat"), f.name, f.dir)
	}
	text := string(doc)
	head := text
	if i := strings.Index(text, indexMarker); i >= 0 {
		head = text[:i]
	}
	want := strings.TrimRight(head, "\n") + "\n\n" + b.String()
	if want == text {
		return
	}
	if *update {
		if err := os.WriteFile("THREAT_MODEL.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("THREAT_MODEL.md's test index is stale: go test ./docs -run TestThreatIndex -update")
}
