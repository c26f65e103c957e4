package wire

import (
	"fmt"
	"reflect"
)

// Entry payloads (fschain.md, "Entry types"): deterministic CBOR maps with small integer
// keys, encoded identically by the Go agent and the MicroPython guard. Every field is
// optional to a decoder; unknown keys are an error (one encoding per meaning).

// BootPayload is the payload of a boot entry.
type BootPayload struct {
	ResetCause      string `cbor:"1,keyasint,omitempty"` // power-on, watchdog, soft, deepsleep, hard
	BootCount       uint32 `cbor:"2,keyasint"`
	ManifestVersion uint64 `cbor:"3,keyasint"`
	Root            []byte `cbor:"4,keyasint,omitempty"`
	Result          string `cbor:"5,keyasint"` // ok | mismatch | unchecked
}

// CheckOKPayload is the payload of a check-ok entry.
type CheckOKPayload struct {
	Files      uint32 `cbor:"1,keyasint"`
	Root       []byte `cbor:"2,keyasint,omitempty"`
	DurationMS uint32 `cbor:"3,keyasint"`
}

// CheckFailPayload is the payload of a check-fail entry: what differed, file by file.
type CheckFailPayload struct {
	Bad   []BadFile `cbor:"1,keyasint"`
	Files uint32    `cbor:"2,keyasint"` // files checked
}

// BadFile is one file of a check-fail: [path, kind, expected digest prefix, seen digest prefix].
// Prefixes are 8 bytes; empty where there is nothing to show (missing, extra, unreadable).
type BadFile struct {
	_        struct{} `cbor:",toarray"`
	Path     string
	Kind     string // Kind* of report.go
	Expected []byte
	Seen     []byte
}

// CoverOpenPayload says how the opening was seen.
type CoverOpenPayload struct {
	Source string `cbor:"1,keyasint"` // CoverSource*
}

// Cover-open sources.
const (
	CoverSourceIRQ   = "irq"   // switch interrupt while powered
	CoverSourceLevel = "level" // switch found open at boot or on a poll
	CoverSourceLatch = "latch" // hardware tamper latch (opened while unpowered)
	// CoverSourceService marks an opening inside an authorised service window: logged for
	// the record, expected, and never latched as tamper.
	CoverSourceService = "service"
)

// MagnetPayload records a magnetic field on the meter.
type MagnetPayload struct {
	Strength uint32 `cbor:"1,keyasint"` // sensor units, or 1 for a plain flag
}

// RefusedPayload names what the guard refused to import or load.
type RefusedPayload struct {
	Path   string `cbor:"1,keyasint"`
	Reason string `cbor:"2,keyasint"` // modified, missing, extra, unreadable, not-in-manifest
}

// ErasedPayload lists what the erase policy deleted.
type ErasedPayload struct {
	Paths []string `cbor:"1,keyasint"`
}

// ServiceBeginPayload opens an authorised service window.
type ServiceBeginPayload struct {
	TokenID    []byte `cbor:"1,keyasint"`
	WorkOrder  string `cbor:"2,keyasint,omitempty"`
	Technician string `cbor:"3,keyasint,omitempty"`
}

// ServiceEndPayload closes it, with the physical seal fitted.
type ServiceEndPayload struct {
	SealNumber string `cbor:"1,keyasint,omitempty"`
}

// TamperClearedPayload records a clear token being applied.
type TamperClearedPayload struct {
	TokenID []byte `cbor:"1,keyasint"`
}

// ManifestUpdatePayload records a manifest replaced by a higher version.
type ManifestUpdatePayload struct {
	Old uint64 `cbor:"1,keyasint"`
	New uint64 `cbor:"2,keyasint"`
}

// RegisterPayload is a signed billing read.
type RegisterPayload struct {
	Litres uint64 `cbor:"1,keyasint"`
	Flags  uint32 `cbor:"2,keyasint,omitempty"`
}

// OverflowPayload counts routine entries not stored while the log was full.
type OverflowPayload struct {
	Dropped uint32 `cbor:"1,keyasint"`
}

// RecoveredPayload says what crash recovery found at boot.
type RecoveredPayload struct {
	What string `cbor:"1,keyasint"`
}

// BadDownlinkPayload says why an ack, command or token was rejected.
type BadDownlinkPayload struct {
	Why string `cbor:"1,keyasint"`
}

// RollbackPayload says what recovery found that only a rolled-back or edited state slot can
// explain: the slot's n, and the n the verifying records in the log reached.
type RollbackPayload struct {
	What  string `cbor:"1,keyasint"`
	SlotN uint64 `cbor:"2,keyasint,omitempty"`
	LogN  uint64 `cbor:"3,keyasint,omitempty"`
}

// LogCorruptPayload says which committed entries the device could not read back and gave up.
type LogCorruptPayload struct {
	What  string `cbor:"1,keyasint"`
	Lost  uint64 `cbor:"2,keyasint,omitempty"` // entries given up
	BaseN uint64 `cbor:"3,keyasint,omitempty"` // the base before: entries BaseN+1 .. BaseN+Lost
}

// EmptyPayload is the payload of entries that carry nothing (cover-close): the empty map.
type EmptyPayload struct{}

// payloadTypes is the one table from entry type to payload struct. Every package that
// reads or writes an entry payload goes through NewPayload, DecodePayload or
// EncodePayload; internal/vocabulary's test fails if another package grows its own.
var payloadTypes = map[uint16]func() any{
	EntryBoot:             func() any { return &BootPayload{} },
	EntryCheckOK:          func() any { return &CheckOKPayload{} },
	EntryCheckFail:        func() any { return &CheckFailPayload{} },
	EntryCoverOpen:        func() any { return &CoverOpenPayload{} },
	EntryCoverClose:       func() any { return &EmptyPayload{} },
	EntryMagnet:           func() any { return &MagnetPayload{} },
	EntryRefused:          func() any { return &RefusedPayload{} },
	EntryErased:           func() any { return &ErasedPayload{} },
	EntryServiceBegin:     func() any { return &ServiceBeginPayload{} },
	EntryServiceEnd:       func() any { return &ServiceEndPayload{} },
	EntryTamperCleared:    func() any { return &TamperClearedPayload{} },
	EntryManifestUpdate:   func() any { return &ManifestUpdatePayload{} },
	EntryRegister:         func() any { return &RegisterPayload{} },
	EntryOverflow:         func() any { return &OverflowPayload{} },
	EntryRecovered:        func() any { return &RecoveredPayload{} },
	EntryBadDownlink:      func() any { return &BadDownlinkPayload{} },
	EntryRollbackDetected: func() any { return &RollbackPayload{} },
	EntryLogCorrupt:       func() any { return &LogCorruptPayload{} },
	EntryBootFailed:       func() any { return &BootFailedPayload{} },
	EntryRepeat:           func() any { return &RepeatPayload{} },
}

// NewPayload returns a pointer to the zero payload struct of an entry type, or nil for
// application and unknown types.
func NewPayload(typ uint16) any {
	if f := payloadTypes[typ]; f != nil {
		return f()
	}
	return nil
}

// DecodePayload decodes an entry payload into its typed struct (a pointer to one of the
// *Payload types above). Application types (≥ 0x8000) come back as the raw []byte;
// unknown types are an ErrUnsupported error. An empty payload decodes to the zero struct.
func DecodePayload(typ uint16, b []byte) (any, error) {
	v := NewPayload(typ)
	if v == nil {
		if typ >= EntryApplication {
			return b, nil
		}
		return nil, fmt.Errorf("%w: unknown entry type %d", ErrUnsupported, typ)
	}
	if len(b) == 0 {
		return v, nil
	}
	if err := Unmarshal(b, v); err != nil {
		return nil, err
	}
	return v, nil
}

// EncodePayload encodes the payload of an entry of type typ; v must be that type's
// payload struct (or a pointer to it), or a []byte for application types.
func EncodePayload(typ uint16, v any) ([]byte, error) {
	if typ >= EntryApplication {
		b, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("%w: application entry %#x takes raw bytes, not %T", ErrUnsupported, typ, v)
		}
		return b, nil
	}
	want := NewPayload(typ)
	if want == nil {
		return nil, fmt.Errorf("%w: unknown entry type %d", ErrUnsupported, typ)
	}
	if reflect.TypeOf(v) != reflect.TypeOf(want) && reflect.TypeOf(v) != reflect.TypeOf(want).Elem() {
		return nil, fmt.Errorf("%w: a %s entry carries %T, not %T", ErrUnsupported, EntryName(typ), want, v)
	}
	return Marshal(v)
}
