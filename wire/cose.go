package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// COSE (RFC 9052) structures fieldseal uses: COSE_Sign1 with EdDSA for manifests and
// anchor receipts, COSE_Mac0 with HMAC 256/256 for everything a device and server
// exchange. Protected header = {1: alg}; unprotected header = {4: kid}. No other
// header is accepted, so there is one way to encode each message.

const (
	tagSign1 = 18
	tagMac0  = 17

	AlgEdDSA      = -8 // COSE alg for Ed25519 signatures
	AlgHMAC256256 = 5  // COSE alg for HMAC-SHA-256 with a full 32-byte tag

	hdrAlg = 1
	hdrKid = 4
)

type coseMessage struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int]cbor.RawMessage
	Payload     []byte
	Tag         []byte // signature (Sign1) or MAC (Mac0)
}

// Signed is a parsed COSE_Sign1: the payload is untrusted until Verify returns nil.
type Signed struct {
	Kid       []byte
	Payload   []byte
	protected []byte
	sig       []byte
}

// Maced is a parsed COSE_Mac0: the payload is untrusted until Verify returns nil.
type Maced struct {
	Kid       []byte
	Payload   []byte
	protected []byte
	tag       []byte
}

func protectedFor(alg int) []byte { return MustMarshal(map[int]int{hdrAlg: alg}) }

// The two protected headers fieldseal accepts, {1: -8} and {1: 5}, encoded (equal to
// protectedFor: tested).
var (
	protectedEdDSA = []byte{0xa1, 0x01, 0x27}
	protectedHMAC  = []byte{0xa1, 0x01, 0x05}
)

func protectedBytes(alg int) []byte {
	switch alg {
	case AlgEdDSA:
		return protectedEdDSA
	case AlgHMAC256256:
		return protectedHMAC
	}
	return protectedFor(alg)
}

// appendBstr appends b as a CBOR byte string in core deterministic form (shortest head);
// a nil slice encodes as null, as the reflective encoder does.
func appendBstr(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 0xf6)
	}
	return append(appendHead(dst, 0x40, uint64(len(b))), b...)
}

// appendHead appends a CBOR head of major type mt (already shifted) with argument n, shortest form.
func appendHead(dst []byte, mt byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, mt|byte(n))
	case n <= 0xff:
		return append(dst, mt|24, byte(n))
	case n <= 0xffff:
		return append(dst, mt|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(dst, mt|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, mt|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// encodeCose writes tag(tag, [protected, {4: kid}, payload, sigOrMac]) directly; it is
// byte-identical to encodeCoseReflect (tested), without reflection or maps.
func encodeCose(tag uint64, alg int, kid, payload, sigOrMac []byte) []byte {
	prot := protectedBytes(alg)
	out := make([]byte, 0, 2+9+len(prot)+2+9+len(kid)+9+len(payload)+9+len(sigOrMac))
	out = appendHead(out, 0xc0, tag)
	out = append(out, 0x84)
	out = appendBstr(out, prot)
	out = append(out, 0xa1, hdrKid)
	out = appendBstr(out, kid)
	out = appendBstr(out, payload)
	return appendBstr(out, sigOrMac)
}

// encodeCoseReflect is the reference encoding through the CBOR library.
func encodeCoseReflect(tag uint64, alg int, kid, payload, sigOrMac []byte) []byte {
	msg := coseMessage{
		Protected:   protectedFor(alg),
		Unprotected: map[int]cbor.RawMessage{hdrKid: MustMarshal(kid)},
		Payload:     payload,
		Tag:         sigOrMac,
	}
	return MustMarshal(cbor.Tag{Number: tag, Content: msg})
}

func toBeSigned(context string, protected, payload []byte) []byte {
	return MustMarshal([]any{context, protected, []byte{}, payload})
}

// Sign1 signs payload with an Ed25519 key and returns a tagged COSE_Sign1.
func Sign1(priv ed25519.PrivateKey, kid, payload []byte) []byte {
	sig := ed25519.Sign(priv, toBeSigned("Signature1", protectedFor(AlgEdDSA), payload))
	return encodeCose(tagSign1, AlgEdDSA, kid, payload, sig)
}

// Mac0 MACs payload with key under HMAC 256/256 and returns a tagged COSE_Mac0.
func Mac0(key, kid, payload []byte) []byte {
	return encodeCose(tagMac0, AlgHMAC256256, kid, payload, macStructure(key, protectedFor(AlgHMAC256256), payload))
}

func macStructure(key, protected, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	var scratch [32]byte
	writeMacStructure(m, &scratch, protected, payload)
	return m.Sum(nil)
}

// writeMacStructure writes the RFC 9052 MAC_structure ["MAC0", protected, empty bstr,
// payload] in core deterministic CBOR to w without building it, using scratch for the
// heads: byte-identical to toBeSigned("MAC0", protected, payload) (tested).
func writeMacStructure(w io.Writer, scratch *[32]byte, protected, payload []byte) {
	b := append(scratch[:0], 0x84, 0x64, 'M', 'A', 'C', '0')
	if protected == nil {
		b = append(b, 0xf6)
	} else {
		b = appendHead(b, 0x40, uint64(len(protected)))
		if len(b)+len(protected)+10 <= len(scratch) {
			b = append(b, protected...)
		} else {
			w.Write(b)
			w.Write(protected)
			b = scratch[:0]
		}
	}
	b = append(b, 0x40)
	if payload == nil {
		w.Write(append(b, 0xf6))
		return
	}
	w.Write(appendHead(b, 0x40, uint64(len(payload))))
	w.Write(payload)
}

// MACKey is an HMAC-SHA-256 key prepared for repeated use: it keeps the SHA-256 states
// after the padded key blocks (what crypto/hmac computes on every New), about 300 bytes,
// and borrows hashers from a pool. A MACKey is for one goroutine at a time.
type MACKey struct {
	key          []byte
	inner, outer []byte // marshaled SHA-256 states after key⊕ipad and key⊕opad
	scratch      [32]byte
	out          [sha256.Size]byte
}

var sha256Pool = sync.Pool{New: func() any { return sha256.New() }}

// NewMACKey prepares key (any length, as crypto/hmac) for repeated use.
func NewMACKey(key []byte) *MACKey {
	k := &MACKey{key: append([]byte(nil), key...)}
	var pad [sha256.BlockSize]byte
	if len(key) > len(pad) {
		sum := sha256.Sum256(key)
		copy(pad[:], sum[:])
	} else {
		copy(pad[:], key)
	}
	h := sha256.New()
	for i := range pad {
		pad[i] ^= 0x36
	}
	h.Write(pad[:])
	k.inner = mustMarshalState(h)
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	h.Reset()
	h.Write(pad[:])
	k.outer = mustMarshalState(h)
	return k
}

func mustMarshalState(h hash.Hash) []byte {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

// Is reports whether k was made from key (not constant time: for cache checks between
// keys the caller holds, never for comparing against attacker input).
func (k *MACKey) Is(key []byte) bool { return k != nil && bytes.Equal(k.key, key) }

// sum computes HMAC-SHA-256 under k of the MAC_structure of protected and payload. The
// result is k.out: valid until the next use of k.
func (k *MACKey) sum(protected, payload []byte) []byte {
	h := sha256Pool.Get().(hash.Hash)
	defer sha256Pool.Put(h)
	u := h.(encoding.BinaryUnmarshaler)
	if err := u.UnmarshalBinary(k.inner); err != nil {
		panic(err)
	}
	writeMacStructure(h, &k.scratch, protected, payload)
	in := h.Sum(k.out[:0])
	if err := u.UnmarshalBinary(k.outer); err != nil {
		panic(err)
	}
	h.Write(in)
	return h.Sum(k.out[:0])
}

// Mac0 is Mac0 under k.
func (k *MACKey) Mac0(kid, payload []byte) []byte {
	return encodeCose(tagMac0, AlgHMAC256256, kid, payload, k.sum(protectedHMAC, payload))
}

func decodeCose(data []byte, wantTag uint64, wantAlg int, limit int) (kid, protected, payload, tag []byte, err error) {
	if len(data) > limit {
		return nil, nil, nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrOversize, len(data), limit)
	}
	if kid, protected, payload, tag, ok := decodeCoseFast(data, wantTag, wantAlg); ok {
		return kid, protected, payload, tag, nil
	}
	return decodeCoseSlow(data, wantTag, wantAlg)
}

// decodeCoseFast parses the one form fieldseal encodes, tag([protected, {4: kid}, payload,
// tag]) with the expected protected header bytes, by hand. Anything else (including every
// error) returns ok = false and goes through decodeCoseSlow, which decides exactly as before;
// whatever the fast path accepts, the slow path accepts with the same result.
func decodeCoseFast(data []byte, wantTag uint64, wantAlg int) (kid, protected, payload, tag []byte, ok bool) {
	if wantTag >= 24 || len(data) < 2 || data[0] != 0xc0|byte(wantTag) || data[1] != 0x84 {
		return nil, nil, nil, nil, false
	}
	prot, i, ok := readBstr(data, 2)
	want := protectedBytes(wantAlg)
	if !ok || string(prot) != string(want) || i+2 > len(data) || data[i] != 0xa1 || data[i+1] != hdrKid {
		return nil, nil, nil, nil, false
	}
	k, i, ok := readBstr(data, i+2)
	if !ok {
		return nil, nil, nil, nil, false
	}
	p, i, ok := readBstr(data, i)
	if !ok {
		return nil, nil, nil, nil, false
	}
	t, i, ok := readBstr(data, i)
	if !ok || i != len(data) {
		return nil, nil, nil, nil, false
	}
	// Copy out of data (callers may reuse it), as the CBOR decoder does, in one allocation.
	buf := make([]byte, len(k)+len(p)+len(t))
	n := copy(buf, k)
	n += copy(buf[n:], p)
	copy(buf[n:], t)
	kid = buf[:len(k):len(k)]
	payload = buf[len(k) : len(k)+len(p) : len(k)+len(p)]
	tag = buf[len(k)+len(p):]
	return kid, want, payload, tag, true
}

// readBstr reads a definite-length CBOR byte string at data[i:], returning it and the
// offset after it.
func readBstr(data []byte, i int) (b []byte, next int, ok bool) {
	if i >= len(data) || data[i]>>5 != 2 {
		return nil, 0, false
	}
	ai := data[i] & 0x1f
	i++
	var n uint64
	switch {
	case ai < 24:
		n = uint64(ai)
	case ai == 24 && i+1 <= len(data):
		n = uint64(data[i])
		i++
	case ai == 25 && i+2 <= len(data):
		n = uint64(data[i])<<8 | uint64(data[i+1])
		i += 2
	case ai == 26 && i+4 <= len(data):
		n = uint64(data[i])<<24 | uint64(data[i+1])<<16 | uint64(data[i+2])<<8 | uint64(data[i+3])
		i += 4
	default:
		return nil, 0, false
	}
	if n > uint64(len(data)-i) {
		return nil, 0, false
	}
	return data[i : i+int(n)], i + int(n), true
}

func decodeCoseSlow(data []byte, wantTag uint64, wantAlg int) (kid, protected, payload, tag []byte, err error) {
	var raw cbor.RawTag
	if err := Unmarshal(data, &raw); err != nil {
		return nil, nil, nil, nil, err
	}
	if raw.Number != wantTag {
		return nil, nil, nil, nil, fmt.Errorf("%w: CBOR tag %d, want %d", ErrMalformed, raw.Number, wantTag)
	}
	var msg coseMessage
	if err := Unmarshal(raw.Content, &msg); err != nil {
		return nil, nil, nil, nil, err
	}
	var hdr map[int]int
	if err := Unmarshal(msg.Protected, &hdr); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	if len(hdr) != 1 || hdr[hdrAlg] != wantAlg {
		return nil, nil, nil, nil, fmt.Errorf("%w: protected header %v, want {1: %d}", ErrUnsupported, hdr, wantAlg)
	}
	if len(msg.Unprotected) != 1 {
		return nil, nil, nil, nil, fmt.Errorf("%w: unprotected header must hold only kid", ErrMalformed)
	}
	kidRaw, ok := msg.Unprotected[hdrKid]
	if !ok {
		return nil, nil, nil, nil, fmt.Errorf("%w: no kid", ErrMalformed)
	}
	if err := Unmarshal(kidRaw, &kid); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: kid: %v", ErrMalformed, err)
	}
	if msg.Payload == nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: detached payload not supported", ErrMalformed)
	}
	return kid, msg.Protected, msg.Payload, msg.Tag, nil
}

// ParseSign1 decodes a COSE_Sign1 of at most limit bytes without verifying it.
func ParseSign1(data []byte, limit int) (*Signed, error) {
	kid, prot, payload, sig, err := decodeCose(data, tagSign1, AlgEdDSA, limit)
	if err != nil {
		return nil, err
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is %d bytes", ErrMalformed, len(sig))
	}
	return &Signed{Kid: kid, Payload: payload, protected: prot, sig: sig}, nil
}

// Verify checks the signature with pub.
func (s *Signed) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, toBeSigned("Signature1", s.protected, s.Payload), s.sig) {
		return ErrBadSig
	}
	return nil
}

// ParseMac0 decodes a COSE_Mac0 of at most limit bytes without verifying it.
func ParseMac0(data []byte, limit int) (*Maced, error) {
	kid, prot, payload, tag, err := decodeCose(data, tagMac0, AlgHMAC256256, limit)
	if err != nil {
		return nil, err
	}
	if len(tag) != sha256.Size {
		return nil, fmt.Errorf("%w: MAC is %d bytes", ErrMalformed, len(tag))
	}
	return &Maced{Kid: kid, Payload: payload, protected: prot, tag: tag}, nil
}

// Verify checks the MAC under key in constant time.
func (m *Maced) Verify(key []byte) error {
	if !hmac.Equal(macStructure(key, m.protected, m.Payload), m.tag) {
		return ErrBadMAC
	}
	return nil
}

// VerifyWith is Verify under a prepared key.
func (m *Maced) VerifyWith(k *MACKey) error {
	if !hmac.Equal(k.sum(m.protected, m.Payload), m.tag) {
		return ErrBadMAC
	}
	return nil
}

// KeyID is the kid fieldseal gives an Ed25519 public key: the first 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) []byte {
	sum := sha256.Sum256(pub)
	return sum[:8]
}
