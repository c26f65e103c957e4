//go:build !linux

package agent

import (
	"context"
	"errors"
	"os"
)

// watchTree is a no-op where inotify is absent: scheduled checks remain.
func watchTree(ctx context.Context, root string, changed func()) error { return nil }

func stampOf(path string) (fileStamp, bool) {
	st, err := os.Lstat(path)
	if err != nil {
		return fileStamp{}, false
	}
	return fileStamp{Size: st.Size(), Mtime: st.ModTime().UnixNano()}, true
}

// GPIOCover needs the Linux GPIO character device.
type GPIOCover struct{}

func ParseGPIO(s string) (*GPIOCover, error) {
	return nil, errors.New("--gpio needs Linux (GPIO character device)")
}

func (g *GPIOCover) Open() (bool, error) { return false, errors.New("gpio: Linux only") }

func (g *GPIOCover) Watch(ctx context.Context, f func(open bool, source string)) error {
	return errors.New("gpio: Linux only")
}
