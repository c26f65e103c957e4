package fschain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/fieldseal/fieldseal/wire"
)

// On-storage formats (docs/PROTOCOL.md, "Evidence log (FS-chain v1)", "Storage"). All
// integers big-endian; CRC-32 is IEEE (zlib, binascii.crc32 in MicroPython).
//
// Log record, appended one after another to the log area:
//
//	"fr" | u64 n | u64 t | u16 type | u16 len | payload | tag[16] | u32 crc(all before)
//
// State slot (two of them, A and B):
//
//	"fs1s" | u64 gen | u32 epoch | u64 n | head[32] | key[32] | seal[32] |
//	u64 base_n | base_h[32] | u32 dropped | u8 len(dev) | dev | u32 crc(all before)
//
// followed by the device's own state (rseq, latched flags, spent tokens, service window,
// tamper summary: wire.DeviceState), authenticated under the slot's chain key:
//
//	"fsx2" | u32 len | ext | tag[16] | u32 crc("fsx2" … tag)
//	tag = HMAC(H("fs1/state" || K_{n+1}), "fs1/state" || lp(D) || u32(e) || u64(gen) || u64(n) || h_n || ext)[0:16]
//
// The CRC tells a torn write (the slot is invalid) from an edit (the CRC holds, the tag does
// not: tamper evidence). Older guards wrote "fsx1" | u32 len | ext | u32 crc, unauthenticated;
// it is read, flagged as unauthenticated, and rewritten as fsx2 by the next commit.

const (
	recMagic0, recMagic1 = 'f', 'r'
	recHeader            = 2 + 8 + 8 + 2 + 2
	recOverhead          = recHeader + TagSize + 4

	slotMagic = "fs1s"
	// Offsets into a slot.
	slotOffKey   = 4 + 8 + 4 + 8 + 32 // key then seal: the 64 bytes step 3 zeroes
	slotKeySeal  = 64
	slotFixedLen = slotOffKey + 32 + 32 + 8 + 32 + 4 + 1
)

var errBadRecord = errors.New("bad record")

func appendRecord(b []byte, e *wire.Entry) []byte {
	start := len(b)
	b = append(b, recMagic0, recMagic1)
	b = binary.BigEndian.AppendUint64(b, e.N)
	b = binary.BigEndian.AppendUint64(b, e.T)
	b = binary.BigEndian.AppendUint16(b, e.Type)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Payload)))
	b = append(b, e.Payload...)
	b = append(b, e.Tag...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// EncodeRecord is the log-area record of an entry.
func EncodeRecord(e wire.Entry) []byte { return appendRecord(nil, &e) }

// decodeRecord parses the record at the start of b and returns it with its length. The
// entry's slices alias b.
func decodeRecord(b []byte) (wire.Entry, int, error) {
	if len(b) < recOverhead || b[0] != recMagic0 || b[1] != recMagic1 {
		return wire.Entry{}, 0, errBadRecord
	}
	plen := int(binary.BigEndian.Uint16(b[20:22]))
	if plen > wire.MaxPayload || len(b) < recOverhead+plen {
		return wire.Entry{}, 0, errBadRecord
	}
	size := recOverhead + plen
	if crc32.ChecksumIEEE(b[:size-4]) != binary.BigEndian.Uint32(b[size-4:size]) {
		return wire.Entry{}, 0, errBadRecord
	}
	return wire.Entry{
		N:       binary.BigEndian.Uint64(b[2:10]),
		T:       binary.BigEndian.Uint64(b[10:18]),
		Type:    binary.BigEndian.Uint16(b[18:20]),
		Payload: b[recHeader : recHeader+plen : recHeader+plen],
		Tag:     b[recHeader+plen : recHeader+plen+TagSize : recHeader+plen+TagSize],
	}, size, nil
}

// DecodeRecords parses a log area: the valid records from the start, and the byte length
// they occupy. Anything after is a torn or corrupted tail.
func DecodeRecords(b []byte) (entries []wire.Entry, valid int) {
	for valid < len(b) {
		e, size, err := decodeRecord(b[valid:])
		if err != nil {
			break
		}
		entries = append(entries, e)
		valid += size
	}
	return entries, valid
}

// state is what a slot holds: fschain.md's {e, n, h_n, K_{n+1}, seal_n, base_n, base_h},
// plus the slot generation, the device id and the count of dropped routine entries.
type state struct {
	Ext     []byte // the device's own state (opaque here), "fsx2" trailer
	ExtAuth bool   // decode: the trailer is fsx2 and its tag verifies
	Gen     uint64
	Dev     string
	Epoch   uint32
	N       uint64
	Head    Hash
	Key     Key
	Seal    Hash
	BaseN   uint64
	BaseH   Hash
	Dropped uint32
}

func (s *state) encode() []byte {
	b := make([]byte, 0, slotFixedLen+len(s.Dev)+4)
	b = append(b, slotMagic...)
	b = binary.BigEndian.AppendUint64(b, s.Gen)
	b = binary.BigEndian.AppendUint32(b, s.Epoch)
	b = binary.BigEndian.AppendUint64(b, s.N)
	b = append(b, s.Head[:]...)
	b = append(b, s.Key[:]...)
	b = append(b, s.Seal[:]...)
	b = binary.BigEndian.AppendUint64(b, s.BaseN)
	b = append(b, s.BaseH[:]...)
	b = binary.BigEndian.AppendUint32(b, s.Dropped)
	b = append(b, byte(len(s.Dev)))
	b = append(b, s.Dev...)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	if s.Ext == nil {
		return b
	}
	start := len(b)
	b = append(b, extMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Ext)))
	b = append(b, s.Ext...)
	tag := s.extTag()
	b = append(b, tag[:]...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

const (
	extMagic       = "fsx2"
	extMagicLegacy = "fsx1"
	labelState     = "fs1/state"
	// MaxExt bounds the device state a slot carries.
	MaxExt = 4096
)

// extTag authenticates the device state under the slot's chain key K_{n+1}, bound to the
// device, epoch, generation and head: it cannot be moved to another slot or position.
func (s *state) extTag() [TagSize]byte {
	mk := sha256.Sum256(append([]byte(labelState), s.Key[:]...))
	m := hmac.New(sha256.New, mk[:])
	b := append([]byte(labelState), 0, 0)
	binary.BigEndian.PutUint16(b[len(labelState):], uint16(len(s.Dev)))
	b = append(b, s.Dev...)
	b = binary.BigEndian.AppendUint32(b, s.Epoch)
	b = binary.BigEndian.AppendUint64(b, s.Gen)
	b = binary.BigEndian.AppendUint64(b, s.N)
	b = append(b, s.Head[:]...)
	m.Write(b)
	m.Write(s.Ext)
	var t [TagSize]byte
	copy(t[:], m.Sum(nil))
	return t
}

// decodeExt reads the trailer after the chain state at b[off:]. No trailer: nil. A torn or
// malformed trailer makes the whole slot invalid (a write that did not finish).
func (s *state) decodeExt(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if len(b) < 8 {
		return fmt.Errorf("state slot: torn device state")
	}
	magic := string(b[:4])
	l := int(binary.BigEndian.Uint32(b[4:8]))
	if magic != extMagic && magic != extMagicLegacy || l > MaxExt {
		if allZero(b) {
			return nil
		}
		return fmt.Errorf("state slot: malformed device state")
	}
	size, crcFrom := 8+l+4, 0
	if magic == extMagic {
		size += TagSize
	} else {
		crcFrom = 8 // fsx1 has its CRC over the CBOR only
	}
	if len(b) < size || crc32.ChecksumIEEE(b[crcFrom:size-4]) != binary.BigEndian.Uint32(b[size-4:size]) {
		return fmt.Errorf("state slot: torn device state")
	}
	s.Ext = append([]byte(nil), b[8:8+l]...)
	if magic == extMagic {
		want := s.extTag()
		s.ExtAuth = hmac.Equal(want[:], b[8+l:8+l+TagSize])
	}
	return nil
}

func decodeState(b []byte) (*state, error) {
	if len(b) < slotFixedLen+4 || string(b[:4]) != slotMagic {
		return nil, fmt.Errorf("no state")
	}
	dl := int(b[slotFixedLen-1])
	size := slotFixedLen + dl + 4
	if len(b) < size || crc32.ChecksumIEEE(b[:size-4]) != binary.BigEndian.Uint32(b[size-4:size]) {
		return nil, fmt.Errorf("state slot fails its CRC")
	}
	s := &state{}
	s.Gen = binary.BigEndian.Uint64(b[4:12])
	s.Epoch = binary.BigEndian.Uint32(b[12:16])
	s.N = binary.BigEndian.Uint64(b[16:24])
	copy(s.Head[:], b[24:56])
	copy(s.Key[:], b[56:88])
	copy(s.Seal[:], b[88:120])
	s.BaseN = binary.BigEndian.Uint64(b[120:128])
	copy(s.BaseH[:], b[128:160])
	s.Dropped = binary.BigEndian.Uint32(b[160:164])
	s.Dev = string(b[slotFixedLen : slotFixedLen+dl])
	if !wire.ValidDeviceID(s.Dev) || s.BaseN > s.N {
		return nil, fmt.Errorf("state slot holds an invalid device id or base")
	}
	if err := s.decodeExt(b[size:]); err != nil {
		return nil, err
	}
	return s, nil
}
