//go:build linux

package agent

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchTree calls changed (debounced) whenever anything under root is written, created,
// removed, renamed or has its attributes changed, using inotify: a file swapped between
// two scheduled checks triggers a check at once. New folders are watched as they appear.
func watchTree(ctx context.Context, root string, changed func()) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	const mask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM |
		unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	dirs := map[int]string{} // watch descriptor → folder; used by the one goroutine below
	add := func(dir string) {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				if wd, err := unix.InotifyAddWatch(fd, p, mask); err == nil {
					dirs[wd] = p
				}
			}
			return nil
		})
	}
	add(root)
	go func() {
		defer unix.Close(fd)
		buf := make([]byte, 64<<10)
		var pending bool
		var fire time.Time
		for ctx.Err() == nil {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			wait := 500
			if pending {
				wait = max(1, int(time.Until(fire)/time.Millisecond))
			}
			n, _ := unix.Poll(pfd, wait)
			if n > 0 {
				r, err := unix.Read(fd, buf)
				for off := 0; err == nil && off+unix.SizeofInotifyEvent <= r; {
					ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
					name := ""
					if ev.Len > 0 {
						name = strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
					}
					off += unix.SizeofInotifyEvent + int(ev.Len)
					if ev.Mask&unix.IN_ISDIR != 0 && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 && name != "" {
						// A new folder: watch it (and anything already inside it).
						if dir, ok := dirs[int(ev.Wd)]; ok {
							add(filepath.Join(dir, name))
						}
					}
					if !pending {
						pending, fire = true, time.Now().Add(100*time.Millisecond)
					}
				}
			}
			if pending && !time.Now().Before(fire) {
				pending = false
				changed()
			}
		}
	}()
	return nil
}

func stampOf(path string) (fileStamp, bool) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fileStamp{}, false
	}
	return fileStamp{Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, true
}

// Linux GPIO character device, uAPI v2 (linux/gpio.h). x/sys/unix does not carry these.
const (
	gpioV2LineFlagInput       = 1 << 2
	gpioV2LineFlagEdgeRising  = 1 << 4
	gpioV2LineFlagEdgeFalling = 1 << 5
	gpioV2LineFlagBiasPullUp  = 1 << 8
	gpioV2LinesMax            = 64
	gpioMaxNameSize           = 32
	gpioV2LineNumAttrsMax     = 10
)

type gpioV2LineAttribute struct {
	ID      uint32
	Padding uint32
	Value   uint64
}

type gpioV2LineConfigAttribute struct {
	Attr gpioV2LineAttribute
	Mask uint64
}

type gpioV2LineConfig struct {
	Flags    uint64
	NumAttrs uint32
	Padding  [5]uint32
	Attrs    [gpioV2LineNumAttrsMax]gpioV2LineConfigAttribute
}

type gpioV2LineRequest struct {
	Offsets         [gpioV2LinesMax]uint32
	Consumer        [gpioMaxNameSize]byte
	Config          gpioV2LineConfig
	NumLines        uint32
	EventBufferSize uint32
	Padding         [5]uint32
	Fd              int32
}

type gpioV2LineValues struct {
	Bits uint64
	Mask uint64
}

func iowr(typ, nr, size uintptr) uintptr { return 3<<30 | size<<16 | typ<<8 | nr }

var (
	gpioV2GetLineIoctl       = iowr(0xB4, 0x07, unsafe.Sizeof(gpioV2LineRequest{}))
	gpioV2LineGetValuesIoctl = iowr(0xB4, 0x0E, unsafe.Sizeof(gpioV2LineValues{}))
)

// gpioEventSize is sizeof(struct gpio_v2_line_event).
const gpioEventSize = 48

// GPIOCover watches an enclosure switch on a GPIO line: chip is /dev/gpiochipN (or "N"),
// line its offset. The line is requested as an input with pull-up and both edges; high
// (switch open, contact broken) means open unless activeLow.
type GPIOCover struct {
	Chip      string
	Line      uint32
	ActiveLow bool
	fd        int
}

// ParseGPIO parses "CHIP:LINE", e.g. "gpiochip0:17" or "/dev/gpiochip0:17".
func ParseGPIO(s string) (*GPIOCover, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return nil, fmt.Errorf("--gpio %q: want CHIP:LINE, e.g. gpiochip0:17", s)
	}
	line, err := strconv.ParseUint(s[i+1:], 10, 32)
	if err != nil {
		return nil, fmt.Errorf("--gpio %q: line: %w", s, err)
	}
	chip := s[:i]
	if !strings.HasPrefix(chip, "/") {
		if _, err := strconv.Atoi(chip); err == nil {
			chip = "gpiochip" + chip
		}
		chip = "/dev/" + chip
	}
	return &GPIOCover{Chip: chip, Line: uint32(line)}, nil
}

func (g *GPIOCover) open() error {
	if g.fd > 0 {
		return nil
	}
	cfd, err := unix.Open(g.Chip, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("gpio %s: %w", g.Chip, err)
	}
	defer unix.Close(cfd)
	var req gpioV2LineRequest
	req.Offsets[0] = g.Line
	copy(req.Consumer[:], "fieldseal-cover")
	req.Config.Flags = gpioV2LineFlagInput | gpioV2LineFlagEdgeRising | gpioV2LineFlagEdgeFalling | gpioV2LineFlagBiasPullUp
	req.NumLines = 1
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(cfd), gpioV2GetLineIoctl, uintptr(unsafe.Pointer(&req))); e != 0 {
		return fmt.Errorf("gpio %s line %d: request: %w", g.Chip, g.Line, e)
	}
	g.fd = int(req.Fd)
	return nil
}

// Open reports whether the cover is open now.
func (g *GPIOCover) Open() (bool, error) {
	if err := g.open(); err != nil {
		return false, err
	}
	v := gpioV2LineValues{Mask: 1}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(g.fd), gpioV2LineGetValuesIoctl, uintptr(unsafe.Pointer(&v))); e != 0 {
		return false, fmt.Errorf("gpio %s line %d: get value: %w", g.Chip, g.Line, e)
	}
	high := v.Bits&1 != 0
	return high != g.ActiveLow, nil
}

// Watch calls f on every edge with the level after it, until ctx ends. Edges are queued by
// the kernel with sequence numbers, so none is lost while f runs.
func (g *GPIOCover) Watch(ctx context.Context, f func(open bool, source string)) error {
	if err := g.open(); err != nil {
		return err
	}
	go func() {
		buf := make([]byte, gpioEventSize*16)
		for ctx.Err() == nil {
			pfd := []unix.PollFd{{Fd: int32(g.fd), Events: unix.POLLIN}}
			if n, _ := unix.Poll(pfd, 500); n <= 0 {
				continue
			}
			r, err := unix.Read(g.fd, buf)
			if err != nil {
				continue
			}
			for off := 0; off+gpioEventSize <= r; off += gpioEventSize {
				id := binary.NativeEndian.Uint32(buf[off+8:])
				rising := id == 1 // GPIO_V2_LINE_EVENT_RISING_EDGE
				f(rising != g.ActiveLow, "irq")
			}
		}
		unix.Close(g.fd)
	}()
	return nil
}
