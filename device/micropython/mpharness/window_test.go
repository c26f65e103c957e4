package mpharness

import (
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// D25 on the guard: during an open service window the renter resets the RTC to 2000, or
// reboots the meter. Either closes the window (device time before its opening, a new boot
// count), so the next cover opening latches as tamper instead of passing as expected.
func TestThreatD25_GuardClockResetClosesServiceWindow(t *testing.T) {
	for _, c := range []struct {
		name string
		act  func(r *rig)
	}{
		{"rtc reset to 2000", func(r *rig) { r.step(Cmd{"cmd": "exec", "code": "P.now = 946684800"}) }},
		{"reboot", func(r *rig) { r.off(); r.start(); r.boot() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, nil, AppOptions{})
			s := r.boot().Summary
			tok := r.newToken(wire.TokenService, s.RSeq, wire.TokenArgs{WorkOrder: "WO-25", Window: 3600})
			rep := r.report()
			a, _ := r.verify(r.anchor0(), rep)
			ack := &wire.Ack{Dev: r.bundle.Device, Epoch: 1, AckedRSeq: rep.RSeq, Anchor: wire.Anchor{N: a.N, Head: a.Head[:]},
				Commands: [][]byte{r.tokenBytes(tok, r.bundle.DownlinkKey)}}
			if got := r.ack(r.seal(ack, r.bundle.DownlinkKey)); got != "ok" {
				t.Fatalf("ack with service token: %q", got)
			}
			if st := r.step(Cmd{"cmd": "cover", "open": true}).Summary; st.Flags&wire.StateCoverWasOpen != 0 {
				t.Fatalf("opening inside the window latched: %b", st.Flags)
			}
			r.step(Cmd{"cmd": "cover", "open": false})
			c.act(r)
			st := r.step(Cmd{"cmd": "cover", "open": true}).Summary
			if st.Flags&wire.StateServiceMode != 0 || st.Flags&wire.StateCoverWasOpen == 0 || st.ServiceUntil != 0 {
				t.Fatalf("after %s: flags %b, service until %d (want the window closed and the opening latched)", c.name, st.Flags, st.ServiceUntil)
			}
			es := r.lastEntries(a)
			var co wire.CoverOpenPayload
			last := es[len(es)-1]
			if last.Type != wire.EntryCoverOpen || wire.Unmarshal(last.Payload, &co) != nil || co.Source == "service" {
				t.Fatalf("last entry %s %+v", wire.EntryName(last.Type), co)
			}
			ended := false
			for _, e := range es {
				ended = ended || e.Type == wire.EntryServiceEnd
			}
			if !ended {
				t.Fatalf("no service-end logged: %v", types(es))
			}
		})
	}
}
