package wire

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// MaxMessageSize bounds every message a decoder accepts (protocol.md: oversize > 16 KiB is rejected).
const MaxMessageSize = 16 << 10

// MaxManifestSize bounds a manifest: it lists every file of an application.
const MaxManifestSize = 8 << 20

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	// RFC 8949 core deterministic encoding: everything we hash or MAC must encode one way only.
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF, // a duplicated key is an attack, not a typo
		IndefLength:       cbor.IndefLengthForbidden, // deterministic input only
		MaxNestedLevels:   16,
		MaxArrayElements:  1 << 17,
		MaxMapPairs:       1 << 10,
		TagsMd:            cbor.TagsAllowed,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v in core deterministic CBOR.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// MustMarshal is Marshal for values whose encoding cannot fail (our own fixed types).
func MustMarshal(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Unmarshal decodes exactly one CBOR item from data into v, rejecting trailing bytes,
// unknown fields, duplicate keys and indefinite lengths.
func Unmarshal(data []byte, v any) error {
	rest, err := decMode.UnmarshalFirst(data, v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return nil
}

// Errors with stable names. Every rejection fieldseal makes is reported by such a name
// in logs, metrics, API responses and docs alike.
var (
	ErrMalformed   = errors.New("malformed")     // not the CBOR/COSE structure expected
	ErrOversize    = errors.New("oversize")      // larger than the message limit
	ErrBadMAC      = errors.New("bad-mac")       // COSE_Mac0 tag does not verify
	ErrBadSig      = errors.New("bad-signature") // COSE_Sign1 signature does not verify
	ErrUnknownKey  = errors.New("unknown-key")   // kid names no key we know
	ErrUnsupported = errors.New("unsupported")   // algorithm or version we do not accept
	// ErrWrongDevice: an authentic downlink (ack, token) names another device; it also
	// matches ErrMalformed.
	ErrWrongDevice = errors.New("wrong-device")
)
