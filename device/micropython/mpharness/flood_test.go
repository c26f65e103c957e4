package mpharness

import (
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// D24: a renter toggles the cover again and again (a magnet and patience). The first
// openings between two reports are logged one by one; the rest are counted and go out as
// one repeat entry (count, first and last time) with the next report, so the log does not
// grow with the flood, and the flood is in the verified log and the report's flags.
func TestThreatD24_CoverFloodCountedNotLogged(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	a := r.anchor0()
	const toggles = 60
	var logBytes []int
	for i := 0; i < toggles; i++ {
		r.step(Cmd{"cmd": "cover", "open": true})
		c := r.step(Cmd{"cmd": "cover", "open": false})
		logBytes = append(logBytes, c.Summary.LogBytes)
	}
	if logBytes[toggles-1] != logBytes[20] {
		t.Fatalf("the log still grows with the flood: %d bytes after 21 toggles, %d after %d", logBytes[20], logBytes[toggles-1], toggles)
	}
	rep := r.report()
	if rep.State&wire.StateCoverWasOpen == 0 {
		t.Fatalf("flags %#x: cover-was-open must be latched", rep.State)
	}
	_, es := r.verify(a, rep)
	opens, repeats := 0, 0
	for _, e := range es {
		switch e.Type {
		case wire.EntryCoverOpen:
			opens++
		case wire.EntryRepeat:
			repeats++
			v, err := wire.DecodePayload(e.Type, e.Payload)
			if err != nil {
				t.Fatal(err)
			}
			p := v.(*wire.RepeatPayload)
			if p.Type != wire.EntryCoverOpen || p.Count != toggles-8 || p.First == 0 || p.Last < p.First {
				t.Fatalf("repeat %+v, want %d more cover-open", p, toggles-8)
			}
		}
	}
	if opens != 8 || repeats != 1 {
		t.Fatalf("%d cover-open and %d repeat entries, want 8 and 1: %v", opens, repeats, types(es))
	}
	// counting starts again after the report: the next openings are logged one by one
	r.step(Cmd{"cmd": "cover", "open": true})
	r.step(Cmd{"cmd": "cover", "open": false})
	_, es = r.verify(a, r.report())
	if n := countType(es, wire.EntryCoverOpen); n != 9 {
		t.Fatalf("%d cover-open entries after the report, want 9", n)
	}
}

func countType(es []wire.Entry, typ uint16) int {
	n := 0
	for _, e := range es {
		if e.Type == typ {
			n++
		}
	}
	return n
}
