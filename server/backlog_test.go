package server_test

import (
	"net/http"
	"testing"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// After a long outage a device's backlog is bigger than one 16 KiB message. Sent whole it is
// refused (oversize); sent as chunks of the oldest entries, each still claiming the current
// n, head and seal, it is verified chunk by chunk: tamper entries in it count as they
// arrive, promotions wait for the chunk that reaches the claimed n, which is checked in
// full. An honest device's reporting is never stuck behind its own backlog.
func TestBacklogInChunks(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	for i := 0; i < 700; i++ {
		if i == 350 {
			d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
			continue
		}
		d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: uint64(i)})
	}
	if status, _, _ := e.postReport(d.report(nil)); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("the whole 700-entry backlog: HTTP %d, want 413 (it must not fit one message)", status)
	}
	claimed, _, _ := d.w.State()
	chunks := 0
	for {
		seg := d.w.Segment()
		k := min(len(seg.Entries), 200)
		data := d.report(func(r *wire.Report) { r.Log.Entries = r.Log.Entries[:k] })
		if len(data) > wire.MaxMessageSize {
			t.Fatalf("chunk of %d entries is %d bytes", k, len(data))
		}
		ack, err := e.s.HandleReport(t.Context(), data)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunks+1, err)
		}
		a := d.accept(ack)
		chunks++
		want := seg.First + uint64(k) - 1
		if a.Reject != "" || a.Anchor.N != want {
			t.Fatalf("chunk %d: anchor %d reject %q, want anchor %d", chunks, a.Anchor.N, a.Reject, want)
		}
		got := e.device("meter-1")
		if chunks == 1 && got.State != store.StateProvisioned {
			t.Fatalf("after the first chunk the device is %s: a partial log must not promote it", got.State)
		}
		if want >= 351 && got.State != store.StateTampered {
			t.Fatalf("chunk %d verified the cover-open entry (351) but the device is %s", chunks, got.State)
		}
		if want == claimed {
			break
		}
	}
	if chunks != 4 {
		t.Errorf("%d chunks for 700 entries by 200, want 4", chunks)
	}
	got := e.device("meter-1")
	if got.AnchorN != claimed || got.State != store.StateTampered || got.StateReason != "cover-open" {
		t.Fatalf("after the backlog: anchor %d (claimed %d), state %s/%s", got.AnchorN, claimed, got.State, got.StateReason)
	}
	catchUps := 0
	for _, a := range e.audits("meter-1") {
		if a.Kind == "catch-up" {
			catchUps++
		}
	}
	if catchUps != chunks-1 {
		t.Errorf("%d catch-up audit records, want one per partial chunk (%d)", catchUps, chunks-1)
	}
}

// A chunk resent because its ack was lost moves nothing and is answered normally; a device
// that keeps sending chunks that move nothing (as one hiding the tail of its log would,
// since it cannot seal a shorter log) ends in suspect.
func TestThreatD12_ChunksCannotHideTail(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	for i := 0; i < 50; i++ {
		d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: uint64(i)})
	}
	first := append([]wire.Entry(nil), d.w.Segment().Entries[:10]...)
	resend := func(r *wire.Report) { r.Log.First, r.Log.Entries = 1, first }
	if a, err := e.send(d, resend); err != nil || a.Anchor.N != 10 {
		t.Fatalf("first chunk: %v %+v", err, a)
	}
	for i := 1; i <= 3; i++ {
		a, err := e.send(d, resend) // entries 1..10 again, in a new report
		if err != nil || a.Reject != "" || a.Anchor.N != 10 {
			t.Fatalf("resend %d: %v %+v", i, err, a)
		}
		got := e.device("meter-1")
		if i < 3 && got.State == store.StateSuspect {
			t.Fatalf("%d resent chunk(s) made the device suspect", i)
		}
	}
	got := e.device("meter-1")
	if got.State != store.StateSuspect || got.StateReason != "catch-up-stalled" {
		t.Fatalf("after three chunks in a row that move nothing: %s/%s, want suspect/catch-up-stalled", got.State, got.StateReason)
	}
	// The device sends the rest: the log is complete and verified, and it is trusted again.
	if a, err := e.send(d, nil); err != nil || a.Reject != "" || a.Anchor.N != 50 {
		t.Fatalf("the rest of the log: %v %+v", err, a)
	}
	if got := e.device("meter-1"); got.State != store.StateTrusted {
		t.Fatalf("after the complete log: %s", got.State)
	}
}
