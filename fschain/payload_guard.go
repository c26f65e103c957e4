package fschain

import (
	"fmt"

	"github.com/fieldseal/fieldseal/wire"
)

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
