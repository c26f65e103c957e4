package wire

import "fmt"

// Report is what a device sends (protocol.md, "Report"), as the payload of a COSE_Mac0
// under the uplink key R with kid = device id.
type Report struct {
	Dev     string      `cbor:"1,keyasint"`
	Epoch   uint32      `cbor:"2,keyasint"`
	RSeq    uint64      `cbor:"3,keyasint"` // strictly increasing across reboots, persisted before sending
	Boot    uint32      `cbor:"4,keyasint"` // boot count
	Time    uint64      `cbor:"5,keyasint"` // device seconds, untrusted
	Man     ManifestRef `cbor:"6,keyasint"`
	Meas    Measurement `cbor:"7,keyasint"`
	State   uint32      `cbor:"8,keyasint"` // State* flags
	Log     Segment     `cbor:"9,keyasint"`
	Nonce   []byte      `cbor:"10,keyasint,omitempty"` // latest server nonce received
	Reading *Reading    `cbor:"11,keyasint,omitempty"`
}

// ManifestRef names the manifest a device enforces: [product, version, root].
type ManifestRef struct {
	_       struct{} `cbor:",toarray"`
	Product string
	Version uint64
	Root    []byte
}

// Measurement is the result of the device's latest check: [status, files_checked, last_check_time, bad].
type Measurement struct {
	_            struct{} `cbor:",toarray"`
	Status       uint8    // MeasOK, MeasMismatch, MeasUnchecked
	FilesChecked uint32
	LastCheck    uint64
	Bad          []Finding
}

// Measurement status values.
const (
	MeasOK        uint8 = 0
	MeasMismatch  uint8 = 1
	MeasUnchecked uint8 = 2
)

// Finding is one file that does not match the manifest: [path, kind].
type Finding struct {
	_    struct{} `cbor:",toarray"`
	Path string
	Kind string // Kind* values
}

// Finding kinds, shared by `fieldseal verify`, the guard, the agent and the server.
const (
	KindModified   = "modified"
	KindMissing    = "missing"
	KindExtra      = "extra"
	KindUnreadable = "unreadable"
)

// Reading is a meter's register and flow flags.
type Reading struct {
	Litres uint64 `cbor:"1,keyasint"` // cumulative register
	Flags  uint32 `cbor:"2,keyasint"` // Flow* flags
}

// Flow flags of a Reading.
const (
	FlowReverse uint32 = 1
	FlowLeak    uint32 = 2
	FlowBurst   uint32 = 4
	FlowDry     uint32 = 8
)

// State flags of a report (key 8).
const (
	StateCodeMismatch  uint32 = 1
	StateCoverOpenNow  uint32 = 2
	StateCoverWasOpen  uint32 = 4
	StateMagnet        uint32 = 8
	StateServiceMode   uint32 = 16
	StateRefusingCode  uint32 = 32
	StateLogOverflow   uint32 = 64
	StateTamperLatched uint32 = 128
)

// SealReport encodes r and MACs it under the uplink key. The payload is Marshal(r),
// written by the hand-written encoder (fastencode.go).
func SealReport(r *Report, uplinkKey []byte) ([]byte, error) { return sealReport(r, uplinkKey, nil) }

// SealReportWith is SealReport under a prepared uplink key: a device sealing many reports
// does not rebuild the HMAC state for each.
func SealReportWith(r *Report, uplink *MACKey) ([]byte, error) { return sealReport(r, nil, uplink) }

// ParseReport decodes a report without verifying its MAC; the caller looks up the key by
// m.Kid, then calls OpenReport. Splitting the two keeps key lookup out of this package.
func ParseReport(data []byte) (*Maced, error) { return ParseMac0(data, MaxMessageSize) }

// OpenReport verifies m under the uplink key and decodes the report, which must name the
// same device as the kid.
func OpenReport(m *Maced, uplinkKey []byte) (*Report, error) {
	if err := m.Verify(uplinkKey); err != nil {
		return nil, err
	}
	return decodeReport(m)
}

// OpenReportWith is OpenReport under a prepared uplink key.
func OpenReportWith(m *Maced, uplink *MACKey) (*Report, error) {
	if err := m.VerifyWith(uplink); err != nil {
		return nil, err
	}
	return decodeReport(m)
}

func decodeReport(m *Maced) (*Report, error) {
	// Canonical payloads (all our encoder makes) take the hand-written path; anything
	// else is decided by Unmarshal exactly as before (fastdecode.go).
	r, ok := decodeReportFast(m.Payload)
	if !ok {
		r = new(Report)
		if err := Unmarshal(m.Payload, r); err != nil {
			return nil, err
		}
	}
	if r.Dev != string(m.Kid) {
		return nil, fmt.Errorf("%w: report names device %q under kid %q", ErrMalformed, r.Dev, m.Kid)
	}
	return r, nil
}
