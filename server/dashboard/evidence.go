package dashboard

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// Evidence in sentences: what a verified log entry or an audit record says, written for
// the operator who reads it at a glance. Never raw JSON: fields are named in words, digest
// prefixes shortened, times in UTC.

// line is one row of a device's evidence or history: when, a sentence, the reason name
// (linked to its meaning), and, for grouped rejections, how many and over what span.
type line struct {
	At     time.Time
	Until  time.Time // grouped: the last one
	Count  int       // grouped: how many (0 or 1: one)
	Class  string    // "tamper", "service" or ""
	Text   string
	Reason Reason
	Actor  string
	N      uint64 // the log entry, for entries
}

// Span is the grouped rows' time range, "15:46–16:20".
func (l line) Span() string {
	if l.Count < 2 {
		return ""
	}
	return l.At.UTC().Format("15:04") + "–" + l.Until.UTC().Format("15:04")
}

func prefix(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	return hex.EncodeToString(b[:min(len(b), 4)]) + "…"
}

// entrySentence says what a verified log entry records.
func entrySentence(e store.Event) string {
	v, err := wire.DecodePayload(e.Type, e.Payload)
	if err != nil {
		return wire.EntryName(e.Type) + " entry (payload not readable: " + err.Error() + ")."
	}
	switch x := v.(type) {
	case *wire.CheckFailPayload:
		var parts []string
		for _, b := range x.Bad {
			switch b.Kind {
			case "modified":
				parts = append(parts, fmt.Sprintf("%s modified — sealed sha256 %s, found %s", b.Path, prefix(b.Expected), prefix(b.Seen)))
			case "missing":
				parts = append(parts, b.Path+" missing — it is in the sealed manifest but was not on the device")
			case "extra":
				parts = append(parts, b.Path+" added — a file that is not in the sealed manifest")
			default:
				parts = append(parts, fmt.Sprintf("%s %s", b.Path, b.Kind))
			}
		}
		return fmt.Sprintf("File check failed (%d files checked): %s.", x.Files, strings.Join(parts, "; "))
	case *wire.CoverOpenPayload:
		how := map[string]string{wire.CoverSourceIRQ: "the switch fired while powered", wire.CoverSourceLevel: "found open at boot or on a poll", wire.CoverSourceLatch: "the hardware latch shows it was opened while unpowered"}[x.Source]
		if how == "" {
			how = x.Source
		}
		return "Cover opened — " + how + "."
	case *wire.MagnetPayload:
		return fmt.Sprintf("Magnet detected at the meter (strength %d).", x.Strength)
	case *wire.RefusedPayload:
		return fmt.Sprintf("The guard refused to load %s (%s).", x.Path, x.Reason)
	case *wire.ErasedPayload:
		return "The erase policy deleted " + strings.Join(x.Paths, ", ") + "."
	case *wire.OverflowPayload:
		return fmt.Sprintf("The log was full: %d routine entries were counted but not kept (tamper entries are never dropped).", x.Dropped)
	case *wire.BadDownlinkPayload:
		return "The device rejected a downlink message: " + x.Why + "."
	case *wire.ServiceBeginPayload:
		return fmt.Sprintf("Service window opened on the device (work order %s, technician %s, token %s).", orDash(x.WorkOrder), orDash(x.Technician), prefix(x.TokenID))
	case *wire.ServiceEndPayload:
		return "Service window closed on the device; seal " + orDash(x.SealNumber) + " fitted."
	case *wire.TamperClearedPayload:
		return "The device applied clear token " + prefix(x.TokenID) + " and cleared its latched tamper state."
	case *wire.ManifestUpdatePayload:
		return fmt.Sprintf("Manifest updated from version %d to %d.", x.Old, x.New)
	case *wire.BootPayload:
		return fmt.Sprintf("Boot %d (%s), manifest version %d, code check %s.", x.BootCount, orDash(x.ResetCause), x.ManifestVersion, orDash(x.Result))
	case *wire.CheckOKPayload:
		return fmt.Sprintf("%d files verified against the seal.", x.Files)
	case *wire.RegisterPayload:
		return fmt.Sprintf("Register %d L.", x.Litres)
	case *wire.RecoveredPayload:
		return "Crash recovery at boot: " + x.What + "."
	}
	if e.Type == wire.EntryCoverClose {
		return "Cover closed."
	}
	return wire.EntryName(e.Type) + " entry."
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// evidenceLines are the entries that matter to an operator (tamper-class and service),
// newest first; a failed file check followed by a passing one says the file came back.
func evidenceLines(evs []store.Event) []line {
	var out []line
	for i, e := range evs {
		if !e.Tamper && e.Type != wire.EntryServiceBegin && e.Type != wire.EntryServiceEnd && e.Type != wire.EntryTamperCleared && e.Type != wire.EntryManifestUpdate {
			continue
		}
		l := line{At: time.Unix(int64(e.T), 0), Text: entrySentence(e), N: e.N, Reason: lookupReason(e.TypeName)}
		if e.Tamper {
			l.Class = "tamper"
		} else {
			l.Class = "service"
		}
		if e.Type == wire.EntryCheckFail {
			for _, later := range evs[i+1:] {
				if later.Type == wire.EntryCheckOK {
					l.Text = strings.TrimSuffix(l.Text, ".") + fmt.Sprintf("; the next check (entry %d) found every file as sealed: restored, but the change stays in the log.", later.N)
					break
				}
				if later.Type == wire.EntryCheckFail {
					break
				}
			}
		}
		out = append(out, l)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// historyLines turn audit records (newest first) into sentences, grouping runs of the same
// rejection: "33 × bad-seal, 15:46–16:20".
func historyLines(as []store.Audit) []line {
	var out []line
	for _, a := range as {
		if a.Kind == "rejection" && len(out) > 0 {
			last := &out[len(out)-1]
			if last.Class == "tamper" && last.Reason.Name == a.Reason && last.Text == rejectionText {
				last.Count++
				last.At = a.At // the list runs newest first: this one is earlier
				continue
			}
		}
		out = append(out, auditLine(a))
	}
	return out
}

const rejectionText = "Report rejected."

func auditLine(a store.Audit) line {
	var d map[string]any
	json.Unmarshal([]byte(a.Detail), &d)
	str := func(k string) string {
		if v, ok := d[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	l := line{At: a.At, Until: a.At, Count: 1, Reason: lookupReason(a.Reason), Actor: a.Actor}
	switch a.Kind {
	case "rejection":
		l.Class, l.Text = "tamper", rejectionText
	case "transition":
		l.Text = fmt.Sprintf("%s → %s.", orDash(str("from")), orDash(str("to")))
		if r := str("result"); r != "" {
			l.Text += " Inspection: “" + r + "”."
		}
		if str("to") == store.StateTampered || str("to") == store.StateSuspect || str("to") == store.StateSilent {
			l.Class = "tamper"
		}
	case "evidence":
		l.Class, l.Text = "tamper", "Further evidence while already "+orDash(str("to"))+"."
		if str("to") == "" {
			l.Text = "Further evidence of the same kind."
		}
	case "service-token":
		l.Class = "service"
		l.Text = fmt.Sprintf("Service visit booked: work order %s, technician %s, window %s.", orDash(str("work_order")), orDash(str("technician")), window(str("window_s")))
	case "visit-closed":
		l.Class = "service"
		l.Text = fmt.Sprintf("Service visit closed: seal %s fitted; result “%s”.", orDash(str("seal_number")), str("result"))
	case "alert-ack":
		l.Text = "Alert " + str("alert") + " acknowledged."
	case "catch-up":
		l.Text = "Part of a backlog verified (the device is catching up)."
	case "provision", "reprovision":
		l.Text = fmt.Sprintf("Provisioned (epoch %s).", str("epoch"))
	default:
		l.Text = a.Kind + "."
	}
	return l
}

func window(s string) string {
	var n float64
	fmt.Sscan(s, &n)
	if n <= 0 {
		return "—"
	}
	return (time.Duration(n) * time.Second).String()
}
