package wire

import (
	"crypto/ed25519"
	"fmt"
)

// Ack is the server's answer to a report, a COSE_Mac0 under the downlink key T with
// kid = device id. A device checks MAC, Dev, Epoch and AckedRSeq before it prunes anything.
type Ack struct {
	Dev       string   `cbor:"1,keyasint"`
	Epoch     uint32   `cbor:"2,keyasint"`
	AckedRSeq uint64   `cbor:"3,keyasint"`
	Nonce     []byte   `cbor:"10,keyasint,omitempty"` // next nonce the device must echo
	Anchor    Anchor   `cbor:"12,keyasint"`           // what the server has verified: the device may prune ≤ Anchor.N
	Receipt   []byte   `cbor:"13,keyasint,omitempty"` // COSE_Sign1 anchor receipt
	Commands  [][]byte `cbor:"14,keyasint,omitempty"` // tokens, each a COSE_Mac0 under T
	Reject    string   `cbor:"16,keyasint,omitempty"` // set when the report was refused: its reason name
}

// Anchor is a verified point of a device's log: [n, h_n].
type Anchor struct {
	_    struct{} `cbor:",toarray"`
	N    uint64
	Head []byte
}

// SealAck encodes and MACs an ack under the downlink key. The payload is Marshal(a),
// written by the hand-written encoder (fastencode.go).
func SealAck(a *Ack, downlinkKey []byte) ([]byte, error) { return sealAck(a, downlinkKey, nil) }

// SealAckWith is SealAck under a prepared downlink key.
func SealAckWith(a *Ack, downlink *MACKey) ([]byte, error) { return sealAck(a, nil, downlink) }

// OpenAck verifies and decodes an ack for device dev.
func OpenAck(data []byte, dev string, downlinkKey []byte) (*Ack, error) {
	m, err := ParseMac0(data, MaxMessageSize)
	if err != nil {
		return nil, err
	}
	if err := m.Verify(downlinkKey); err != nil {
		return nil, err
	}
	return decodeAck(m, dev)
}

// OpenAckWith is OpenAck under a prepared downlink key: a device keeps one for all its acks.
func OpenAckWith(data []byte, dev string, downlink *MACKey) (*Ack, error) {
	m, err := ParseMac0(data, MaxMessageSize)
	if err != nil {
		return nil, err
	}
	if err := m.VerifyWith(downlink); err != nil {
		return nil, err
	}
	return decodeAck(m, dev)
}

func decodeAck(m *Maced, dev string) (*Ack, error) {
	// Fast path for canonical payloads, Unmarshal for the rest (fastdecode.go).
	a, ok := decodeAckFast(m.Payload, dev)
	if !ok {
		a = new(Ack)
		if err := Unmarshal(m.Payload, a); err != nil {
			return nil, err
		}
	}
	if a.Dev != dev || string(m.Kid) != dev {
		return nil, wrongDevice(fmt.Sprintf("malformed: ack for device %q, not %q", a.Dev, dev))
	}
	return a, nil
}

// Token is a single-use command from the server, a COSE_Mac0 under T with kid = device id.
type Token struct {
	Dev       string    `cbor:"1,keyasint"`
	Epoch     uint32    `cbor:"2,keyasint"`
	ID        []byte    `cbor:"3,keyasint"` // 16 random bytes; never accepted twice
	Action    string    `cbor:"4,keyasint"` // Token* actions
	UntilRSeq uint64    `cbor:"5,keyasint"` // valid while the device's rseq ≤ this
	Expires   uint64    `cbor:"6,keyasint"` // server unix time after which it is void
	Args      TokenArgs `cbor:"7,keyasint"`
}

// TokenArgs carries the action's parameters; unused fields are omitted.
type TokenArgs struct {
	WorkOrder      string `cbor:"1,keyasint,omitempty"`
	Technician     string `cbor:"2,keyasint,omitempty"`
	Manifest       []byte `cbor:"3,keyasint,omitempty"` // vendor-signed COSE_Sign1 manifest
	CheckInterval  uint32 `cbor:"4,keyasint,omitempty"`
	ReportInterval uint32 `cbor:"5,keyasint,omitempty"`
	Window         uint32 `cbor:"6,keyasint,omitempty"` // service window length, seconds
}

// Token actions.
const (
	TokenService  = "service"  // open a service window: cover events are expected, logged as service
	TokenClear    = "clear"    // clear latched tamper state after an inspection
	TokenManifest = "manifest" // install a higher-version manifest of the same product
	TokenConfig   = "config"   // change intervals
)

// SealToken encodes and MACs a token under the downlink key.
func SealToken(t *Token, downlinkKey []byte) ([]byte, error) {
	payload, err := Marshal(t)
	if err != nil {
		return nil, err
	}
	return Mac0(downlinkKey, []byte(t.Dev), payload), nil
}

// OpenToken verifies and decodes a token for device dev. Single use, expiry and epoch are
// the receiver's to check: they need its state.
func OpenToken(data []byte, dev string, downlinkKey []byte) (*Token, error) {
	m, err := ParseMac0(data, MaxMessageSize)
	if err != nil {
		return nil, err
	}
	if err := m.Verify(downlinkKey); err != nil {
		return nil, err
	}
	var t Token
	if err := Unmarshal(m.Payload, &t); err != nil {
		return nil, err
	}
	if t.Dev != dev || string(m.Kid) != dev {
		return nil, wrongDevice(fmt.Sprintf("malformed: token for device %q, not %q", t.Dev, dev))
	}
	if len(t.ID) != 16 {
		return nil, fmt.Errorf("%w: token id is %d bytes", ErrMalformed, len(t.ID))
	}
	return &t, nil
}

// Receipt is the server's signed statement that it verified a device's log up to N with
// head Head (fschain.md, "Anchor receipt"): COSE_Sign1 over [dev, epoch, n, h_n, server_time].
type Receipt struct {
	_     struct{} `cbor:",toarray"`
	Dev   string
	Epoch uint32
	N     uint64
	Head  []byte
	Time  uint64 // server unix seconds
}

// SignReceipt signs a receipt with the server's Ed25519 key.
func SignReceipt(r *Receipt, serverKey ed25519.PrivateKey) []byte {
	return Sign1(serverKey, KeyID(serverKey.Public().(ed25519.PublicKey)), MustMarshal(r))
}

// OpenReceipt verifies a receipt against the server's public key and decodes it.
func OpenReceipt(data []byte, serverPub ed25519.PublicKey) (*Receipt, error) {
	s, err := ParseSign1(data, MaxMessageSize)
	if err != nil {
		return nil, err
	}
	if string(s.Kid) != string(KeyID(serverPub)) {
		return nil, fmt.Errorf("%w: receipt signed by key %x", ErrUnknownKey, s.Kid)
	}
	if err := s.Verify(serverPub); err != nil {
		return nil, err
	}
	var r Receipt
	if err := Unmarshal(s.Payload, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// wrongDevice is an authentic downlink for another device: it reads as before
// ("malformed: …") and matches both ErrMalformed and ErrWrongDevice.
type wrongDevice string

func (e wrongDevice) Error() string { return string(e) }

func (e wrongDevice) Is(target error) bool { return target == ErrMalformed || target == ErrWrongDevice }
