package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// A failed file check reads as a sentence with the digest prefixes, and says so when the
// next check found the file restored (the change stays in the log).
func TestEvidenceSentences(t *testing.T) {
	fail := wire.MustMarshal(&wire.CheckFailPayload{Files: 7, Bad: []wire.BadFile{{Path: "app/metrology.mpy", Kind: "modified",
		Expected: []byte{0x1a, 0x2b, 0x3c, 0x4d, 5, 6, 7, 8}, Seen: []byte{0x9f, 0x8e, 0x7d, 0x6c, 1, 2, 3, 4}}}})
	evs := []store.Event{
		{N: 1, T: 100, Type: wire.EntryRegister, TypeName: "register", Payload: wire.MustMarshal(&wire.RegisterPayload{Litres: 5})},
		{N: 2, T: 200, Type: wire.EntryCheckFail, TypeName: "check-fail", Tamper: true, Payload: fail},
		{N: 3, T: 300, Type: wire.EntryCheckOK, TypeName: "check-ok", Payload: wire.MustMarshal(&wire.CheckOKPayload{Files: 7})},
		{N: 4, T: 400, Type: wire.EntryCoverOpen, TypeName: "cover-open", Tamper: true, Payload: wire.MustMarshal(&wire.CoverOpenPayload{Source: wire.CoverSourceLatch})},
	}
	lines := evidenceLines(evs)
	if len(lines) != 2 {
		t.Fatalf("%d evidence lines, want 2 (routine entries are not evidence)", len(lines))
	}
	if want := "Cover opened — the hardware latch shows it was opened while unpowered."; lines[0].Text != want {
		t.Errorf("newest first: %q, want %q", lines[0].Text, want)
	}
	want := "File check failed (7 files checked): app/metrology.mpy modified — sealed sha256 1a2b3c4d…, found 9f8e7d6c…; the next check (entry 3) found every file as sealed"
	if !strings.HasPrefix(lines[1].Text, want) || lines[1].Reason.Threat != "D2" || lines[1].Class != "tamper" {
		t.Errorf("check-fail line %+v\nwant it to start %q", lines[1], want)
	}
	for _, l := range lines {
		if strings.ContainsAny(l.Text, "{}\"") {
			t.Errorf("raw JSON in %q", l.Text)
		}
	}
}

// Repeated rejections of one reason fold into one line with the count and the span;
// another reason or a transition in between starts a new line.
func TestRejectionsGrouped(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 15, 46, 0, 0, time.UTC)
	var as []store.Audit // newest first, as ListAudit returns them
	as = append(as, store.Audit{At: t0.Add(40 * time.Minute), Kind: "transition", Reason: "bad-seal", Detail: `{"from":"trusted","to":"tampered"}`, Actor: "pipeline"})
	for i := 33; i >= 0; i-- {
		as = append(as, store.Audit{At: t0.Add(time.Duration(i) * time.Minute), Kind: "rejection", Reason: "bad-seal", Actor: "pipeline"})
	}
	as[len(as)-1].Reason = "replay" // the oldest is another reason
	ls := historyLines(as)
	if len(ls) != 3 {
		t.Fatalf("%d lines, want 3: %+v", len(ls), ls)
	}
	if ls[0].Text != "trusted → tampered." || ls[0].Class != "tamper" {
		t.Errorf("transition: %+v", ls[0])
	}
	if ls[1].Count != 33 || ls[1].Span() != "15:47–16:19" || ls[1].Reason.Name != "bad-seal" {
		t.Errorf("grouped: %d × %s, %s; want 33 × bad-seal, 15:47–16:19", ls[1].Count, ls[1].Reason.Name, ls[1].Span())
	}
	if ls[2].Count != 1 || ls[2].Reason.Name != "replay" {
		t.Errorf("the other reason: %+v", ls[2])
	}
}
