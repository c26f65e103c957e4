//go:build linux

package manifest

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// The openat2/getdents path and the os.Root fallback find the same things.
func TestVerifyTreeBothOpenPaths(t *testing.T) {
	root := t.TempDir()
	var files []wire.File
	add := func(p, content string) {
		full := filepath.Join(root, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte(content), 0o644)
		sum := sha256.Sum256([]byte(content))
		files = append(files, wire.File{Path: p, Size: uint64(len(content)), SHA256: sum[:]})
	}
	add("a.mpy", "aaaa")
	add("lib/b.mpy", "bbbb")
	add("lib/c.json", "{}")
	add("d.txt", "dddd")
	add("e/f.txt", "ffff")
	add("g.txt", "gggg")
	m := &wire.Manifest{Product: "p", Version: 1, Files: files, Policy: wire.DefaultPolicy(), Root: wire.FilesRoot(files)}
	os.WriteFile(filepath.Join(root, "lib", "c.json"), []byte("{!"), 0o644) // modified, same size
	os.Remove(filepath.Join(root, "d.txt"))
	os.Symlink("a.mpy", filepath.Join(root, "d.txt")) // symlink where a file was
	os.RemoveAll(filepath.Join(root, "e"))
	os.Symlink(t.TempDir(), filepath.Join(root, "e")) // folder replaced by a link out
	os.Remove(filepath.Join(root, "g.txt"))
	syscall.Mkfifo(filepath.Join(root, "g.txt"), 0o644)                  // FIFO where a file was
	os.WriteFile(filepath.Join(root, "lib", "x.py"), []byte("x"), 0o644) // extra

	var results [2]*Result
	for i, fallback := range []bool{false, true} {
		noOpenat2 = fallback
		res, err := VerifyTree(context.Background(), root, m, VerifyOptions{})
		noOpenat2 = false
		if err != nil {
			t.Fatal(err)
		}
		results[i] = res
	}
	want := []Finding{
		{Path: "d.txt", Kind: wire.KindModified, Detail: "is a symlink (not followed)"},
		{Path: "e", Kind: wire.KindExtra, Detail: "symlink"},
		{Path: "e/f.txt", Kind: wire.KindMissing},
		{Path: "g.txt", Kind: wire.KindModified, Detail: "is a special file (p---------)"},
		{Path: "lib/c.json", Kind: wire.KindModified, Detail: "content differs (SHA-256)"},
		{Path: "lib/x.py", Kind: wire.KindExtra},
	}
	for i, res := range results {
		if !reflect.DeepEqual(res.Findings, want) || res.Checked != 2 {
			t.Errorf("path %d: checked %d, findings\n%+v\nwant\n%+v", i, res.Checked, res.Findings, want)
		}
	}
}
