package manifest

import (
	"errors"
	"strings"
	"testing"
)

// A bytecode module as mpy-cross v6 writes it: header, 1 qstr ("a.py"), no objects, one
// raw code of 3 bytes without children.
var tinyMpy = []byte{'M', 6, 0, 31, 0x01, 0x00, 0x08, 'a', '.', 'p', 'y', 0, 0x18, 1, 2, 3}

func TestParseMpy(t *testing.T) {
	h, err := ParseMpy(tinyMpy)
	if err != nil || !h.Walked || h.Native || h.Version != 6 || h.SmallIntBits != 31 || h.NQstr != 1 || h.ArchName() != "bytecode" {
		t.Fatalf("tiny: %+v %v", h, err)
	}
	cases := []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrMpyTruncated, ""},
		{"elf", []byte("\x7fELF"), ErrMpyForeign, ""},
		{"python source", []byte("import os\n"), ErrMpyForeign, ""},
		{"header only", []byte{'M', 6, 0}, ErrMpyTruncated, ""},
		{"v5", []byte{'M', 5, 0, 31, 32, 0}, ErrMpyVersion, "MicroPython 1.12–1.18"},
		{"v3", []byte{'M', 3, 0, 31}, ErrMpyVersion, "≤ 1.11"},
		{"v7", []byte{'M', 7, 0, 31}, ErrMpyVersion, "newer"},
		{"reserved bit", []byte{'M', 6, 0x80, 31, 0, 0, 0}, ErrMpyMalformed, "reserved"},
		{"small int bits 0", []byte{'M', 6, 0, 0, 0, 0, 0}, ErrMpyMalformed, "small-int"},
		{"small int bits 200", []byte{'M', 6, 0, 200, 0, 0, 0}, ErrMpyMalformed, "small-int"},
		{"debug arch", []byte{'M', 6, 13 << 2, 31, 0, 0, 0}, ErrMpyMalformed, "architecture 13"},
		{"huge qstr count", []byte{'M', 6, 0, 31, 0xff, 0xff, 0x7f, 0}, ErrMpyTruncated, ""},
		{"overlong varint", []byte{'M', 6, 0, 31, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01}, ErrMpyMalformed, "too long"},
		{"unknown constant", []byte{'M', 6, 0, 31, 0, 1, 99}, ErrMpyMalformed, "constant type 99"},
		{"trailing bytes", append(append([]byte(nil), tinyMpy...), 0), ErrMpyMalformed, "after the end"},
		{"raw code longer than file", []byte{'M', 6, 0, 31, 0, 0, 0x80 | 1, 0x00}, ErrMpyTruncated, ""},
	}
	for _, tc := range cases {
		_, err := ParseMpy(tc.in)
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrBadMpy) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
	// Native: by header (armv7emsp as mpy-cross -march=armv7emsp writes it) and by raw code.
	if h, err := ParseMpy([]byte{'M', 6, 0x1c, 31, 0, 0, 0x09}); err != nil || !h.Native || h.ArchName() != "armv7emsp" {
		t.Errorf("armv7emsp: %+v %v", h, err)
	}
	if h, err := ParseMpy([]byte{'M', 6, 0x40 | 11<<2 | 3, 31, 0x03, 0, 0, 0x09}); err != nil || !h.Native || h.ArchFlags != 3 || h.SubVersion != 3 {
		t.Errorf("rv32imc with arch flags: %+v %v", h, err)
	}
	if h, err := ParseMpy([]byte{'M', 6, 0, 31, 0, 0, 0x01}); err != nil || !h.Native {
		t.Errorf("native raw code under a bytecode header: %+v %v", h, err)
	}
	// Constants of every kind, nested tuples and a child raw code.
	full := []byte{'M', 6, 3, 31, 0x00, 0x06,
		objNone, objTrue, objEllipsis,
		objStr, 2, 'h', 'i', 0,
		objInt, 3, '1', '2', '3',
		objTuple, 2, objFloat, 3, '1', '.', '5', objTuple, 1, objBytes, 0, 0,
		0x0c, 0xaa, 1, 0x08, 0xbb}
	if h, err := ParseMpy(full); err != nil || !h.Walked || h.NObj != 6 || h.SubVersion != 3 {
		t.Errorf("full: %+v %v", h, err)
	}
}

func TestParseMpyDepthBounded(t *testing.T) {
	b := []byte{'M', 6, 0, 31, 0, 1}
	for i := 0; i < 10000; i++ {
		b = append(b, objTuple, 1)
	}
	if _, err := ParseMpy(append(b, objNone, 0x00)); !errors.Is(err, ErrMpyMalformed) {
		t.Fatalf("deep tuples: %v", err)
	}
	b = []byte{'M', 6, 0, 31, 0, 0}
	for i := 0; i < 10000; i++ {
		b = append(b, 0x04, 1) // raw code of 0 bytes with one child
	}
	if _, err := ParseMpy(append(b, 0x00)); !errors.Is(err, ErrMpyMalformed) {
		t.Fatalf("deep raw codes: %v", err)
	}
}
