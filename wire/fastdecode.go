package wire

import (
	"math"
	"unicode/utf8"
)

// Hand-written decoders for the two hottest payloads, Report (server, per report) and Ack
// (device and load generator, per ack). They are a fast path only: they accept exactly the
// core deterministic encoding our own encoder produces (definite lengths, shortest heads,
// keys in order, every non-omitempty key present, omitempty keys only when non-empty) and
// return ok = false on anything else, including every malformed input. The caller then
// decodes with Unmarshal, which stays the authority: whatever the fast path accepts,
// Unmarshal accepts with a deeply equal result (FuzzDecodeReportFast, FuzzDecodeAckFast).
//
// Matching the CBOR library where it matters to callers: byte strings and slices are
// copied out of the input; null decodes to a nil slice, an empty byte string or array to
// a non-nil empty one; text must be valid UTF-8; an array may hold at most
// decMaxArrayElements items.

// decMaxArrayElements is DecOptions.MaxArrayElements of decMode (cbor.go).
const decMaxArrayElements = 1 << 17

// fastDec reads one payload. The first failure sets bad; every later read then returns
// zero values without moving, so a decoder checks bad once at the end (allocation sizes
// are bounded by the remaining input, so a failed read cannot make a loop run long).
type fastDec struct {
	p     []byte
	i     int
	bad   bool
	arena []byte // copy of p: byte-string fields are capped subslices of it (one allocation)
}

func newFastDec(p []byte) fastDec {
	return fastDec{p: p, arena: append([]byte(nil), p...)}
}

func (d *fastDec) fail() { d.bad = true }

// head reads a head of major type major whose argument is in shortest form and returns
// the argument.
func (d *fastDec) head(major byte) uint64 {
	if d.bad || d.i >= len(d.p) || d.p[d.i]>>5 != major {
		d.fail()
		return 0
	}
	ai := d.p[d.i] & 0x1f
	i := d.i + 1
	var n uint64
	switch {
	case ai < 24:
		n = uint64(ai)
	case ai == 24 && i+1 <= len(d.p):
		n = uint64(d.p[i])
		i++
		if n < 24 {
			d.fail()
		}
	case ai == 25 && i+2 <= len(d.p):
		n = uint64(d.p[i])<<8 | uint64(d.p[i+1])
		i += 2
		if n <= 0xff {
			d.fail()
		}
	case ai == 26 && i+4 <= len(d.p):
		n = uint64(d.p[i])<<24 | uint64(d.p[i+1])<<16 | uint64(d.p[i+2])<<8 | uint64(d.p[i+3])
		i += 4
		if n <= 0xffff {
			d.fail()
		}
	case ai == 27 && i+8 <= len(d.p):
		for _, c := range d.p[i : i+8] {
			n = n<<8 | uint64(c)
		}
		i += 8
		if n <= 0xffffffff {
			d.fail()
		}
	default: // indefinite length, reserved, or truncated
		d.fail()
	}
	if d.bad {
		return 0
	}
	d.i = i
	return n
}

// uint reads an unsigned integer of at most max (larger ones overflow the Go field: the
// library rejects them).
func (d *fastDec) uint(max uint64) uint64 {
	n := d.head(0)
	if n > max {
		d.fail()
		return 0
	}
	return n
}

// span reads the head of a byte or text string and returns its content's bounds in p.
func (d *fastDec) span(major byte) (int, int) {
	n := d.head(major)
	if d.bad || n > uint64(len(d.p)-d.i) {
		d.fail()
		return 0, 0
	}
	s := d.i
	d.i += int(n)
	return s, d.i
}

// isNull consumes a CBOR null if one is next.
func (d *fastDec) isNull() bool {
	if !d.bad && d.i < len(d.p) && d.p[d.i] == 0xf6 {
		d.i++
		return true
	}
	return false
}

// bytes reads a byte string (nil for null, as the library decodes it).
func (d *fastDec) bytes() []byte {
	if d.isNull() {
		return nil
	}
	s, e := d.span(2)
	if d.bad {
		return nil
	}
	return d.arena[s:e:e]
}

// nonEmptyBytes reads an omitempty byte string: present means non-empty.
func (d *fastDec) nonEmptyBytes() []byte {
	s, e := d.span(2)
	if s == e {
		d.fail()
		return nil
	}
	return d.arena[s:e:e]
}

// textBytes reads a text string, which must be valid UTF-8, without copying it.
func (d *fastDec) textBytes() []byte {
	s, e := d.span(3)
	if d.bad || !utf8.Valid(d.p[s:e]) {
		d.fail()
		return nil
	}
	return d.p[s:e]
}

// text reads a text string. Strings are allocated one by one, not cut from one shared
// buffer: a device id kept as a map key must not pin a whole payload.
func (d *fastDec) text() string { return string(d.textBytes()) }

// arrayLen reads an array head of any length up to the library's limit; null is -1.
// The length is also bounded by the bytes left (every item takes at least minItem), so
// a forged length cannot make the caller allocate much.
func (d *fastDec) arrayLen(minItem int) int {
	if d.isNull() {
		return -1
	}
	n := d.head(4)
	if n > decMaxArrayElements || n > uint64((len(d.p)-d.i)/minItem) {
		d.fail()
	}
	if d.bad {
		return 0
	}
	return int(n)
}

// expect reads one exact byte: a fixed array or map head, or a small map key.
func (d *fastDec) expect(b byte) {
	if d.bad || d.i >= len(d.p) || d.p[d.i] != b {
		d.fail()
		return
	}
	d.i++
}

// key reads a map key. All our keys are below 24, one byte; they must come in strictly
// increasing order (deterministic order, no duplicates).
func (d *fastDec) key(prev int) int {
	if d.bad || d.i >= len(d.p) || d.p[d.i] >= 24 || int(d.p[d.i]) <= prev {
		d.fail()
		return -1
	}
	d.i++
	return int(d.p[d.i-1])
}

func (d *fastDec) done() bool { return !d.bad && d.i == len(d.p) }

// decodeReportFast decodes a report payload in canonical form; ok = false means "use
// Unmarshal", never "invalid".
func decodeReportFast(p []byte) (*Report, bool) {
	d := newFastDec(p)
	// Report and Reading in one allocation: most reports of meters carry a reading.
	rr := new(struct {
		r  Report
		rd Reading
	})
	r := &rr.r
	n := d.head(5)
	const required = 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<9
	seen, k := 0, 0
	for range min(n, 11) {
		k = d.key(k)
		if d.bad {
			return nil, false
		}
		seen |= 1 << k
		switch k {
		case 1:
			r.Dev = d.text()
		case 2:
			r.Epoch = uint32(d.uint(math.MaxUint32))
		case 3:
			r.RSeq = d.uint(math.MaxUint64)
		case 4:
			r.Boot = uint32(d.uint(math.MaxUint32))
		case 5:
			r.Time = d.uint(math.MaxUint64)
		case 6:
			d.expect(0x83)
			r.Man.Product = d.text()
			r.Man.Version = d.uint(math.MaxUint64)
			r.Man.Root = d.bytes()
		case 7:
			d.measurement(&r.Meas)
		case 8:
			r.State = uint32(d.uint(math.MaxUint32))
		case 9:
			d.segment(&r.Log)
		case 10:
			r.Nonce = d.nonEmptyBytes()
		case 11:
			d.expect(0xa2)
			d.expect(1)
			rr.rd.Litres = d.uint(math.MaxUint64)
			d.expect(2)
			rr.rd.Flags = uint32(d.uint(math.MaxUint32))
			r.Reading = &rr.rd
		default:
			d.fail()
		}
	}
	if n > 11 || seen&required != required || !d.done() {
		return nil, false
	}
	return r, true
}

func (d *fastDec) measurement(m *Measurement) {
	d.expect(0x84)
	m.Status = uint8(d.uint(math.MaxUint8))
	m.FilesChecked = uint32(d.uint(math.MaxUint32))
	m.LastCheck = d.uint(math.MaxUint64)
	n := d.arrayLen(3) // [path, kind]: 0x82 and two heads
	if n < 0 {
		return // null: nil slice
	}
	m.Bad = make([]Finding, n)
	for i := range m.Bad {
		f := &m.Bad[i]
		d.expect(0x82)
		f.Path = d.text()
		// Kinds are a handful of constants: share them rather than allocate.
		switch kind := d.textBytes(); string(kind) {
		case KindModified:
			f.Kind = KindModified
		case KindMissing:
			f.Kind = KindMissing
		case KindExtra:
			f.Kind = KindExtra
		case KindUnreadable:
			f.Kind = KindUnreadable
		default:
			f.Kind = string(kind)
		}
	}
}

func (d *fastDec) segment(s *Segment) {
	d.expect(0x85)
	s.First = d.uint(math.MaxUint64)
	if n := d.arrayLen(6); n >= 0 { // an entry takes at least 6 bytes
		s.Entries = make([]Entry, n)
		for i := range s.Entries {
			e := &s.Entries[i]
			d.expect(0x85)
			e.N = d.uint(math.MaxUint64)
			e.T = d.uint(math.MaxUint64)
			e.Type = uint16(d.uint(math.MaxUint16))
			e.Payload = d.bytes()
			e.Tag = d.bytes()
		}
	}
	s.N = d.uint(math.MaxUint64)
	s.Head = d.bytes()
	s.Seal = d.bytes()
}

// decodeAckFast decodes an ack payload in canonical form; ok = false means "use
// Unmarshal". dev is the device the caller expects: a matching Dev shares its string.
func decodeAckFast(p []byte, dev string) (*Ack, bool) {
	d := newFastDec(p)
	a := new(Ack)
	n := d.head(5)
	const required = 1<<1 | 1<<2 | 1<<3 | 1<<12
	seen, k := 0, 0
	for range min(n, 8) {
		k = d.key(k)
		if d.bad {
			return nil, false
		}
		seen |= 1 << k
		switch k {
		case 1:
			if b := d.textBytes(); string(b) == dev {
				a.Dev = dev
			} else {
				a.Dev = string(b)
			}
		case 2:
			a.Epoch = uint32(d.uint(math.MaxUint32))
		case 3:
			a.AckedRSeq = d.uint(math.MaxUint64)
		case 10:
			a.Nonce = d.nonEmptyBytes()
		case 12:
			d.expect(0x82)
			a.Anchor.N = d.uint(math.MaxUint64)
			a.Anchor.Head = d.bytes()
		case 13:
			a.Receipt = d.nonEmptyBytes()
		case 14:
			n := d.arrayLen(1)
			if n <= 0 { // omitempty: present means non-empty
				d.fail()
				break
			}
			a.Commands = make([][]byte, n)
			for i := range a.Commands {
				a.Commands[i] = d.bytes()
			}
		case 16:
			if a.Reject = d.text(); a.Reject == "" {
				d.fail()
			}
		default:
			d.fail()
		}
	}
	if n > 8 || seen&required != required || !d.done() {
		return nil, false
	}
	return a, true
}
