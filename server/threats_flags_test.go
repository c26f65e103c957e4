package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

func withFlags(f uint32) func(*wire.Report) { return func(r *wire.Report) { r.State = f } }

const coverLatched = wire.StateCoverWasOpen | wire.StateTamperLatched

// D22: a device whose cover-open entry was removed (a rolled-back state slot, a restored
// flash image) still reports the MAC'd latched flag. A latched flag no verified entry
// explains is tamper, evidence-lost. A flag that an entry stored earlier explains — even
// on another replica, read back from the shared store — is not.
func TestThreatD22_LatchedFlagWithoutEntryIsEvidenceLost(t *testing.T) {
	a, b := replicas(t)
	ctx := context.Background()

	// The honest story: the cover opens, the entry and the latched flag arrive together.
	d := a.provision("meter-1", "watermeter")
	a.mustSend(d)
	d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
	if _, err := a.send(d, withFlags(coverLatched)); err != nil {
		t.Fatal(err)
	}
	if got := a.device("meter-1"); got.State != store.StateTampered || got.StateReason != "cover-open" {
		t.Fatalf("cover opened: %s (%s)", got.State, got.StateReason)
	}
	if err := a.s.ClearTamper(ctx, "meter-1", "seal intact", "test"); err != nil {
		t.Fatal(err)
	}
	// Until the device applies the clear token its flags stay latched: explained by the
	// stored entry, also on replica B, which never saw it arrive (and whose first report
	// from the device carried no flag to explain).
	b.mustSend(d)
	ack, err := b.send(d, withFlags(coverLatched))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.device("meter-1"); got.State != store.StateTrusted {
		t.Fatalf("latched flag explained by a stored entry: %s (%s)", got.State, got.StateReason)
	}
	var clear *wire.Token
	for _, c := range ack.Commands {
		if tok, err := wire.OpenToken(c, "meter-1", d.b.DownlinkKey); err == nil && tok.Action == wire.TokenClear {
			clear = tok
		}
	}
	if clear == nil {
		t.Fatal("no clear token delivered")
	}
	d.log(wire.EntryTamperCleared, &wire.TamperClearedPayload{TokenID: clear.ID})
	b.mustSend(d)

	// The attack: the cover is opened offline, then the log entry is removed by restoring
	// the state; the latch (a hardware flag, MAC'd into every report) survives.
	if _, err := b.send(d, withFlags(coverLatched)); err != nil {
		t.Fatal(err)
	}
	got := b.device("meter-1")
	if got.State != store.StateTampered || got.StateReason != server.ReasonEvidenceLost {
		t.Fatalf("latched flag without its entry: %s (%s), want tampered (%s)", got.State, got.StateReason, server.ReasonEvidenceLost)
	}
	var alerted bool
	for _, al := range b.alerts("meter-1") {
		alerted = alerted || al.Reason == server.ReasonEvidenceLost
	}
	if !alerted {
		t.Fatal("no evidence-lost alert")
	}
	// One verdict per loss: the next report with the same flags adds no second alert.
	n := len(b.alerts("meter-1"))
	b.mustSend(d)
	if _, err := b.send(d, withFlags(coverLatched)); err != nil {
		t.Fatal(err)
	}
	if len(b.alerts("meter-1")) != n {
		t.Fatal("the same lost evidence alerted twice")
	}
}

// D25: the renter resets the device clock to 2000 during a service visit. Cover openings
// are judged by the server's time of receipt against a window that runs from the token's
// delivery, never by device time: inside the window they are expected, after it tamper,
// whatever the device clock says.
func TestThreatD25_ServerJudgesWindowByItsOwnClock(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	e.mustSend(d)
	if err := e.s.IssueServiceToken(context.Background(), "meter-1", "WO-1", "tom", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	a := e.mustSend(d) // delivers the token
	tok, err := wire.OpenToken(a.Commands[0], "meter-1", d.b.DownlinkKey)
	if err != nil || tok.Action != wire.TokenService {
		t.Fatalf("service token %+v %v", tok, err)
	}
	d.clock = func() uint64 { return 946684800 } // RTC reset to 2000-01-01 by a power cycle
	d.boot++
	d.log(wire.EntryServiceBegin, &wire.ServiceBeginPayload{TokenID: tok.ID, WorkOrder: "WO-1"})
	d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceService})
	e.clock.Add(5 * time.Minute)
	e.mustSend(d)
	if got := e.device("meter-1"); got.State != store.StateService {
		t.Fatalf("opening inside the window: %s (%s)", got.State, got.StateReason)
	}
	// An hour later (server time) the device, its clock still in 2000 and its window never
	// closed, reports another opening.
	e.clock.Add(time.Hour)
	d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceLatch})
	e.mustSend(d)
	got := e.device("meter-1")
	if got.State != store.StateTampered || got.StateReason != "cover-open" {
		t.Fatalf("opening after the window, device clock in 2000: %s (%s), want tampered (cover-open)", got.State, got.StateReason)
	}
}

// S12: an already-accepted report, captured and resent (no key needed), is counted and
// audited but moves nothing — not the state, not the rejection counter — and raises at
// most one alert per device per hour.
func TestThreatS12_ReplayedReportsMoveNothing(t *testing.T) {
	e := newEnv(t)
	d := e.provision("meter-1", "watermeter")
	old := d.report(nil)
	if _, err := e.s.HandleReport(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	e.mustSend(d)
	before := e.device("meter-1")
	for i := 0; i < 5; i++ {
		ack, err := e.s.HandleReport(context.Background(), old)
		wantReason(t, err, server.ReasonReplay)
		if ack == nil {
			t.Fatal("an authentic replay gets no ack telling the device why")
		}
	}
	after := e.device("meter-1")
	if after.State != store.StateTrusted || after.Rejections != before.Rejections || after.Version != before.Version {
		t.Fatalf("replays moved the device: %s (%s), rejections %d → %d, version %d → %d",
			after.State, after.StateReason, before.Rejections, after.Rejections, before.Version, after.Version)
	}
	replays := 0
	for _, au := range e.audits("meter-1") {
		if au.Kind == "rejection" && au.Reason == server.ReasonReplay {
			replays++
		}
	}
	if replays != 5 {
		t.Fatalf("%d replays audited, want 5", replays)
	}
	countAlerts := func() int {
		n := 0
		for _, al := range e.alerts("meter-1") {
			if al.Kind == server.ReasonReplay {
				n++
			}
		}
		return n
	}
	if n := countAlerts(); n != 1 {
		t.Fatalf("%d replay alerts for 5 replays in a minute, want 1", n)
	}
	if got := e.metric(`fieldseal_reports_rejected_total{reason="replay"}`); got != "5" {
		t.Fatalf("replay counter %q, want 5", got)
	}
	e.clock.Add(61 * time.Minute)
	e.s.HandleReport(context.Background(), old)
	if n := countAlerts(); n != 2 {
		t.Fatalf("%d replay alerts after an hour, want 2", n)
	}
	e.mustSend(d) // the device itself is unaffected
}
