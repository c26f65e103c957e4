package fschain

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

type appended struct {
	t       uint64
	typ     uint16
	payload []byte
}

func (a appended) is(e wire.Entry) bool {
	return a.t == e.T && a.typ == e.Type && bytes.Equal(a.payload, e.Payload)
}

// Random interleavings of append, power cut (during append, prune or recovery), reboot,
// prune after a verified report, and verify never yield a log that verifies but lost a
// committed entry — nor one that fails to verify.
func TestPropertyCrashRecoverPruneVerify(t *testing.T) {
	seeds := 1000
	if testing.Short() {
		seeds = 40
	}
	for seed := 0; seed < seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { propertyRun(t, uint64(seed)) })
	}
}

func propertyRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	st := NewMemStorage()
	w, err := Create(st, testDev, 1, testK1())
	if err != nil {
		t.Fatal(err)
	}
	capacity := 0
	if rng.IntN(2) == 0 {
		capacity = 4 + rng.IntN(12)
	}
	w.SetCapacity(capacity)
	srv := newServer()
	var committed []appended      // record written: must survive
	maybe := map[int][]appended{} // cut mid-append, after len(committed) entries: may survive
	droppedOK := 0
	clock := uint64(1767225600)

	doAppend := func() error {
		clock += uint64(1 + rng.IntN(100))
		typ := []uint16{wire.EntryCheckOK, wire.EntryRegister, wire.EntryBoot, wire.EntryCheckFail, wire.EntryCoverOpen}[rng.IntN(5)]
		p := make([]byte, rng.IntN(40))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		if rng.IntN(50) == 0 {
			p = make([]byte, wire.MaxPayload)
		}
		a := appended{clock, typ, p}
		_, err := w.Append(a.t, a.typ, a.payload)
		switch {
		case err == nil:
			committed = append(committed, a)
		case errors.Is(err, ErrDropped):
			droppedOK++
		case errors.Is(err, ErrPowerCut):
			// fschain.md's rule: committed once its record is wholly in the log area.
			if recs, _ := DecodeRecords(st.log); len(recs) > 0 && a.is(recs[len(recs)-1]) {
				committed = append(committed, a)
			} else {
				maybe[len(committed)] = append(maybe[len(committed)], a)
			}
		default:
			t.Fatalf("append: %v", err)
		}
		return err
	}
	reboot := func() {
		st.Revive()
		// Sometimes the power fails again during recovery.
		if rng.IntN(3) == 0 {
			cut := rng.IntN(4)
			st.BeforeWrite = func(op WriteOp) int {
				if op.Seq == cut {
					return rng.IntN(len(op.Data) + 2)
				}
				return -1
			}
			if _, _, err := Open(st); err != nil && !errors.Is(err, ErrPowerCut) {
				t.Fatalf("open during cut: %v", err)
			}
			st.Revive()
		}
		var err error
		if w, _, err = Open(st); err != nil {
			t.Fatalf("open: %v", err)
		}
		w.SetCapacity(capacity)
	}
	report := func() {
		if err := srv.verify(w.Segment()); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}

	for step := 0; step < 150; step++ {
		switch op := rng.IntN(12); {
		case op < 6:
			doAppend()
		case op < 8: // power cut at a random byte of a random upcoming write
			cut := rng.IntN(3)
			st.BeforeWrite = func(o WriteOp) int {
				if o.Seq == cut {
					return rng.IntN(len(o.Data) + 2)
				}
				return -1
			}
			st.seq = 0
			if rng.IntN(4) == 0 && srv.a.N > 0 {
				report()
				_ = w.Prune(srv.a.N, srv.a.Head)
			} else {
				doAppend()
			}
			reboot()
		case op < 10: // report, ack, prune
			report()
			if err := w.Prune(srv.a.N, srv.a.Head); err != nil {
				t.Fatalf("prune: %v", err)
			}
		case op < 11:
			report()
		default:
			reboot()
		}
	}
	report()

	// Every committed entry, in order, among the verified ones; nothing else but entries
	// the writer adds itself (recovered, overflow) and appends that were cut.
	ci := 0
	overflow := 0
	for _, e := range srv.got {
		switch {
		case e.Type == wire.EntryRecovered:
		case e.Type == wire.EntryOverflow:
			var p wire.OverflowPayload
			if err := wire.Unmarshal(e.Payload, &p); err != nil {
				t.Fatal(err)
			}
			overflow += int(p.Dropped)
		case ci < len(committed) && committed[ci].is(e):
			ci++
		default:
			ms := maybe[ci]
			for len(ms) > 0 && !ms[0].is(e) {
				ms = ms[1:]
			}
			if len(ms) == 0 {
				t.Fatalf("verified entry %d (%s) was never appended", e.N, wire.EntryName(e.Type))
			}
			maybe[ci] = ms[1:]
		}
	}
	if ci != len(committed) {
		t.Fatalf("committed entry %d of %d lost", ci+1, len(committed))
	}
	if overflow+int(w.Dropped()) < droppedOK {
		t.Fatalf("dropped %d, overflow entries count %d (+%d pending)", droppedOK, overflow, w.Dropped())
	}
}
