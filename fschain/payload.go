package fschain

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/fieldseal/fieldseal/wire"
)

// Summary is a one-line human reading of an entry, for verdicts and `log show`:
// "check-fail: app/metrology.mpy modified". A payload that does not decode is shown as hex.
func Summary(e wire.Entry) string {
	name := wire.EntryName(e.Type)
	if e.Type >= wire.EntryApplication {
		return fmt.Sprintf("application 0x%04x: %d bytes", e.Type, len(e.Payload))
	}
	v, err := wire.DecodePayload(e.Type, e.Payload)
	if err != nil {
		return fmt.Sprintf("%s (type %d): undecodable payload %s", name, e.Type, shortHex(e.Payload))
	}
	d := guardSummary(v)
	switch p := v.(type) {
	case *wire.BootPayload:
		d = fmt.Sprintf("boot #%d, manifest v%d, %s", p.BootCount, p.ManifestVersion, orDash(p.Result))
		if p.ResetCause != "" {
			d += ", reset " + p.ResetCause
		}
	case *wire.CheckOKPayload:
		d = fmt.Sprintf("%d files match", p.Files)
	case *wire.CheckFailPayload:
		parts := make([]string, 0, len(p.Bad))
		for _, b := range p.Bad {
			parts = append(parts, b.Path+" "+b.Kind)
		}
		d = strings.Join(parts, ", ")
		if d == "" {
			d = "mismatch"
		}
	case *wire.CoverOpenPayload:
		d = "seen by " + orDash(p.Source)
	case *wire.EmptyPayload:
		return name
	case *wire.MagnetPayload:
		d = fmt.Sprintf("strength %d", p.Strength)
	case *wire.RefusedPayload:
		d = p.Path
		if p.Reason != "" {
			d += " (" + p.Reason + ")"
		}
	case *wire.ErasedPayload:
		d = strings.Join(p.Paths, ", ")
	case *wire.ServiceBeginPayload:
		d = fmt.Sprintf("token %s", shortHex(p.TokenID))
		if p.WorkOrder != "" {
			d += ", work order " + p.WorkOrder
		}
		if p.Technician != "" {
			d += ", technician " + p.Technician
		}
	case *wire.ServiceEndPayload:
		d = "seal " + orDash(p.SealNumber)
	case *wire.TamperClearedPayload:
		d = "token " + shortHex(p.TokenID)
	case *wire.ManifestUpdatePayload:
		d = fmt.Sprintf("v%d → v%d", p.Old, p.New)
	case *wire.RegisterPayload:
		d = fmt.Sprintf("%d litres", p.Litres)
		if p.Flags != 0 {
			d += fmt.Sprintf(", flags %#x", p.Flags)
		}
	case *wire.OverflowPayload:
		d = fmt.Sprintf("%d routine entries not stored", p.Dropped)
	case *wire.RecoveredPayload:
		d = p.What
	case *wire.BadDownlinkPayload:
		d = p.Why
	case *wire.RollbackPayload:
		d = p.What
	case *wire.LogCorruptPayload:
		d = p.What
	}
	return name + ": " + d
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortHex(b []byte) string {
	if len(b) > 8 {
		return hex.EncodeToString(b[:8]) + "…"
	}
	return hex.EncodeToString(b)
}
