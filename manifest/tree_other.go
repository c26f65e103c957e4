//go:build !linux

package manifest

import (
	"io"
	"os"
)

// tree opens the files to hash through an os.Root, which cannot leave the tree.
type tree struct{ rt *os.Root }

func openTree(_ string, rt *os.Root) (*tree, error) { return &tree{rt: rt}, nil }

func (t *tree) close() {}

type sealedFile interface {
	io.Reader
	stat() (size int64, regular bool, err error)
	Close() error
}

func (t *tree) open(path string) (sealedFile, error) {
	f, err := t.rt.OpenFile(path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (t *tree) readDir(dir string) ([]dirEntry, error) { return rootReadDir(t.rt, dir) }

type osFile struct{ *os.File }

func (f osFile) stat() (int64, bool, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	return st.Size(), st.Mode().IsRegular(), nil
}
