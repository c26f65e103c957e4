package mpycross

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/manifest"
)

func TestFindNodeModules(t *testing.T) {
	_, modules := testenv.Node(t)
	t.Setenv("FIELDSEAL_NODE_MODULES", modules)
	if got, err := FindNodeModules(); err != nil || got != modules {
		t.Fatalf("env: %q %v", got, err)
	}
	t.Setenv("FIELDSEAL_NODE_MODULES", t.TempDir())
	if _, err := FindNodeModules(); err == nil {
		t.Fatal("empty FIELDSEAL_NODE_MODULES accepted")
	}
	t.Setenv("FIELDSEAL_NODE_MODULES", "")
	if got, err := FindNodeModules(); err != nil || got != modules { // walking up from the test's folder
		t.Fatalf("walk up: %q %v", got, err)
	}
}

func TestFind(t *testing.T) {
	node, _ := testenv.Node(t)
	c, err := Find(filepath.Join(testenv.RepoRoot(), "tools", "mpy-cross", "mpy-cross.mjs"), nil)
	if n, ok := c.(*Node); err != nil || !ok || !strings.Contains(n.String(), "mpy-cross.mjs") {
		t.Fatalf("override .mjs: %v %v", c, err)
	}
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	if _, err := Find("", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("nothing on PATH: %v", err)
	}
	os.Symlink(node, filepath.Join(bin, "node"))
	if c, err := Find("", nil); err != nil || !strings.Contains(c.String(), "WebAssembly") {
		t.Fatalf("node only: %v %v", c, err)
	}
	fake := filepath.Join(bin, "mpy-cross")
	os.WriteFile(fake, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	if c, err := Find("", nil); err != nil || c.String() != fake {
		t.Fatalf("PATH mpy-cross first: %v %v", c, err)
	}
}

func TestNodeCompile(t *testing.T) {
	node, modules := testenv.Node(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.py"), []byte("X = 1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.py"), []byte("def f(:\n"), 0o644)
	c := &Node{NodePath: node, Script: Script, Modules: modules}
	var jobs []manifest.CompileJob
	for i := 0; i < 50; i++ { // one process for all of them
		jobs = append(jobs, manifest.CompileJob{Src: filepath.Join(dir, "ok.py"), Out: filepath.Join(dir, "ok"+string(rune('a'+i%26))+".mpy"), Name: "lib/ok.py"})
	}
	n := 0
	if err := c.Compile(context.Background(), jobs, func() { n++ }); err != nil || n != 50 {
		t.Fatalf("compile: %v (%d done)", err, n)
	}
	data, _ := os.ReadFile(jobs[0].Out)
	if h, err := manifest.ParseMpy(data); err != nil || !strings.Contains(string(data), "lib/ok.py") {
		t.Fatalf("output %+v %v", h, err)
	}
	err := c.Compile(context.Background(), []manifest.CompileJob{{Src: filepath.Join(dir, "bad.py"), Out: filepath.Join(dir, "bad.mpy"), Name: "app/bad.py"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "app/bad.py") || !strings.Contains(err.Error(), "SyntaxError") {
		t.Fatalf("syntax error: %v", err)
	}
}

func TestExecCompile(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "mpy-cross")
	// A stand-in that records its arguments and writes a minimal .mpy to -o.
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\" >> "+dir+"/args\nwhile [ $# -gt 0 ]; do [ \"$1\" = -o ] && printf 'M' > \"$2\"; shift; done\n"), 0o755)
	c := &Exec{Path: fake, Options: []string{"-O2"}}
	jobs := []manifest.CompileJob{{Src: "a.py", Out: filepath.Join(dir, "a.mpy"), Name: "a.py"}, {Src: "b.py", Out: filepath.Join(dir, "b.mpy"), Name: "sub/b.py"}}
	if err := c.Compile(context.Background(), jobs, nil); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if !strings.Contains(string(args), "-o "+filepath.Join(dir, "b.mpy")+" -s sub/b.py -O2 b.py") {
		t.Fatalf("arguments:\n%s", args)
	}
	os.WriteFile(fake, []byte("#!/bin/sh\necho 'SyntaxError: boom' >&2\nexit 1\n"), 0o755)
	if err := c.Compile(context.Background(), jobs, nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("failure: %v", err)
	}
}

// An installed fieldseal outside a checkout finds the package it installed into its cache;
// with node but no npm and no package anywhere, the error says what is missing.
func TestFindOrInstallCache(t *testing.T) {
	node, modules := testenv.Node(t)
	bin := t.TempDir()
	os.Symlink(node, filepath.Join(bin, "node"))
	t.Setenv("PATH", bin) // node, no npm, no mpy-cross
	t.Setenv("FIELDSEAL_NODE_MODULES", "")
	cache := t.TempDir()
	t.Setenv("FIELDSEAL_CACHE", cache)
	t.Chdir(t.TempDir()) // outside the repository: no node_modules above
	if _, err := FindOrInstall(context.Background(), "", nil, nil); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "npm not found") {
		t.Fatalf("no package, no npm: %v", err)
	}
	dir, _ := CacheDir()
	pkg := filepath.Join(dir, "node_modules", "@pybricks")
	os.MkdirAll(pkg, 0o755)
	if err := os.Symlink(filepath.Join(modules, "@pybricks", "mpy-cross-v6"), filepath.Join(pkg, "mpy-cross-v6")); err != nil {
		t.Fatal(err)
	}
	c, err := FindOrInstall(context.Background(), "", nil, nil)
	if n, ok := c.(*Node); err != nil || !ok || n.Modules != filepath.Join(dir, "node_modules") {
		t.Fatalf("installed package in the cache: %v %v", c, err)
	}
}
