package server_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/dashboard"
	"github.com/fieldseal/fieldseal/wire"
)

// Every reason name the server can put in an audit record, an alert, a webhook or an API
// answer has one entry in the console's vocabulary (meaning and THREAT_MODEL row): the
// rejection names, the FS-chain names, the tamper-class entry names, and every literal
// reason the state machine passes to transition (read from the source, so a new one
// cannot be added without its meaning).
func TestReasonVocabulary(t *testing.T) {
	names := []string{server.ReasonMalformed, server.ReasonOversize, server.ReasonUnsupported, server.ReasonUnknownDevice, server.ReasonBadMAC,
		server.ReasonWrongEpoch, server.ReasonReplay, server.ReasonStaleNonce, server.ReasonWrongManifest, server.ReasonConflict, server.ReasonUnavailable,
		server.ReasonEvidenceLost, "gap", "reorder", "rollback", "fork", "forged-entry", "head-mismatch", "bad-seal"}
	for typ := uint16(1); typ < 32; typ++ {
		if wire.IsTamper(typ) {
			names = append(names, wire.EntryName(typ))
		}
	}
	lit := regexp.MustCompile(`(?:transition\(nd, store\.State\w+, |tampered = |suspect = |StateReason = |const Reason\w+ = )"([a-z-]+)"|StateReason, nd\.StateSince = store\.State\w+, "([a-z-]+)"|Reason: "([a-z-]+)", Detail`)
	files, _ := filepath.Glob("*.go")
	found := 0
	for _, f := range files {
		if filepath.Ext(f) != ".go" || len(f) > 8 && f[len(f)-8:] == "_test.go" {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range lit.FindAllStringSubmatch(string(src), -1) {
			for _, g := range m[1:] {
				if g != "" {
					names = append(names, g)
					found++
				}
			}
		}
	}
	if found < 10 {
		t.Fatalf("found only %d literal reasons in the server's source: fix the pattern", found)
	}
	for _, n := range names {
		r, ok := dashboard.Reasons[n]
		if !ok || r.Meaning == "" {
			t.Errorf("reason %q has no meaning in server/dashboard/vocab.go", n)
		}
	}
}
