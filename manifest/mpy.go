package manifest

import (
	"errors"
	"fmt"
)

// The .mpy checks build runs on every compiled or copied .mpy file (threats D6, D7). A
// .mpy has no checksum and MicroPython's loader trusts it completely — a truncated file
// hangs the import forever, a native one runs machine code — so the host refuses such
// files before they are sealed. Format: MicroPython docs/reference/mpyfiles.rst and
// py/persistentcode.c; summary in the hardening reference §4.

// MpyHeader is what ParseMpy learns from a .mpy file.
type MpyHeader struct {
	Version      uint8  // 6 (5 is recognised only to be refused)
	SubVersion   uint8  // 0 (MicroPython 1.19) to 3 (≥ 1.23)
	Arch         uint8  // 0 = bytecode, else a native architecture (MpyArchNames)
	ArchFlags    uint64 // only when header bit 6 is set (RV32 extensions)
	SmallIntBits uint8
	NQstr, NObj  uint64
	Native       bool // arch ≠ 0 or a native raw code found in the tree
	Walked       bool // the whole raw-code tree was parsed and ended at the last byte
}

// ArchName is the manifest's name for the header's architecture.
func (h MpyHeader) ArchName() string { return MpyArchName(h.Arch) }

// MpyArchName names a .mpy architecture number ("bytecode" for 0).
func MpyArchName(a uint8) string {
	if int(a) < len(mpyArchNames) {
		return mpyArchNames[a]
	}
	return fmt.Sprintf("arch%d", a)
}

var mpyArchNames = []string{"bytecode", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em",
	"armv7emsp", "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc", "debug"}

// Errors of ParseMpy; each wraps ErrBadMpy.
var (
	ErrBadMpy       = errors.New("bad-mpy")
	ErrMpyForeign   = fmt.Errorf("%w: not a .mpy file (no 'M' magic)", ErrBadMpy)
	ErrMpyTruncated = fmt.Errorf("%w: truncated", ErrBadMpy)
	ErrMpyVersion   = fmt.Errorf("%w: unsupported .mpy version", ErrBadMpy)
	ErrMpyNative    = fmt.Errorf("%w: contains native machine code", ErrBadMpy)
	ErrMpyMalformed = fmt.Errorf("%w: malformed", ErrBadMpy)
)

// Persistent object types of .mpy v6 (py/persistentcode.h, MP_PERSISTENT_OBJ_*).
const (
	objFunTable = iota
	objNone
	objFalse
	objTrue
	objEllipsis
	objStr
	objBytes
	objInt
	objFloat
	objComplex
	objTuple
)

const maxMpyDepth = 64 // nesting of tuples and raw codes a real module never approaches

type mpyReader struct {
	b   []byte
	off int
}

func (r *mpyReader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, ErrMpyTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// vuint reads MicroPython's big-endian base-128 unsigned integer.
func (r *mpyReader) vuint() (uint64, error) {
	var v uint64
	for i := 0; ; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == 9 || v>>57 != 0 {
			return 0, fmt.Errorf("%w: variable-length integer too long at byte %d", ErrMpyMalformed, r.off)
		}
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

func (r *mpyReader) skip(n uint64) error {
	if n > uint64(len(r.b)-r.off) {
		r.off = len(r.b)
		return ErrMpyTruncated
	}
	r.off += int(n)
	return nil
}

// ParseMpy checks a .mpy file and returns its header. It refuses, with errors wrapping
// ErrBadMpy: a file without the 'M' magic, a version other than 6 (naming v5 and older
// MicroPython releases), a reserved bit set, a small-int width outside 8..64, a truncated
// file and bytes after the end. For bytecode files it walks the whole qstr table, constant
// table and raw-code tree, so truncation anywhere is found; native raw codes stop the walk
// (their layout depends on the architecture) and set Native.
func ParseMpy(b []byte) (MpyHeader, error) {
	var h MpyHeader
	if len(b) == 0 {
		return h, fmt.Errorf("%w: empty file", ErrMpyTruncated)
	}
	if b[0] != 'M' {
		return h, ErrMpyForeign
	}
	if len(b) < 4 {
		return h, fmt.Errorf("%w: %d-byte header", ErrMpyTruncated, len(b))
	}
	h.Version = b[1]
	switch {
	case h.Version == 5:
		return h, fmt.Errorf("%w: .mpy v5 (MicroPython 1.12–1.18); recompile with mpy-cross for MicroPython ≥ 1.19 (.mpy v6)", ErrMpyVersion)
	case h.Version < 5:
		return h, fmt.Errorf("%w: .mpy v%d (MicroPython ≤ 1.11); recompile with mpy-cross for MicroPython ≥ 1.19 (.mpy v6)", ErrMpyVersion, h.Version)
	case h.Version != 6:
		return h, fmt.Errorf("%w: .mpy v%d is newer than fieldseal knows (v6)", ErrMpyVersion, h.Version)
	}
	if b[2]&0x80 != 0 {
		return h, fmt.Errorf("%w: reserved header bit set", ErrMpyMalformed)
	}
	h.SubVersion = b[2] & 3
	h.Arch = (b[2] >> 2) & 0x0f
	h.SmallIntBits = b[3]
	if h.SmallIntBits < 8 || h.SmallIntBits > 64 {
		return h, fmt.Errorf("%w: %d small-int bits", ErrMpyMalformed, h.SmallIntBits)
	}
	if int(h.Arch) >= len(mpyArchNames)-1 { // "debug" and unassigned numbers are no target
		return h, fmt.Errorf("%w: unknown native architecture %d", ErrMpyMalformed, h.Arch)
	}
	h.Native = h.Arch != 0
	r := &mpyReader{b: b, off: 4}
	var err error
	if b[2]&0x40 != 0 {
		if h.ArchFlags, err = r.vuint(); err != nil {
			return h, err
		}
	}
	if h.NQstr, err = r.vuint(); err != nil {
		return h, err
	}
	if h.NObj, err = r.vuint(); err != nil {
		return h, err
	}
	// Every qstr and object takes at least one byte: bound the counts by the file size
	// before looping, so a forged count cannot make the walk long.
	if h.NQstr > uint64(len(b)) || h.NObj > uint64(len(b)) {
		return h, fmt.Errorf("%w: %d qstrs and %d objects in %d bytes", ErrMpyTruncated, h.NQstr, h.NObj, len(b))
	}
	for i := uint64(0); i < h.NQstr; i++ {
		n, err := r.vuint()
		if err != nil {
			return h, err
		}
		if n&1 == 0 { // not a static qstr: n/2 bytes and a NUL
			if err := r.skip(n>>1 + 1); err != nil {
				return h, err
			}
		}
	}
	for i := uint64(0); i < h.NObj; i++ {
		if err := r.obj(0); err != nil {
			return h, err
		}
	}
	native, err := r.rawCode(0)
	if err != nil {
		return h, err
	}
	if native {
		h.Native = true
		return h, nil
	}
	if r.off != len(b) {
		return h, fmt.Errorf("%w: %d bytes after the end of the module", ErrMpyMalformed, len(b)-r.off)
	}
	h.Walked = true
	return h, nil
}

func (r *mpyReader) obj(depth int) error {
	if depth > maxMpyDepth {
		return fmt.Errorf("%w: constants nested too deep", ErrMpyMalformed)
	}
	t, err := r.byte()
	if err != nil {
		return err
	}
	switch t {
	case objFunTable, objNone, objFalse, objTrue, objEllipsis:
		return nil
	case objTuple:
		n, err := r.vuint()
		if err != nil {
			return err
		}
		if n > uint64(len(r.b)-r.off) {
			return ErrMpyTruncated
		}
		for i := uint64(0); i < n; i++ {
			if err := r.obj(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case objStr, objBytes:
		n, err := r.vuint()
		if err != nil {
			return err
		}
		return r.skip(n + 1) // data and NUL
	case objInt, objFloat, objComplex:
		n, err := r.vuint()
		if err != nil {
			return err
		}
		return r.skip(n)
	}
	return fmt.Errorf("%w: unknown constant type %d at byte %d", ErrMpyMalformed, t, r.off-1)
}

// rawCode walks one raw code and its children. It reports native=true, and stops, at the
// first raw code that is not bytecode.
func (r *mpyReader) rawCode(depth int) (native bool, err error) {
	if depth > maxMpyDepth {
		return false, fmt.Errorf("%w: functions nested too deep", ErrMpyMalformed)
	}
	kindLen, err := r.vuint()
	if err != nil {
		return false, err
	}
	if kindLen&3 != 0 {
		return true, nil
	}
	hasChildren := kindLen&4 != 0
	if err := r.skip(kindLen >> 3); err != nil {
		return false, err
	}
	if !hasChildren {
		return false, nil
	}
	n, err := r.vuint()
	if err != nil {
		return false, err
	}
	if n > uint64(len(r.b)-r.off) {
		return false, ErrMpyTruncated
	}
	for i := uint64(0); i < n; i++ {
		if native, err := r.rawCode(depth + 1); err != nil || native {
			return native, err
		}
	}
	return false, nil
}
