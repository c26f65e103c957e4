//go:build linux

package manifest

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// tree opens the files to hash. On Linux it uses openat2(2) with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS on a descriptor of the root: one system call per file that cannot
// leave the tree or follow a link, and raw reads without the os.File machinery (poller
// registration, flag checks) — a quarter of a cached verify's system time otherwise.
// Kernels without openat2 (before 5.6) fall back to os.Root.
type tree struct {
	rt    *os.Root
	dirfd int // -1 when openat2 is unavailable
}

// noOpenat2 makes tests take the os.Root path kernels without openat2 take.
var noOpenat2 bool

func openTree(root string, rt *os.Root) (*tree, error) {
	t := &tree{rt: rt, dirfd: -1}
	if noOpenat2 {
		return t, nil
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	probe, err := unix.Openat2(fd, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_DIRECTORY, Resolve: unix.RESOLVE_BENEATH})
	if err != nil {
		unix.Close(fd)
		return t, nil //nolint:nilerr // no openat2: use os.Root
	}
	unix.Close(probe)
	t.dirfd = fd
	return t, nil
}

func (t *tree) close() {
	if t.dirfd >= 0 {
		unix.Close(t.dirfd)
	}
}

type sealedFile interface {
	io.Reader
	stat() (size int64, regular bool, err error)
	Close() error
}

func (t *tree) open(path string) (sealedFile, error) {
	if t.dirfd < 0 {
		f, err := t.rt.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return nil, err
		}
		return osFile{f}, nil
	}
	for {
		fd, err := unix.Openat2(t.dirfd, path, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK, // NONBLOCK: a FIFO must not stall us
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return rawFile(fd), nil
	}
}

// readDir lists dir (relative to the root) with getdents64, taking each entry's type from
// the directory itself: no stat per file. The folder is opened beneath the root without
// following links.
func (t *tree) readDir(dir string) ([]dirEntry, error) {
	if t.dirfd < 0 {
		return rootReadDir(t.rt, dir)
	}
	fd, err := unix.Openat2(t.dirfd, dir, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_DIRECTORY | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var out []dirEntry
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			return out, nil
		}
		// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < 19 || reclen > len(b) {
				return nil, &os.PathError{Op: "getdents", Path: dir, Err: unix.EIO}
			}
			typ := b[18]
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			b = b[reclen:]
			if string(name) == "." || string(name) == ".." {
				continue
			}
			e := dirEntry{name: string(name)}
			switch typ {
			case unix.DT_REG:
			case unix.DT_DIR:
				e.mode = fs.ModeDir
			case unix.DT_LNK:
				e.mode = fs.ModeSymlink
			case unix.DT_FIFO:
				e.mode = fs.ModeNamedPipe
			case unix.DT_SOCK:
				e.mode = fs.ModeSocket
			case unix.DT_CHR:
				e.mode = fs.ModeDevice | fs.ModeCharDevice
			case unix.DT_BLK:
				e.mode = fs.ModeDevice
			default: // DT_UNKNOWN: some filesystems do not say; ask
				var st unix.Stat_t
				if err := unix.Fstatat(fd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					e.mode = fs.ModeIrregular
				} else {
					e.mode = modeOf(st.Mode)
				}
			}
			out = append(out, e)
		}
	}
}

func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return 0
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

type rawFile int

func (f rawFile) stat() (int64, bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f), &st); err != nil {
		return 0, false, err
	}
	return st.Size, st.Mode&unix.S_IFMT == unix.S_IFREG, nil
}

func (f rawFile) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f rawFile) Close() error { return unix.Close(int(f)) }

type osFile struct{ *os.File }

func (f osFile) stat() (int64, bool, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	return st.Size(), st.Mode().IsRegular(), nil
}

// isSymlinkErr: O_NOFOLLOW and RESOLVE_NO_SYMLINKS refuse a link with ELOOP; RESOLVE_BENEATH
// refuses an escape with EXDEV.
func isSymlinkErr(err error) bool {
	return errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV)
}
