package wire

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

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

func encodeCose(tag uint64, alg int, kid, payload, sigOrMac []byte) []byte {
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
	m.Write(toBeSigned("MAC0", protected, payload))
	return m.Sum(nil)
}

func decodeCose(data []byte, wantTag uint64, wantAlg int, limit int) (kid, protected, payload, tag []byte, err error) {
	if len(data) > limit {
		return nil, nil, nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrOversize, len(data), limit)
	}
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

// KeyID is the kid fieldseal gives an Ed25519 public key: the first 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) []byte {
	sum := sha256.Sum256(pub)
	return sum[:8]
}
