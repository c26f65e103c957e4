package wire

// DeviceState is what a device keeps besides its evidence log and must survive a reboot:
// the report counter, the latched tamper flags, the spent token ids, the service window and
// the tamper summary. It is the state that decides tamper, so both device implementations
// (the Go agent and the MicroPython guard) keep it in the evidence log's A/B state slots,
// under a tag keyed by the current chain key (docs/PROTOCOL.md, "Storage"), never in a
// plain file. Deterministic CBOR map with small integer keys; keys 1–15 are those the guard
// has always kept, in its order. A reader ignores keys it does not know.
type DeviceState struct {
	Boot      uint32 `cbor:"1,keyasint,omitempty"` // boot count
	RSeq      uint64 `cbor:"2,keyasint,omitempty"` // last report counter used (persisted before the report leaves)
	AckedRSeq uint64 `cbor:"3,keyasint,omitempty"` // highest report the server acknowledged
	Nonce     []byte `cbor:"4,keyasint,omitempty"` // the server's nonce to echo
	Latched   uint32 `cbor:"5,keyasint,omitempty"` // State* flags held until a clear token
	// UsedTokens are the spent token ids with their until_rseq, newest last (bounded).
	UsedTokens []UsedToken `cbor:"6,keyasint,omitempty"`
	// ServiceUntil is the device time at which an open service window closes (0: none).
	ServiceUntil   uint64 `cbor:"7,keyasint,omitempty"`
	CheckInterval  uint32 `cbor:"8,keyasint,omitempty"`  // set by a config token
	ReportInterval uint32 `cbor:"9,keyasint,omitempty"`  // set by a config token
	ManifestVer    uint64 `cbor:"10,keyasint,omitempty"` // guard: version of the enforced manifest
	CoverOpen      bool   `cbor:"11,keyasint,omitempty"` // guard: cover level last seen
	LastCheck      uint64 `cbor:"12,keyasint,omitempty"` // guard: device time of the last check
	UplinkKey      []byte `cbor:"13,keyasint,omitempty"` // guard: R (the agent keeps its bundle copy)
	DownlinkKey    []byte `cbor:"14,keyasint,omitempty"` // guard: T
	BadDownlinks   uint32 `cbor:"15,keyasint,omitempty"` // rejected downlinks since the last good ack
	// Summary is the latched tamper summary: kept until a clear token, so that a device
	// whose tamper entries were acknowledged and pruned still says so at check-in.
	Summary *TamperSummary `cbor:"16,keyasint,omitempty"`
	// Service bounds an open window by what the renter cannot rewind (threat D25).
	Service *ServiceWindow `cbor:"17,keyasint,omitempty"`
	// Seen is the newest entry n this state accounts for: entries recovery completes beyond
	// it (a copied-back slot) are applied to the flags and the summary again.
	Seen uint64 `cbor:"18,keyasint,omitempty"`
	// Receipt is the latest anchor receipt (the agent; the guard keeps its own file).
	Receipt []byte `cbor:"19,keyasint,omitempty"`
	// StampsDigest is the SHA-256 of the agent's record of the sealed files' identities
	// (inode, size, times) kept between runs (the agent only).
	StampsDigest []byte `cbor:"20,keyasint,omitempty"`
}

// UsedToken is a spent token: [id, until_rseq].
type UsedToken struct {
	_     struct{} `cbor:",toarray"`
	ID    []byte
	Until uint64
}

// TamperSummary is the first tamper-class entry since the last clear token, and a count
// per tamper-class entry type.
type TamperSummary struct {
	FirstN    uint64            `cbor:"1,keyasint"`
	FirstType uint16            `cbor:"2,keyasint"`
	FirstT    uint64            `cbor:"3,keyasint"`
	FirstWhat string            `cbor:"4,keyasint,omitempty"` // e.g. "app/metrology.mpy modified"
	Counts    map[uint16]uint32 `cbor:"5,keyasint,omitempty"`
	LastN     uint64            `cbor:"6,keyasint,omitempty"` // newest tamper entry
}

// ServiceWindow is an open service window as the device holds it. It closes at device time
// ServiceUntil, at the first reboot (Boot and BootID no longer match) and when the
// monotonic clock since boot passes UptimeUntil, whichever comes first: a clock reset
// cannot stretch it.
type ServiceWindow struct {
	Boot        uint32 `cbor:"1,keyasint"`           // boot count when it opened
	OpenedAt    uint64 `cbor:"2,keyasint,omitempty"` // device time when it opened
	UptimeUntil uint64 `cbor:"3,keyasint,omitempty"` // monotonic seconds since boot at which it closes
	BootID      string `cbor:"4,keyasint,omitempty"` // the agent: the OS boot id
	TokenID     []byte `cbor:"5,keyasint,omitempty"`
}

// NoteTamper adds a tamper-class entry to the summary (creating it at the first).
func (s *DeviceState) NoteTamper(n, t uint64, typ uint16, what string) {
	if s.Summary == nil {
		if len(what) > 120 {
			what = what[:120]
		}
		s.Summary = &TamperSummary{FirstN: n, FirstType: typ, FirstT: t, FirstWhat: what, Counts: map[uint16]uint32{}}
	}
	if s.Summary.Counts == nil {
		s.Summary.Counts = map[uint16]uint32{}
	}
	if s.Summary.Counts[typ] < ^uint32(0) {
		s.Summary.Counts[typ]++
	}
	if n > s.Summary.LastN {
		s.Summary.LastN = n
	}
}
