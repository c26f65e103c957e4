package mpharness

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// logRegisters appends k register entries (routine, like a meter's billing reads) on the
// device, all at the current simulated time.
func (r *rig) logRegisters(from, k int) {
	r.t.Helper()
	r.step(Cmd{"cmd": "exec", "code": fmt.Sprintf("for i in range(%d, %d):\n    D.log(13, {1: 100000 + 7 * i})\n", from, from+k)})
}

// fullSegment is the whole unacknowledged log as the device holds it (the harness "log"
// command: Chain.segment() without a size bound).
func (r *rig) fullSegment() wire.Segment {
	r.t.Helper()
	var seg wire.Segment
	if err := wire.Unmarshal(Bytes(r.step(Cmd{"cmd": "log"}).Segment), &seg); err != nil {
		r.t.Fatal(err)
	}
	return seg
}

// sealed is rep sealed by Go with its log replaced by seg.
func (r *rig) sealed(rep *wire.Report, seg wire.Segment) []byte {
	r.t.Helper()
	cp := *rep
	cp.Log = seg
	b, err := wire.SealReport(&cp, r.bundle.UplinkKey)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// A device that was offline long enough that its backlog is far above the 16 KiB message
// limit sends it in parts, oldest first, each report within the limit and each part as
// large as fits. The server side (fschain.VerifyPrefix, then an ack anchored at the last
// entry it verified) takes them one by one; after each such ack the guard sends the next
// part at once instead of a report interval later; the last part reaches the claimed n and
// passes the full fschain.Verify. Every entry arrives once, in order, tamper entry included.
func TestBacklogDrainsInChunks(t *testing.T) {
	r := newRig(t, nil, AppOptions{}, func(o *Options) { o.LogCap = 96 << 10 })
	r.boot()
	r.logRegisters(0, 600)
	r.step(Cmd{"cmd": "cover", "open": true}) // tamper in the middle of the backlog
	r.step(Cmd{"cmd": "cover", "open": false})
	r.logRegisters(600, 600)
	full := r.fullSegment()
	s := r.step(Cmd{"cmd": "state"}).Summary
	if uint64(len(full.Entries)) != s.N || full.N != s.N || s.Dropped != 0 {
		t.Fatalf("backlog: %d entries, n %d, dropped %d", len(full.Entries), s.N, s.Dropped)
	}

	b, err := r.d.Report()
	if err != nil {
		t.Fatal(err)
	}
	rep := r.open(b)
	whole := r.sealed(rep, full)
	if len(whole) <= wire.MaxMessageSize {
		t.Fatalf("the whole backlog fits one report (%d bytes): test backlog too small", len(whole))
	}
	t.Logf("backlog: %d entries, %d log bytes; as one report %d bytes (limit %d)", s.N, s.LogBytes, len(whole), wire.MaxMessageSize)

	a := r.anchor0()
	var got []wire.Entry
	var sizes []int
	for part := 1; ; part++ {
		if part > 20 {
			t.Fatal("backlog not drained after 20 reports")
		}
		if len(b) > wire.MaxMessageSize {
			t.Fatalf("part %d: report is %d bytes, limit %d", part, len(b), wire.MaxMessageSize)
		}
		sizes = append(sizes, len(b))
		lg := rep.Log
		if lg.N != full.N || !bytes.Equal(lg.Head, full.Head) || !bytes.Equal(lg.Seal, full.Seal) {
			t.Fatalf("part %d: claims n=%d, want the device's current n=%d with its head and seal", part, lg.N, full.N)
		}
		if len(lg.Entries) == 0 || lg.First != a.N+1 {
			t.Fatalf("part %d: first %d with %d entries, anchor at %d", part, lg.First, len(lg.Entries), a.N)
		}
		last := lg.Entries[len(lg.Entries)-1].N
		na, fresh, err := fschain.VerifyPrefix(a, lg, nil)
		if err != nil {
			t.Fatalf("part %d: VerifyPrefix: %v", part, err)
		}
		if na.N != last || len(fresh) != len(lg.Entries) {
			t.Fatalf("part %d: anchor %d after entries up to %d (%d fresh of %d)", part, na.N, last, len(fresh), len(lg.Entries))
		}
		partial := last < lg.N
		if partial {
			// the stock verifier refuses a prefix; and the part is as large as fits: with
			// the next entry of the backlog the same report would be over the limit
			if _, _, err := fschain.Verify(a, lg, nil); !errors.Is(err, fschain.ErrGap) {
				t.Fatalf("part %d: Verify took a prefix: %v", part, err)
			}
			more := lg
			more.Entries = append(append([]wire.Entry(nil), lg.Entries...), full.Entries[last])
			if n := len(r.sealed(rep, more)); n <= wire.MaxMessageSize {
				t.Fatalf("part %d: cut at %d entries (%d bytes), but one more still fits (%d bytes)", part, len(lg.Entries), len(b), n)
			}
		} else {
			fa, fe, err := fschain.Verify(a, lg, nil)
			if err != nil || fa != na || len(fe) != len(fresh) {
				t.Fatalf("part %d: the part reaching n fails the full Verify: %v", part, err)
			}
		}
		if part == 1 {
			// the ack of this part is lost: the next scheduled report resends the same part
			// (a new rseq, same entries), and the ack of that one goes on as usual
			if b, err = r.d.Report(); err != nil {
				t.Fatal(err)
			}
			again := r.open(b)
			if again.RSeq != rep.RSeq+1 || !bytes.Equal(wire.MustMarshal(again.Log), wire.MustMarshal(lg)) {
				t.Fatalf("resent part: rseq %d, %d entries from %d", again.RSeq, len(again.Log.Entries), again.Log.First)
			}
			rep = again
		}
		got = append(got, fresh...)
		ack := &wire.Ack{Dev: r.bundle.Device, Epoch: r.bundle.Epoch, AckedRSeq: rep.RSeq,
			Anchor: wire.Anchor{N: na.N, Head: na.Head[:]}}
		if res := r.ack(r.seal(ack, r.bundle.DownlinkKey)); res != "ok" {
			t.Fatalf("part %d: ack %q", part, res)
		}
		a = na
		if st := r.step(Cmd{"cmd": "state"}).Summary; st.Base != a.N {
			t.Fatalf("part %d: device pruned to %d, anchor %d", part, st.Base, a.N)
		}
		// one second later: the next part if backlog is left, else nothing (the report
		// interval is 900 s and the clock has not moved since boot)
		reps := r.step(Cmd{"cmd": "tick", "s": 1}).Reports
		if !partial {
			if len(reps) != 0 {
				t.Fatalf("a report %d s early after the backlog was drained", 900)
			}
			t.Logf("drained in %d reports of %v bytes", part, sizes)
			break
		}
		if len(reps) != 1 {
			t.Fatalf("part %d: %d reports one second after the ack, want the next part", part, len(reps))
		}
		b = Bytes(reps[0])
		rep = r.open(b)
	}
	if len(sizes) < 3 {
		t.Fatalf("only %d parts: backlog should need at least 3", len(sizes))
	}
	if a.N != full.N || !bytes.Equal(a.Head[:], full.Head) {
		t.Fatalf("anchor at %d, device n %d", a.N, full.N)
	}
	if len(got) != len(full.Entries) {
		t.Fatalf("%d entries verified, backlog had %d", len(got), len(full.Entries))
	}
	tamper := 0
	for i, e := range got {
		w := full.Entries[i]
		if e.N != w.N || e.T != w.T || e.Type != w.Type || !bytes.Equal(e.Payload, w.Payload) || !bytes.Equal(e.Tag, w.Tag) {
			t.Fatalf("verified entry %d is not backlog entry %d", e.N, w.N)
		}
		if e.Type == wire.EntryCoverOpen {
			tamper++
			var p wire.CoverOpenPayload
			if err := wire.Unmarshal(e.Payload, &p); err != nil || e.N != 602 {
				t.Fatalf("cover-open entry %d %+v: %v", e.N, p, err)
			}
		}
	}
	if tamper != 1 {
		t.Fatalf("%d cover-open entries verified, want 1", tamper)
	}
}

// A backlog that fits in one message (up to ~15 KiB of entries here) gives exactly the report
// of before: the device's bytes are those of the report sealed with the whole log.
func TestBacklogThatFitsIsOneReport(t *testing.T) {
	r := newRig(t, nil, AppOptions{}, func(o *Options) { o.LogCap = 64 << 10 })
	r.boot()
	for _, k := range []int{0, 1, 440} {
		r.logRegisters(0, k)
		r.step(Cmd{"cmd": "cover", "open": true})
		r.step(Cmd{"cmd": "cover", "open": false})
		full := r.fullSegment()
		b, err := r.d.Report()
		if err != nil {
			t.Fatal(err)
		}
		rep := r.open(b)
		if want := r.sealed(rep, full); !bytes.Equal(b, want) {
			t.Fatalf("%d entries: report differs from the one with the whole log (%d vs %d bytes)", len(full.Entries), len(b), len(want))
		}
		if _, _, err := fschain.Verify(r.anchor0(), rep.Log, nil); err != nil {
			t.Fatal(err)
		}
		// and the guard's unbounded path (limit=None) makes the very same bytes
		ex := r.step(Cmd{"cmd": "exec", "code": "import ubinascii\nD.x['rseq'] -= 1\nresult = ubinascii.b2a_base64(D.report(None)).decode().strip()"})
		if s, _ := ex.Result.(string); !bytes.Equal(Bytes(s), b) {
			t.Fatalf("%d entries: report(None) differs", len(full.Entries))
		}
		t.Logf("%d entries: one report of %d bytes", len(full.Entries), len(b))
	}
}
