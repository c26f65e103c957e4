package server

import (
	"errors"
	"fmt"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// Rejection reasons. Stable names: logs, metrics, audit records, API answers and docs use
// them verbatim. The FS-chain names are fschain's (gap, reorder, rollback, fork,
// forged-entry, head-mismatch, bad-seal).
const (
	ReasonMalformed     = "malformed"      // not a COSE_Mac0 report (wire.ErrMalformed)
	ReasonOversize      = "oversize"       // over 16 KiB (wire.ErrOversize)
	ReasonUnsupported   = "unsupported"    // algorithm or header we do not accept (wire.ErrUnsupported)
	ReasonUnknownDevice = "unknown-device" // kid names no provisioned device
	ReasonBadMAC        = "bad-mac"        // MAC does not verify under the device's R (wire.ErrBadMAC)
	ReasonWrongEpoch    = "wrong-epoch"    // epoch is not the device's current one
	ReasonReplay        = "replay"         // rseq not above the last accepted one
	ReasonStaleNonce    = "stale-nonce"    // nonce is not one of the two latest the server sent
	ReasonWrongManifest = "wrong-manifest" // product/version/root is not what the device must run
	ReasonConflict      = "conflict"       // another replica advanced the anchor first: resend
	ReasonUnavailable   = "unavailable"    // shutting down or storage failing: resend later
)

// RejectError is a report rejection: its stable Reason and a human Detail.
type RejectError struct {
	Reason string
	Detail string
}

func (e *RejectError) Error() string {
	if e.Detail == "" {
		return e.Reason
	}
	return e.Reason + ": " + e.Detail
}

func reject(reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Reason returns the stable reason name carried by err ("" for nil).
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	var ve *fschain.VerifyError
	if errors.As(err, &ve) {
		return ve.Name
	}
	if n := wire.ErrorName(err); n != "" {
		return n
	}
	return ReasonMalformed
}

// wireReject maps a wire decoding error to a rejection named after it.
func wireReject(err error) *RejectError {
	reason := wire.ErrorName(err)
	if reason == "" {
		reason = ReasonMalformed
	}
	return &RejectError{Reason: reason, Detail: err.Error()}
}

// tamperReasons are rejections that prove the device (not the network) is compromised:
// they move it to tampered (fschain.md, threats D11–D13).
var tamperReasons = map[string]bool{
	fschain.NameForgedEntry: true, fschain.NameBadSeal: true, fschain.NameRollback: true, fschain.NameFork: true,
}

// suspectReasons move the device to suspect.
var suspectReasons = map[string]bool{
	fschain.NameGap: true, fschain.NameReorder: true, fschain.NameHeadMismatch: true,
}

// maxRejections is how many authenticated rejections in a row make a device suspect.
const maxRejections = 3
