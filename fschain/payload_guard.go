package fschain

import (
	"fmt"

	"github.com/fieldseal/fieldseal/wire"
)

// guardPayload decodes the entry types the MicroPython guard adds (repeat, boot-failed).
func guardPayload(typ uint16) any {
	switch typ {
	case wire.EntryRepeat:
		return &wire.RepeatPayload{}
	case wire.EntryBootFailed:
		return &wire.BootFailedPayload{}
	}
	return nil
}

// guardSummary is Summary's text for those types ("" for others).
func guardSummary(v any) string {
	switch p := v.(type) {
	case *wire.RepeatPayload:
		return fmt.Sprintf("%d more %s between t=%d and t=%d", p.Count, wire.EntryName(p.Type), p.First, p.Last)
	case *wire.BootFailedPayload:
		return p.Exception + " " + p.Message
	}
	return ""
}
