package server_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/lpwan"
	"github.com/fieldseal/fieldseal/wire"
)

// lpMeter is a simulated LoRaWAN meter (the agent's engine speaking the LPWAN profile)
// provisioned on the env's server.
type lpMeter struct {
	e   *env
	id  string
	d   *agent.Device
	m   *agent.LPMeter
	now uint64
}

// lp is the env's LPWAN profile: one per server, as server/lorawan holds one.
func (e *env) lp() *lpwan.Assembler {
	if e.lpa == nil {
		e.lpa = lpwan.New(e.s)
	}
	return e.lpa
}

func (e *env) lpMeter(id string) *lpMeter {
	e.t.Helper()
	e.ensureManifest("watermeter")
	b, err := e.s.ProvisionDevice(context.Background(), id, "watermeter")
	if err != nil {
		e.t.Fatal(err)
	}
	return e.lpMeterOf(b)
}

// lpMeterOf is the simulated LoRaWAN meter holding bundle b.
func (e *env) lpMeterOf(b *wire.Bundle) *lpMeter {
	e.t.Helper()
	id := b.Device
	now := uint64(e.clock.Now().Unix())
	d, err := agent.New(agent.Config{Bundle: b, Manifest: e.runs(b),
		Chain: fschain.NewMemStorage(), Now: now})
	if err != nil {
		e.t.Fatal(err)
	}
	return &lpMeter{e: e, id: id, d: d, m: agent.NewLPMeter(d), now: now}
}

// round sends one round of frames through deliver (identity: every frame once, in order)
// and applies the downlinks the server answers with; it returns the status's result.
func (l *lpMeter) round(deliver func([][]byte) [][]byte) *lpwan.Result {
	l.e.t.Helper()
	l.now += 900
	frames, err := l.m.Uplink(l.now)
	if err != nil {
		l.e.t.Fatal(err)
	}
	for _, f := range frames {
		if len(f) > wire.LPMaxFrame {
			l.e.t.Fatalf("a %d-byte frame", len(f))
		}
	}
	if deliver != nil {
		frames = deliver(frames)
	}
	var last *lpwan.Result
	for _, f := range frames {
		res, err := l.e.lp().HandleFrame(context.Background(), l.id, f)
		if err != nil {
			l.e.t.Fatalf("frame %x: %v", f[:1], err)
		}
		if res.Kind == "status" {
			last = res
		}
		if res.Downlink != nil {
			if err := l.m.Downlink(res.Downlink, l.now); err != nil && !errors.Is(err, agent.ErrStaleAck) {
				l.e.t.Fatalf("downlink: %v", err)
			}
		}
	}
	return last
}

// A meter on the LPWAN profile: routine rounds in single 45-byte status frames without a
// downlink, entries verified by the server with the FS-chain rules, an ack when the device
// asks (after a tamper entry), pruning; the cover opening turns the device tampered.
func TestLPWANMeterReportsAndIsVerified(t *testing.T) {
	e := newEnv(t)
	l := e.lpMeter("lora-1")
	if res := l.round(nil); res.Reject != "" || res.Downlink != nil {
		t.Fatalf("first round: %+v", res)
	}
	if st := e.device("lora-1"); st.State != "trusted" || st.AnchorN != 1 {
		t.Fatalf("after the first round: %s anchor %d", st.State, st.AnchorN)
	}
	l.d.SetReading(1234, 0)
	for i := 0; i < 3; i++ {
		if res := l.round(nil); res.Downlink != nil || res.Reject != "" {
			t.Fatalf("routine round %d: %+v", i, res)
		}
	}
	if l.m.Pending() != 1 {
		t.Fatalf("%d entries pending, want the boot entry (no ack asked for yet)", l.m.Pending())
	}
	l.d.Cover(l.now+1, true, wire.CoverSourceIRQ)
	res := l.round(nil)
	if res.Downlink == nil {
		t.Fatal("no ack after a tamper entry")
	}
	if l.m.Pending() != 0 {
		t.Fatalf("%d entries pending after the ack", l.m.Pending())
	}
	if st := e.device("lora-1"); st.State != "tampered" || st.AnchorN != 2 {
		t.Fatalf("after the cover opened: %s anchor %d", st.State, st.AnchorN)
	}
}

// Lost, duplicated (several gateways) and reordered frames: the server asks for what it
// lacks (resend), ignores copies, and the meter catches up; a large entry spans frames.
func TestLPWANLostDuplicatedReorderedFrames(t *testing.T) {
	e := newEnv(t)
	l := e.lpMeter("lora-2")
	l.round(nil) // the boot entry, verified
	// a check-fail with many files: one entry across several frames
	var bad []wire.Finding
	for _, p := range []string{"app/a.mpy", "app/b.mpy", "app/calibration.json", "lib/leak.mpy"} {
		bad = append(bad, wire.Finding{Path: p, Kind: wire.KindModified})
	}
	l.d.Check(l.now+1, 9, bad, nil, nil)
	frames, _ := l.m.Uplink(l.now + 2)
	if len(frames) < 4 {
		t.Fatalf("%d frames: the check-fail entry should span several", len(frames))
	}
	// lose the second fragment, deliver the rest twice and the fragments in reverse
	var sent [][]byte
	entryFrames := frames[:len(frames)-1]
	for i := len(entryFrames) - 1; i >= 0; i-- {
		if i != 1 {
			sent = append(sent, entryFrames[i], entryFrames[i])
		}
	}
	sent = append(sent, frames[len(frames)-1], frames[len(frames)-1])
	var down []byte
	for _, f := range sent {
		res, err := e.lp().HandleFrame(context.Background(), "lora-2", f)
		if err != nil {
			t.Fatal(err)
		}
		if res.Downlink != nil && down == nil {
			down = res.Downlink
		}
	}
	if down == nil {
		t.Fatal("no resend request for a lost fragment")
	}
	body, err := wire.LPOpen(down, e.device("lora-2").DownlinkKey, "lora-2", 1)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := wire.DecodeLPAck(body); a == nil || a.Flags&wire.LPResend == 0 || a.AnchorN != 1 {
		t.Fatalf("answer %+v: want a resend from the boot entry", a)
	}
	if err := l.m.Downlink(down, l.now+3); err != nil {
		t.Fatal(err)
	}
	// the next round resends every entry after the anchor; the server verifies them all
	l.now += 2
	if res := l.round(nil); res.Reject != "" {
		t.Fatalf("catch-up round: %+v", res)
	}
	st := e.device("lora-2")
	if st.AnchorN != 2 || st.State != "tampered" || l.m.Pending() != 0 {
		t.Fatalf("after catching up: anchor %d state %s", st.AnchorN, st.State)
	}
}

// S14: the profile's truncated MACs and seal. A frame whose 8-byte MAC does not verify is
// refused (bad-mac) and changes nothing; a device holding R but cutting the tail of its log
// cannot make the truncated seal match: bad-seal, tampered.
func TestThreatS14_TruncatedTagsStillBind(t *testing.T) {
	e := newEnv(t)
	l := e.lpMeter("lora-3")
	l.round(nil)
	frames, _ := l.m.Uplink(l.now + 900)
	forged := append([]byte(nil), frames[len(frames)-1]...)
	forged[len(forged)-1] ^= 1
	var re *server.RejectError
	if _, err := e.lp().HandleFrame(context.Background(), "lora-3", forged); !errors.As(err, &re) || re.Reason != "bad-mac" {
		t.Fatalf("forged MAC: %v", err)
	}
	if st := e.device("lora-3"); st.LastRSeq != 1 {
		t.Fatalf("a forged frame moved the device: rseq %d", st.LastRSeq)
	}
	// the renter has R: a status claiming one entry more than sent, with a seal guess
	l.d.Cover(l.now+1000, true, wire.CoverSourceIRQ) // the entry the renter hides
	body, _ := wire.LPOpen(frames[len(frames)-1], e.device("lora-3").UplinkKey, "lora-3", 1)
	st, _ := wire.DecodeLPStatus(body)
	st.RSeq += 5
	st.N++ // claims the hidden entry exists; its frames never come, its seal is guessed
	for i := range st.SealPrefix {
		st.SealPrefix[i] ^= 0x5a
	}
	b := l.d.Bundle()
	cut, _ := wire.SealLPStatus(st, b.UplinkKey, b.Device, b.Epoch)
	res, err := e.lp().HandleFrame(context.Background(), "lora-3", cut)
	if err != nil {
		t.Fatal(err)
	}
	if res.Downlink == nil {
		t.Fatal("no resend request for a claimed entry that never came")
	}
	// and a status at the verified n whose seal does not match: the log was altered
	st.N--
	st.RSeq++
	bad, _ := wire.SealLPStatus(st, b.UplinkKey, b.Device, b.Epoch)
	res, err = e.lp().HandleFrame(context.Background(), "lora-3", bad)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reject != "bad-seal" {
		t.Fatalf("altered seal: %+v", res)
	}
	if s := e.device("lora-3"); s.State != "tampered" {
		t.Fatalf("state %s after a seal that does not verify", s.State)
	}
}

// A backlog goes out in rounds of at most MaxFrames frames (wire.LPRoundFrames, the status
// included), oldest first: each round a prefix the server verifies (VerifyPrefix) and acks
// flagged resend at the last entry it holds; a round may end inside an entry, whose next
// fragment opens the next round (a check-fail of many files spans more frames than a round
// carries). A frame lost on the way costs a resend from the anchor; the meter catches up,
// every round within the budget, and the server ends at the meter's head.
func TestLPWANBacklogInBudgetedRounds(t *testing.T) {
	e := newEnv(t)
	l := e.lpMeter("lora-3")
	l.round(nil) // the boot entry, verified
	l.d.SetReading(1234, 0)
	for i := 0; i < 40; i++ {
		if err := l.d.Register(l.now + uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	var bad []wire.Finding
	for i := 0; i < 12; i++ {
		bad = append(bad, wire.Finding{Path: fmt.Sprintf("app/module_%02d.mpy", i), Kind: wire.KindModified})
	}
	l.d.Check(l.now+50, 20, bad, nil, nil)
	for i := 0; i < 10; i++ {
		l.d.Register(l.now + 60 + uint64(i))
	}
	seg := l.d.Segment()
	big := seg.Entries[len(seg.Entries)-11]
	if fs, _ := wire.LPEntryFrames(&big, l.d.Bundle().UplinkKey, "lora-3", 1); len(fs) <= wire.LPRoundFrames {
		t.Fatalf("the check-fail entry takes %d frames: not more than a round", len(fs))
	}
	lost := false
	rounds := 0
	for ; e.device("lora-3").AnchorN < seg.N; rounds++ {
		if rounds > 60 {
			t.Fatalf("not caught up after %d rounds: anchor %d of %d, %d pending", rounds, e.device("lora-3").AnchorN, seg.N, l.m.Pending())
		}
		l.round(func(fs [][]byte) [][]byte {
			if len(fs) > wire.LPRoundFrames {
				t.Fatalf("round %d: %d frames (budget %d)", rounds, len(fs), wire.LPRoundFrames)
			}
			if rounds == 3 && !lost { // a fragment lost on the way
				lost = true
				return append(fs[:1:1], fs[2:]...)
			}
			return fs
		})
	}
	st := e.device("lora-3")
	// the meter pruned to each resend ack's anchor; the last round reached its head and,
	// routine again, asks for no ack: what it holds is the last round's entries
	if st.AnchorN != seg.N || st.State != "tampered" || l.m.Pending() >= wire.LPRoundFrames {
		t.Fatalf("after %d rounds: anchor %d of %d, %s, %d entries pending on the meter", rounds, st.AnchorN, seg.N, st.State, l.m.Pending())
	}
	// 51 entries after the boot one, 60-odd entry frames: at 7 entry frames a round, at
	// least 9 rounds, and not many more (the lost frame costs a resend)
	if rounds < 9 || rounds > 14 {
		t.Fatalf("caught up in %d rounds", rounds)
	}
	t.Logf("%d entries (one of 12 findings) in %d rounds of at most %d frames, one fragment lost on the way", seg.N-1, rounds, wire.LPRoundFrames)
}
