package wire

// RepeatPayload is the payload of a repeat entry (D24): Count more entries of Type (e.g.
// cover-open) happened between First and Last (device time) and were counted instead of
// logged one by one.
type RepeatPayload struct {
	Type  uint16 `cbor:"1,keyasint"`
	Count uint64 `cbor:"2,keyasint"`
	First uint64 `cbor:"3,keyasint"`
	Last  uint64 `cbor:"4,keyasint"`
}

// BootFailedPayload is the payload of a boot-failed entry: the exception that stopped the
// guard's boot (its type and message, cut to 120 characters).
type BootFailedPayload struct {
	Exception string `cbor:"1,keyasint"`
	Message   string `cbor:"2,keyasint,omitempty"`
}
