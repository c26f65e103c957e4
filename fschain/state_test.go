package fschain

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestExportImportState(t *testing.T) {
	w, _ := newTestWriter(t)
	appendN(t, w, 8)
	srv := newServer()
	if err := srv.verify(w.Segment()); err != nil {
		t.Fatal(err)
	}
	if err := w.Prune(3, srv.heads[3]); err != nil {
		t.Fatal(err)
	}
	state, x := w.ExportState(), w.Export()
	st2 := NewMemStorage()
	w2, err := Import(st2, state, x)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, w2, 2)
	if err := srv.verify(w2.Segment()); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(st2, state, x); !errors.Is(err, ErrExists) {
		t.Fatalf("import over a log: %v", err)
	}
	x.Entries[1].T++
	if _, err := Import(NewMemStorage(), state, x); err == nil {
		t.Fatal("import of an altered log succeeded")
	}
}

// fschain imports nothing of fieldseal's but wire (architecture.md), and no SQL, broker or
// HTML packages: it is part of the agent's and the offline verifier's trusted base.
func TestImportsStayMinimal(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			ok := !strings.Contains(p, ".") || p == "github.com/fieldseal/fieldseal/wire"
			if !ok || strings.Contains(p, "sql") || strings.Contains(p, "html") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
