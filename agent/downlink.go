package agent

import (
	"errors"
	"fmt"

	"github.com/fieldseal/fieldseal/wire"
)

// The stable names a bad-downlink entry carries (wire.BadDownlinkPayload.Why), the same on
// the agent and the MicroPython guard (docs/PROTOCOL.md, "Downlink rules").
const (
	WhyBadMAC         = "bad-mac"         // MAC under T does not verify
	WhyMalformed      = "malformed"       // not a COSE_Mac0 ack/token of this protocol
	WhyWrongDevice    = "wrong-device"    // kid or dev is another device's
	WhyWrongEpoch     = "wrong-epoch"     // epoch is not the device's
	WhyUnsentRSeq     = "unsent-rseq"     // acks report 0 or one never sent
	WhyAnchorAhead    = "anchor-ahead"    // anchor beyond the log's head
	WhyAnchorMismatch = "anchor-mismatch" // anchor head is not the stored head at n
	WhyBadReceipt     = "bad-receipt"     // receipt not signed by the server or not for the anchor
	WhyTokenReplay    = "token-replay"    // a spent token, outside an accepted ack
	WhyTokenExpired   = "token-expired"   // until_rseq is 0 or passed, or expires passed
	WhyUnknownAction  = "unknown-action"  // an action this device cannot carry out
	WhyBadManifest    = "bad-manifest"    // manifest token: not a valid manifest
	WhyWrongProduct   = "wrong-product"   // manifest token: another product
	WhyDowngrade      = "downgrade"       // manifest token: version not higher
)

// MaxBadDownlinks is how many bad-downlink entries a device logs between two accepted
// acks; further rejections are counted and logged as one entry (UnloggedWhy) with the next
// accepted ack (S13). The guard uses the same number.
const MaxBadDownlinks = 16

// UnloggedWhy is the bad-downlink payload that reports n rejections not logged one by one.
func UnloggedWhy(n uint32) string { return fmt.Sprintf("%d more rejected downlinks not logged", n) }

// ackWhy names an error of wire.OpenAckWith / wire.OpenToken.
func ackWhy(err error) string {
	switch {
	case errors.Is(err, wire.ErrBadMAC):
		return WhyBadMAC
	case errors.Is(err, wire.ErrWrongDevice):
		return WhyWrongDevice
	case errors.Is(err, wire.ErrOversize):
		return "oversize"
	case errors.Is(err, wire.ErrUnsupported):
		return "unsupported"
	}
	return WhyMalformed
}
