package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret.json")
	if err := Write(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("content %q %v", b, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	// A folder that does not exist: an error, nothing created.
	if err := Write(filepath.Join(dir, "no", "x"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing folder succeeded")
	}
	// A read-only folder: the old content stays.
	if os.Getuid() != 0 {
		os.Chmod(dir, 0o500)
		defer os.Chmod(dir, 0o700)
		if err := Write(p, []byte("three"), 0o600); err == nil {
			t.Fatal("write into a read-only folder succeeded")
		}
		if b, _ := os.ReadFile(p); string(b) != "two" {
			t.Fatalf("content changed to %q", b)
		}
	}
}

// A failed write names the file asked for, never the temporary one.
func TestWriteErrorNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "no-such-folder", "bundle.json"), dir} {
		err := Write(path, []byte("x"), 0o600)
		if err == nil || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), ".tmp") {
			t.Errorf("Write(%s): %v", path, err)
		}
	}
}
