//go:build !linux && unix

package manifest

import (
	"errors"
	"syscall"
)

// oNoFollow makes opening a manifest path fail on a symlink swapped in after the walk.
const oNoFollow = syscall.O_NOFOLLOW

func isSymlinkErr(err error) bool { return errors.Is(err, syscall.ELOOP) }
