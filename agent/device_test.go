package agent

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// miniServer is the smallest honest server: it checks a report's MAC, verifies the log
// segment against its anchor and answers with an ack. Enough to exercise the engine; the
// threat tests run against the real server.
type miniServer struct {
	b      *wire.Bundle
	priv   ed25519.PrivateKey
	anchor fschain.Anchor
	rseq   uint64
	nonce  []byte
	cmds   [][]byte
}

func newBundle(t testing.TB, dev string) (*wire.Bundle, ed25519.PrivateKey) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	rnd := func() []byte { b := make([]byte, 32); rand.Read(b); return b }
	return &wire.Bundle{Device: dev, Epoch: 1, ChainKey: rnd(), UplinkKey: rnd(), DownlinkKey: rnd(), ServerPub: wire.HexBytes(pub), Product: "watermeter", ManifestVersion: 1}, priv
}

func newMini(b *wire.Bundle, priv ed25519.PrivateKey) *miniServer {
	var k1 fschain.Key
	copy(k1[:], b.ChainKey)
	return &miniServer{b: b, priv: priv, anchor: fschain.NewAnchor(b.Device, b.Epoch, k1)}
}

func (s *miniServer) handle(t testing.TB, data []byte) (ack []byte, r *wire.Report, verr error) {
	t.Helper()
	m, err := wire.ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	r, err = wire.OpenReport(m, s.b.UplinkKey)
	if err != nil {
		t.Fatal(err)
	}
	a := &wire.Ack{Dev: r.Dev, Epoch: r.Epoch, AckedRSeq: r.RSeq}
	if r.RSeq <= s.rseq {
		a.Reject = "replay"
	} else if na, _, err := fschain.VerifyPrefix(s.anchor, r.Log, nil); err != nil { // as the server: chunks of a backlog too
		a.Reject = err.Error()
		verr = err
	} else {
		s.anchor, s.rseq = na, r.RSeq
		s.nonce = make([]byte, 8)
		rand.Read(s.nonce)
		a.Nonce = s.nonce
		a.Anchor = wire.Anchor{N: na.N, Head: append([]byte(nil), na.Head[:]...)}
		a.Receipt = wire.SignReceipt(&wire.Receipt{Dev: r.Dev, Epoch: r.Epoch, N: na.N, Head: a.Anchor.Head, Time: r.Time}, s.priv)
		a.Commands, s.cmds = s.cmds, nil
	}
	ack, err = wire.SealAck(a, s.b.DownlinkKey)
	if err != nil {
		t.Fatal(err)
	}
	return ack, r, verr
}

func (s *miniServer) token(t testing.TB, action string, id byte) []byte {
	tok := &wire.Token{Dev: s.b.Device, Epoch: s.b.Epoch, ID: bytes.Repeat([]byte{id}, 16), Action: action, UntilRSeq: 1000, Args: wire.TokenArgs{Window: 600}}
	data, err := wire.SealToken(tok, s.b.DownlinkKey)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func newDevice(t testing.TB) (*Device, *miniServer, *fschain.MemStorage) {
	b, priv := newBundle(t, "meter-1")
	st := fschain.NewMemStorage()
	d, err := New(Config{Bundle: b, Manifest: wire.ManifestRef{Product: "watermeter", Version: 1, Root: make([]byte, 32)}, Chain: st, Now: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return d, newMini(b, priv), st
}

func roundTrip(t testing.TB, d *Device, s *miniServer, now uint64) (*wire.Report, error) {
	t.Helper()
	rep, err := d.Report(now)
	if err != nil {
		t.Fatal(err)
	}
	ack, r, verr := s.handle(t, rep)
	if verr != nil {
		t.Fatalf("server rejected the log: %v", verr)
	}
	return r, d.HandleAck(ack, now)
}

func TestReportAckPrune(t *testing.T) {
	d, s, _ := newDevice(t)
	if err := d.Check(1001, 4, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	d.SetReading(1234, 0)
	d.Register(1002)
	r, err := roundTrip(t, d, s, 1003)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Log.Entries) != 3 || r.Reading.Litres != 1234 || r.Meas.Status != wire.MeasOK {
		t.Fatalf("report: %d entries, reading %+v, meas %+v", len(r.Log.Entries), r.Reading, r.Meas)
	}
	if st := d.Status(); st.Pending != 0 || st.AckedRSeq != 1 {
		t.Fatalf("after ack: %+v", st)
	}
	// A routine report: no entries, the nonce echoed.
	r, err = roundTrip(t, d, s, 1900)
	if err != nil || len(r.Log.Entries) != 0 || r.Nonce == nil {
		t.Fatalf("second report: err %v, %d entries, nonce %x", err, len(r.Log.Entries), r.Nonce)
	}
}

func TestEditRestoreStaysInLog(t *testing.T) {
	d, s, _ := newDevice(t)
	d.Check(1001, 4, nil, nil, nil)
	d.Check(1002, 4, []wire.Finding{{Path: "app/main.mpy", Kind: wire.KindModified}}, nil, nil)
	d.Check(1003, 4, nil, nil, nil)
	r, err := roundTrip(t, d, s, 1004)
	if err != nil {
		t.Fatal(err)
	}
	var fail bool
	for _, e := range r.Log.Entries {
		fail = fail || e.Type == wire.EntryCheckFail
	}
	if !fail || r.Meas.Status != wire.MeasOK || r.State&wire.StateTamperLatched == 0 {
		t.Fatalf("check-fail in log %v, meas %d, state %b", fail, r.Meas.Status, r.State)
	}
}

func TestForgedAckPrunesNothing(t *testing.T) {
	d, s, _ := newDevice(t)
	rep, _ := d.Report(1001)
	ack, _, _ := s.handle(t, rep)
	before := d.Status().Pending
	ack[len(ack)-1] ^= 1
	if err := d.HandleAck(ack, 1002); !errors.Is(err, ErrBadDownlink) {
		t.Fatalf("forged ack: %v", err)
	}
	seg := d.Segment()
	if len(seg.Entries) != before+1 || seg.Entries[len(seg.Entries)-1].Type != wire.EntryBadDownlink {
		t.Fatalf("want every entry kept and a bad-downlink logged, got %d entries", len(seg.Entries))
	}
}

func TestTokenSingleUse(t *testing.T) {
	d, s, _ := newDevice(t)
	tok := s.token(t, wire.TokenService, 7)
	s.cmds = [][]byte{tok}
	if _, err := roundTrip(t, d, s, 1001); err != nil {
		t.Fatal(err)
	}
	if !d.Status().InService {
		t.Fatal("service token not applied")
	}
	d.Cover(1002, true, wire.CoverSourceIRQ)
	if d.Status().Flags&wire.StateCoverWasOpen != 0 {
		t.Fatal("cover opened in a service window latched tamper")
	}
	d.Cover(1003, false, wire.CoverSourceIRQ)
	if err := d.ApplyToken(tok, 1004); !errors.Is(err, ErrBadDownlink) {
		t.Fatalf("replayed token: %v", err)
	}
	d.Tick(1700)
	if d.Status().InService {
		t.Fatal("service window did not close")
	}
	d.Cover(1701, true, wire.CoverSourceIRQ)
	if d.Status().Flags&wire.StateCoverWasOpen == 0 {
		t.Fatal("cover opened after the window did not latch")
	}
}

func TestRebootKeepsCounters(t *testing.T) {
	d, s, st := newDevice(t)
	roundTrip(t, d, s, 1001)
	d.Magnet(1002, 5)
	d2, err := New(Config{Bundle: d.b, Manifest: d.man, Chain: st, Now: 1003})
	if err != nil {
		t.Fatal(err)
	}
	if st := d2.Status(); st.Boot != 2 || st.RSeq != 1 || st.Flags&wire.StateMagnet == 0 {
		t.Fatalf("after reboot: %+v", st)
	}
	r, err := roundTrip(t, d2, s, 1004)
	if err != nil || r.RSeq != 2 || r.Boot != 2 {
		t.Fatalf("report after reboot: err %v rseq %d boot %d", err, r.RSeq, r.Boot)
	}
}

// K_1 is needed only to create the log: a device whose log exists starts without it, and
// one whose log is gone cannot start a new one (it would fork the log the server holds)
// and says what to do.
func TestThreatD11_ChainKeyOnlyCreatesTheLog(t *testing.T) {
	b, _ := newBundle(t, "meter-1")
	st := fschain.NewMemStorage()
	cfg := Config{Bundle: b, Manifest: wire.ManifestRef{Product: "watermeter", Version: 1, Root: make([]byte, 32)}, Chain: st, Now: 1000}
	d, err := New(cfg)
	if err != nil || !d.Created() {
		t.Fatalf("first start: %v, created %v", err, d != nil && d.Created())
	}
	erased := *b
	erased.ChainKey = nil
	cfg.Bundle = &erased
	if d, err := New(cfg); err != nil || d.Created() {
		t.Fatalf("restart with the log and without K_1: %v", err)
	}
	cfg.Chain = fschain.NewMemStorage()
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "re-provision") {
		t.Fatalf("no log and no K_1: %v", err)
	}
}
