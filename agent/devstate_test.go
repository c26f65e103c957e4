package agent

import (
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// D25: a service window opened by a token is bounded by what the renter cannot rewind.
// Setting the device clock back to 2000 during the visit, rebooting (a new OS boot id) or
// letting the monotonic clock pass the window's length each close it: a cover opening
// after that latches as tamper.
func TestThreatD25_ClockResetCannotStretchServiceWindow(t *testing.T) {
	const y2000 = 946684800
	cases := []struct {
		name string
		act  func(up *upClock) uint64 // changes the world, returns the device time of the opening
	}{
		{"clock set back to 2000", func(up *upClock) uint64 { up.secs += 60; return y2000 }},
		{"reboot", func(up *upClock) uint64 { up.id = "boot-2"; up.secs = 30; return 1_700_000_100 }},
		{"monotonic clock past the window", func(up *upClock) uint64 { up.secs += 601; return 1_700_000_100 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, priv := newBundle(t, "meter-1")
			s := newMini(b, priv)
			up := &upClock{id: "boot-1", secs: 5000}
			d, err := New(Config{Bundle: b, Manifest: wire.ManifestRef{Product: "watermeter", Version: 1, Root: make([]byte, 32)},
				Chain: fschain.NewMemStorage(), Now: 1_700_000_000, Uptime: up.read})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.ApplyToken(s.token(t, wire.TokenService, 1), 1_700_000_010); err != nil || !d.Status().InService {
				t.Fatalf("service token: %v", err)
			}
			// Inside the window an opening is expected, and latches nothing.
			d.Cover(1_700_000_020, true, wire.CoverSourceIRQ)
			d.Cover(1_700_000_030, false, wire.CoverSourceIRQ)
			if f := d.Status().Flags; f&wire.StateCoverWasOpen != 0 {
				t.Fatalf("opening inside the window latched: %#x", f)
			}
			now := c.act(up)
			if err := d.Cover(now, true, wire.CoverSourceIRQ); err != nil {
				t.Fatal(err)
			}
			st := d.Status()
			if st.InService || st.Flags&wire.StateCoverWasOpen == 0 {
				t.Fatalf("after %s: in service %v, flags %#x (want closed and latched)", c.name, st.InService, st.Flags)
			}
			es := d.Segment().Entries
			if last := es[len(es)-1]; last.Type != wire.EntryCoverOpen || strings.Contains(fschain.Summary(last), "service") {
				t.Fatalf("last entry %q", fschain.Summary(last))
			}
		})
	}
}

type upClock struct {
	id   string
	secs uint64
}

func (u *upClock) read() (string, uint64) { return u.id, u.secs }

// D26: the state that decides tamper is in the slots, and survives a restart with the
// tamper summary; a clear token ends the latch and the summary, and the clearing is logged.
func TestThreatD26_StateInSlotsWithSummary(t *testing.T) {
	d, s, st := newDevice(t)
	roundTrip(t, d, s, 1001)
	d.Check(1002, 3, []wire.Finding{{Path: "app/metrology.mpy", Kind: wire.KindModified}}, nil, nil)
	d.Check(1003, 3, nil, nil, nil) // restored
	roundTrip(t, d, s, 1004)        // acknowledged: the check-fail is pruned
	d2, err := New(Config{Bundle: d.b, Manifest: d.man, Chain: st, Now: 1005})
	if err != nil {
		t.Fatal(err)
	}
	sum := d2.Summary()
	if sum == nil || sum.FirstType != wire.EntryCheckFail || sum.FirstWhat != "app/metrology.mpy modified" || sum.Counts[wire.EntryCheckFail] != 1 {
		t.Fatalf("summary after restart: %+v", sum)
	}
	if d2.Status().Flags&wire.StateTamperLatched == 0 || d2.Status().RSeq != 2 {
		t.Fatalf("status after restart: %+v", d2.Status())
	}
	if d2.Receipt() == nil {
		t.Fatal("the latest receipt was not kept")
	}
	if err := d2.ApplyToken(s.token(t, wire.TokenClear, 9), 1006); err != nil {
		t.Fatal(err)
	}
	if d2.Summary() != nil || d2.Status().Flags&wire.StateTamperLatched != 0 {
		t.Fatalf("after clear: %+v %#x", d2.Summary(), d2.Status().Flags)
	}
}
