package wire

import "crypto/sha256"

// Hand-written encoders for the Report and Ack payloads, the messages sealed per report
// (device) and per ack (server). They write exactly the bytes Marshal writes, which stays
// the reference (TestFastEncode*, FuzzEncodeFast): core deterministic encoding with
// shortest heads; keys in ascending order (all keys are below 24, one byte each, so
// length-first order is numeric order); omitempty fields left out when empty (nil or
// zero length, nil *Reading); every other nil slice as null and an empty one as an empty
// array or byte string; strings written as they are (the library does not check UTF-8
// when encoding). Each encoder has a twin that computes the encoded size first, so a seal
// allocates its message once, at its exact size, and encodes the payload in place.

// headLen is the size of a CBOR head with argument n in shortest form (appendHead).
func headLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

// bstrLen is the size of b as written by appendBstr (nil is null).
func bstrLen(b []byte) int {
	if b == nil {
		return 1
	}
	return headLen(uint64(len(b))) + len(b)
}

func tstrLen(s string) int { return headLen(uint64(len(s))) + len(s) }

func appendTstr(dst []byte, s string) []byte {
	return append(appendHead(dst, 0x60, uint64(len(s))), s...)
}

func appendUint(dst []byte, n uint64) []byte { return appendHead(dst, 0x00, n) }

// reportLen is len(appendReport(nil, r)).
func reportLen(r *Report) int {
	n := 1 + 9 // map head and the nine keys always present
	n += tstrLen(r.Dev) + headLen(uint64(r.Epoch)) + headLen(r.RSeq) + headLen(uint64(r.Boot)) + headLen(r.Time)
	n += 1 + tstrLen(r.Man.Product) + headLen(r.Man.Version) + bstrLen(r.Man.Root)
	m := &r.Meas
	n += 1 + headLen(uint64(m.Status)) + headLen(uint64(m.FilesChecked)) + headLen(m.LastCheck)
	if m.Bad == nil {
		n++
	} else {
		n += headLen(uint64(len(m.Bad)))
		for i := range m.Bad {
			n += 1 + tstrLen(m.Bad[i].Path) + tstrLen(m.Bad[i].Kind)
		}
	}
	n += headLen(uint64(r.State))
	s := &r.Log
	n += 1 + headLen(s.First)
	if s.Entries == nil {
		n++
	} else {
		n += headLen(uint64(len(s.Entries)))
		for i := range s.Entries {
			e := &s.Entries[i]
			n += 1 + headLen(e.N) + headLen(e.T) + headLen(uint64(e.Type)) + bstrLen(e.Payload) + bstrLen(e.Tag)
		}
	}
	n += headLen(s.N) + bstrLen(s.Head) + bstrLen(s.Seal)
	if len(r.Nonce) > 0 {
		n += 1 + bstrLen(r.Nonce)
	}
	if r.Reading != nil {
		n += 1 + 1 + 1 + headLen(r.Reading.Litres) + 1 + headLen(uint64(r.Reading.Flags))
	}
	return n
}

// appendReport appends the payload encoding of r (Marshal(r)) to dst.
func appendReport(dst []byte, r *Report) []byte {
	pairs := byte(9)
	if len(r.Nonce) > 0 {
		pairs++
	}
	if r.Reading != nil {
		pairs++
	}
	dst = append(dst, 0xa0|pairs, 1)
	dst = appendTstr(dst, r.Dev)
	dst = appendUint(append(dst, 2), uint64(r.Epoch))
	dst = appendUint(append(dst, 3), r.RSeq)
	dst = appendUint(append(dst, 4), uint64(r.Boot))
	dst = appendUint(append(dst, 5), r.Time)

	dst = append(dst, 6, 0x83) // ManifestRef: [product, version, root]
	dst = appendTstr(dst, r.Man.Product)
	dst = appendUint(dst, r.Man.Version)
	dst = appendBstr(dst, r.Man.Root)

	m := &r.Meas
	dst = append(dst, 7, 0x84) // Measurement: [status, files_checked, last_check, bad]
	dst = appendUint(dst, uint64(m.Status))
	dst = appendUint(dst, uint64(m.FilesChecked))
	dst = appendUint(dst, m.LastCheck)
	if m.Bad == nil {
		dst = append(dst, 0xf6)
	} else {
		dst = appendHead(dst, 0x80, uint64(len(m.Bad)))
		for i := range m.Bad {
			dst = append(dst, 0x82) // Finding: [path, kind]
			dst = appendTstr(dst, m.Bad[i].Path)
			dst = appendTstr(dst, m.Bad[i].Kind)
		}
	}

	dst = appendUint(append(dst, 8), uint64(r.State))

	s := &r.Log
	dst = append(dst, 9, 0x85) // Segment: [first, entries, n, head, seal]
	dst = appendUint(dst, s.First)
	if s.Entries == nil {
		dst = append(dst, 0xf6)
	} else {
		dst = appendHead(dst, 0x80, uint64(len(s.Entries)))
		for i := range s.Entries {
			e := &s.Entries[i]
			dst = append(dst, 0x85) // Entry: [n, t, type, payload, tag]
			dst = appendUint(dst, e.N)
			dst = appendUint(dst, e.T)
			dst = appendUint(dst, uint64(e.Type))
			dst = appendBstr(dst, e.Payload)
			dst = appendBstr(dst, e.Tag)
		}
	}
	dst = appendUint(dst, s.N)
	dst = appendBstr(dst, s.Head)
	dst = appendBstr(dst, s.Seal)

	if len(r.Nonce) > 0 {
		dst = appendBstr(append(dst, 10), r.Nonce)
	}
	if rd := r.Reading; rd != nil {
		dst = append(dst, 11, 0xa2, 1) // Reading: {1: litres, 2: flags}
		dst = appendUint(dst, rd.Litres)
		dst = appendUint(append(dst, 2), uint64(rd.Flags))
	}
	return dst
}

// ackLen is len(appendAck(nil, a)).
func ackLen(a *Ack) int {
	n := 1 + 4 // map head and the four keys always present
	n += tstrLen(a.Dev) + headLen(uint64(a.Epoch)) + headLen(a.AckedRSeq)
	n += 1 + headLen(a.Anchor.N) + bstrLen(a.Anchor.Head)
	if len(a.Nonce) > 0 {
		n += 1 + bstrLen(a.Nonce)
	}
	if len(a.Receipt) > 0 {
		n += 1 + bstrLen(a.Receipt)
	}
	if len(a.Commands) > 0 {
		n += 1 + headLen(uint64(len(a.Commands)))
		for _, c := range a.Commands {
			n += bstrLen(c)
		}
	}
	if a.Reject != "" {
		n += 1 + tstrLen(a.Reject)
	}
	return n
}

// appendAck appends the payload encoding of a (Marshal(a)) to dst.
func appendAck(dst []byte, a *Ack) []byte {
	pairs := byte(4)
	if len(a.Nonce) > 0 {
		pairs++
	}
	if len(a.Receipt) > 0 {
		pairs++
	}
	if len(a.Commands) > 0 {
		pairs++
	}
	if a.Reject != "" {
		pairs++
	}
	dst = append(dst, 0xa0|pairs, 1)
	dst = appendTstr(dst, a.Dev)
	dst = appendUint(append(dst, 2), uint64(a.Epoch))
	dst = appendUint(append(dst, 3), a.AckedRSeq)
	if len(a.Nonce) > 0 {
		dst = appendBstr(append(dst, 10), a.Nonce)
	}
	dst = append(dst, 12, 0x82) // Anchor: [n, head]
	dst = appendUint(dst, a.Anchor.N)
	dst = appendBstr(dst, a.Anchor.Head)
	if len(a.Receipt) > 0 {
		dst = appendBstr(append(dst, 13), a.Receipt)
	}
	if len(a.Commands) > 0 {
		dst = appendHead(append(dst, 14), 0x80, uint64(len(a.Commands)))
		for _, c := range a.Commands {
			dst = appendBstr(dst, c)
		}
	}
	if a.Reject != "" {
		dst = appendTstr(append(dst, 16), a.Reject)
	}
	return dst
}

// encodeReport is Marshal(r) through the hand-written encoder (Marshal for a nil r).
func encodeReport(r *Report) ([]byte, error) {
	if r == nil {
		return Marshal(r)
	}
	return appendReport(make([]byte, 0, reportLen(r)), r), nil
}

// encodeAck is Marshal(a) through the hand-written encoder (Marshal for a nil a).
func encodeAck(a *Ack) ([]byte, error) {
	if a == nil {
		return Marshal(a)
	}
	return appendAck(make([]byte, 0, ackLen(a)), a), nil
}

// beginMac0 allocates a COSE_Mac0 under kid dev with a payload of size bytes, and writes
// it up to and including the payload's head; the caller appends the payload at
// len(out) and then calls endMac0. Same bytes as encodeCose (tested through the seals).
func beginMac0(dev string, size int) []byte {
	out := make([]byte, 0, 2+1+len(protectedHMAC)+2+headLen(uint64(len(dev)))+len(dev)+headLen(uint64(size))+size+2+sha256.Size)
	out = append(out, 0xc0|tagMac0, 0x84)
	out = appendBstr(out, protectedHMAC)
	out = append(out, 0xa1, hdrKid)
	out = append(appendHead(out, 0x40, uint64(len(dev))), dev...) // kid = []byte(dev), never nil
	return appendHead(out, 0x40, uint64(size))
}

// endMac0 MACs payload (the tail of out) under k, or under key when k is nil, and appends
// the tag.
func endMac0(out, payload, key []byte, k *MACKey) []byte {
	var tag []byte
	if k != nil {
		tag = k.sum(protectedHMAC, payload)
	} else {
		tag = macStructure(key, protectedHMAC, payload)
	}
	return appendBstr(out, tag)
}

// sealReport is SealReport (k nil) and SealReportWith: the payload is encoded straight
// into the message.
func sealReport(r *Report, key []byte, k *MACKey) ([]byte, error) {
	if r == nil { // outside the fast encoder: exactly what SealReport always did
		return sealSlow(r, key, k)
	}
	size := reportLen(r)
	out := beginMac0(r.Dev, size)
	start := len(out)
	out = appendReport(out, r)
	if len(out)-start != size { // never (TestFastEncodeSizes); if it were, Marshal decides
		return sealSlow(r, key, k)
	}
	return endMac0(out, out[start:], key, k), nil
}

// sealAck is SealAck (k nil) and SealAckWith.
func sealAck(a *Ack, key []byte, k *MACKey) ([]byte, error) {
	if a == nil {
		return sealSlow(a, key, k)
	}
	size := ackLen(a)
	out := beginMac0(a.Dev, size)
	start := len(out)
	out = appendAck(out, a)
	if len(out)-start != size {
		return sealSlow(a, key, k)
	}
	return endMac0(out, out[start:], key, k), nil
}

// sealSlow is the reflective seal, Marshal then Mac0: what the seals did before
// fastencode.go, kept for values the fast encoders do not take and as the benchmarks'
// baseline. v is a *Report or an *Ack (a nil one dereferences, as it always did).
func sealSlow(v any, key []byte, k *MACKey) ([]byte, error) {
	payload, err := Marshal(v)
	if err != nil {
		return nil, err
	}
	var kid []byte
	switch v := v.(type) {
	case *Report:
		kid = []byte(v.Dev)
	case *Ack:
		kid = []byte(v.Dev)
	}
	if k != nil {
		return k.Mac0(kid, payload), nil
	}
	return Mac0(key, kid, payload), nil
}
