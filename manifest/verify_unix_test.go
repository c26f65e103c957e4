//go:build unix

package manifest_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/fieldseal/fieldseal/manifest"
)

func TestVerifyNeverFollows(t *testing.T) {
	b := mustBuild(t, exampleSrc(t), func(o *manifest.BuildOptions) { o.Mutable = nil })
	m := b.open(t)
	outside := t.TempDir()
	// A manifest file replaced by a symlink to an identical copy outside the tree.
	orig := filepath.Join(b.app, "main.mpy")
	data, _ := os.ReadFile(orig)
	os.WriteFile(filepath.Join(outside, "main.mpy"), data, 0o644)
	os.Remove(orig)
	os.Symlink(filepath.Join(outside, "main.mpy"), orig)
	// A folder symlinked out of the tree: nothing under it is read.
	os.Symlink(outside, filepath.Join(b.app, "lib"))
	// A FIFO would block a naive reader forever.
	if err := syscall.Mkfifo(filepath.Join(b.app, "leak.mpy.fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Rename(filepath.Join(b.app, "leak.mpy"), filepath.Join(b.app, "leak.mpy.bak"))
	os.Rename(filepath.Join(b.app, "leak.mpy.fifo"), filepath.Join(b.app, "leak.mpy"))
	res := verify(t, b.app, m)
	wantFindings(t, res, "modified leak.mpy", "extra leak.mpy.bak", "extra lib", "modified main.mpy")
}
