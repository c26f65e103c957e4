package mpharness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

func (r *rig) seal(a *wire.Ack, key []byte) []byte {
	b, err := wire.SealAck(a, key)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func (r *rig) tokenBytes(tok *wire.Token, key []byte) []byte {
	b, err := wire.SealToken(tok, key)
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func (r *rig) newToken(action string, rseq uint64, args wire.TokenArgs) *wire.Token {
	id := make([]byte, 16)
	rand.Read(id)
	return &wire.Token{Dev: r.bundle.Device, Epoch: r.bundle.Epoch, ID: id, Action: action,
		UntilRSeq: rseq + 10, Expires: t0 + 365*86400, Args: args}
}

func (r *rig) lastEntries(a fschain.Anchor) []wire.Entry {
	r.t.Helper()
	_, es := r.verify(a, r.report())
	return es
}

func (r *rig) ack(b []byte) string {
	r.t.Helper()
	res, err := r.d.Ack(b)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

func (r *rig) token(b []byte) string {
	r.t.Helper()
	res, err := r.d.Token(b)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// S5: a forged ack (wrong key, R instead of T, flipped MAC, wrong device, wrong anchor)
// prunes nothing and is logged as bad-downlink; a genuine Go-made ack prunes.
func TestThreatS5_ForgedAckPrunesNothing(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	r.step(Cmd{"cmd": "cover", "open": true})
	r.step(Cmd{"cmd": "cover", "open": false})
	rep := r.report()
	a, _ := r.verify(r.anchor0(), rep)
	good := &wire.Ack{Dev: r.bundle.Device, Epoch: 1, AckedRSeq: rep.RSeq, Nonce: []byte("nonce-1"),
		Anchor: wire.Anchor{N: a.N, Head: a.Head[:]}}
	other := make([]byte, 32)
	rand.Read(other)
	flipped := r.seal(good, r.bundle.DownlinkKey)
	flipped[len(flipped)-1] ^= 1
	wrongDev := *good
	wrongDev.Dev = "wm-9999"
	wrongHead := *good
	wrongHead.Anchor = wire.Anchor{N: a.N, Head: make([]byte, 32)}
	for _, c := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"unknown key", r.seal(good, other), "bad-mac"},
		{"uplink key R", r.seal(good, r.bundle.UplinkKey), "bad-mac"},
		{"flipped MAC", flipped, "bad-mac"},
		{"garbage", []byte{0xd1, 0x84, 0x01}, "malformed"},
		{"other device", r.seal(&wrongDev, r.bundle.DownlinkKey), "wrong-device"},
		{"anchor head not ours", r.seal(&wrongHead, r.bundle.DownlinkKey), "anchor-mismatch"},
	} {
		if got := r.ack(c.msg); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	s := r.step(Cmd{"cmd": "state"}).Summary
	if s.Base != 0 {
		t.Fatalf("pruned to %d by a forged ack", s.Base)
	}
	es := r.lastEntries(a) // still verifies from the anchor, and holds the rejections
	n := 0
	for _, e := range es {
		if e.Type == wire.EntryBadDownlink {
			n++
		}
	}
	if n != 6 {
		t.Fatalf("%d bad-downlink entries, want 6: %v", n, types(es))
	}
	// the genuine ack, made by Go's wire.SealAck, prunes what the anchor covers
	rep = r.report()
	a2, _ := r.verify(a, rep)
	if got := r.ack(r.seal(&wire.Ack{Dev: r.bundle.Device, Epoch: 1, AckedRSeq: rep.RSeq, Nonce: []byte("n2"),
		Anchor: wire.Anchor{N: a2.N, Head: a2.Head[:]}}, r.bundle.DownlinkKey)); got != "ok" {
		t.Fatalf("genuine ack: %q", got)
	}
	s = r.step(Cmd{"cmd": "state"}).Summary
	if s.Base != a2.N {
		t.Fatalf("base %d, want %d", s.Base, a2.N)
	}
	rep = r.report()
	if string(rep.Nonce) != "n2" || rep.Log.First != a2.N+1 || len(rep.Log.Entries) != 0 {
		t.Fatalf("after prune: nonce %q first %d entries %d", rep.Nonce, rep.Log.First, len(rep.Log.Entries))
	}
	r.verify(a2, rep)
}

// D10 + S6: latched tamper state survives reboots and is cleared only by a clear token
// under T; the clearing is logged; a replayed token is refused and logged.
func TestThreatD10_ClearOnlyWithToken(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	r.step(Cmd{"cmd": "cover", "open": true})
	r.step(Cmd{"cmd": "cover", "open": false})
	r.off()
	s := r.boot().Summary
	if s.Flags&wire.StateCoverWasOpen == 0 || s.Flags&wire.StateTamperLatched == 0 {
		t.Fatalf("latch lost across reboot: %b", s.Flags)
	}
	a := r.anchor0()
	tok := r.newToken(wire.TokenClear, s.RSeq, wire.TokenArgs{})
	other := make([]byte, 32)
	rand.Read(other)
	if got := r.token(r.tokenBytes(tok, other)); got != "bad-mac" {
		t.Fatalf("forged clear token: %q", got)
	}
	if got := r.token(r.tokenBytes(tok, r.bundle.UplinkKey)); got != "bad-mac" {
		t.Fatalf("clear token under R: %q", got)
	}
	if f := r.step(Cmd{"cmd": "state"}).Summary.Flags; f&wire.StateTamperLatched == 0 {
		t.Fatalf("cleared by a forged token: %b", f)
	}
	if got := r.token(r.tokenBytes(tok, r.bundle.DownlinkKey)); got != "ok" {
		t.Fatalf("clear token: %q", got)
	}
	if f := r.step(Cmd{"cmd": "state"}).Summary.Flags; f&(wire.StateTamperLatched|wire.StateCoverWasOpen) != 0 {
		t.Fatalf("not cleared: %b", f)
	}
	// S6: the same token again
	r.step(Cmd{"cmd": "cover", "open": true})
	r.step(Cmd{"cmd": "cover", "open": false})
	if got := r.token(r.tokenBytes(tok, r.bundle.DownlinkKey)); got != "token-replay" {
		t.Fatalf("replayed token: %q", got)
	}
	// also after a reboot (used ids are persisted)
	r.off()
	r.boot()
	if got := r.token(r.tokenBytes(tok, r.bundle.DownlinkKey)); got != "token-replay" {
		t.Fatalf("replayed token after reboot: %q", got)
	}
	if f := r.step(Cmd{"cmd": "state"}).Summary.Flags; f&wire.StateTamperLatched == 0 {
		t.Fatalf("replay cleared the latch: %b", f)
	}
	// expired by rseq
	old := r.newToken(wire.TokenClear, 0, wire.TokenArgs{})
	old.UntilRSeq = 0
	r.report()
	if got := r.token(r.tokenBytes(old, r.bundle.DownlinkKey)); got != "token-expired" {
		t.Fatalf("expired token: %q", got)
	}
	es := r.lastEntries(a)
	var cleared, bad int
	for _, e := range es {
		switch e.Type {
		case wire.EntryTamperCleared:
			cleared++
			var p wire.TamperClearedPayload
			if err := wire.Unmarshal(e.Payload, &p); err != nil || string(p.TokenID) != string(tok.ID) {
				t.Fatalf("tamper-cleared payload %+v %v", p, err)
			}
		case wire.EntryBadDownlink:
			bad++
		}
	}
	if cleared != 1 || bad != 5 {
		t.Fatalf("tamper-cleared %d, bad-downlink %d: %v", cleared, bad, types(es))
	}
}

// A service token opens a window: the cover opening in it is logged as service, not tamper.
func TestServiceWindowToken(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	s := r.boot().Summary
	tok := r.newToken(wire.TokenService, s.RSeq, wire.TokenArgs{WorkOrder: "WO-17", Technician: "kim", Window: 1800})
	// delivered inside an ack, as the server does
	rep := r.report()
	a, _ := r.verify(r.anchor0(), rep)
	ack := &wire.Ack{Dev: r.bundle.Device, Epoch: 1, AckedRSeq: rep.RSeq, Anchor: wire.Anchor{N: a.N, Head: a.Head[:]},
		Commands: [][]byte{r.tokenBytes(tok, r.bundle.DownlinkKey)}}
	if got := r.ack(r.seal(ack, r.bundle.DownlinkKey)); got != "ok" {
		t.Fatalf("ack with service token: %q", got)
	}
	st := r.step(Cmd{"cmd": "cover", "open": true}).Summary
	if st.Flags&wire.StateServiceMode == 0 || st.Flags&wire.StateCoverWasOpen != 0 {
		t.Fatalf("flags in service window %b", st.Flags)
	}
	r.step(Cmd{"cmd": "cover", "open": false})
	r.step(Cmd{"cmd": "tick", "s": 1800})
	es := r.lastEntries(a)
	want := []uint16{wire.EntryServiceBegin, wire.EntryCoverOpen, wire.EntryCoverClose, wire.EntryServiceEnd}
	got := types(es)
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entries %v, want %v", got, want)
		}
	}
	var sb wire.ServiceBeginPayload
	if err := wire.Unmarshal(es[0].Payload, &sb); err != nil || sb.WorkOrder != "WO-17" || sb.Technician != "kim" {
		t.Fatalf("service-begin %+v %v", sb, err)
	}
	var co wire.CoverOpenPayload
	if err := wire.Unmarshal(es[1].Payload, &co); err != nil || co.Source != "service" {
		t.Fatalf("cover-open %+v %v", co, err)
	}
}

// S7: a manifest token installs only a higher version of the same product.
func TestThreatS7_ManifestUpgradeOnly(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	s := r.boot().Summary
	_, vendor, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(m wire.Manifest) []byte {
		b, err := wire.SignManifest(&m, vendor)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// version 2 of the app: a new calibration module
	newCalib := r.mpy("K = 43\n")
	m2 := r.app.M
	m2.Version = 2
	m2.Files = append([]wire.File(nil), r.app.M.Files...)
	for i, f := range m2.Files {
		if f.Path == "calib.mpy" {
			sum := sha256sum(newCalib)
			m2.Files[i] = wire.File{Path: f.Path, Size: uint64(len(newCalib)), SHA256: sum}
		}
	}
	m2.Root = wire.FilesRoot(m2.Files)
	foreign := m2
	foreign.Product = "gasmeter"
	older := r.app.M
	older.Version = 1
	for _, c := range []struct {
		m    wire.Manifest
		want string
	}{{foreign, "wrong-product"}, {older, "downgrade"}} {
		tok := r.newToken(wire.TokenManifest, s.RSeq, wire.TokenArgs{Manifest: sign(c.m)})
		if got := r.token(r.tokenBytes(tok, r.bundle.DownlinkKey)); got != c.want {
			t.Fatalf("%s v%d: %q, want %q", c.m.Product, c.m.Version, got, c.want)
		}
	}
	r.step(Cmd{"cmd": "edit", "path": "calib.mpy", "b64": b64(newCalib)})
	tok := r.newToken(wire.TokenManifest, s.RSeq, wire.TokenArgs{Manifest: sign(m2)})
	if got := r.token(r.tokenBytes(tok, r.bundle.DownlinkKey)); got != "ok" {
		t.Fatalf("upgrade: %q", got)
	}
	r.off()
	b := r.boot()
	if b.Summary.ManifestVersion != 2 || len(b.Summary.Bad) != 0 {
		t.Fatalf("after upgrade and reboot: v%d bad %v", b.Summary.ManifestVersion, b.Summary.Bad)
	}
	if imp, _ := r.d.Import("calib", "K"); !imp.OK || imp.Value != float64(43) {
		t.Fatalf("calib v2: %+v", imp)
	}
	rep := r.report()
	if rep.Man.Version != 2 || string(rep.Man.Root) != string(m2.Root) {
		t.Fatalf("report man %+v", rep.Man)
	}
	_, es := r.verify(r.anchor0(), rep)
	if !hasType(es, wire.EntryManifestUpdate) {
		t.Fatalf("entries %v", types(es))
	}
}

// Garbage on the downlink cannot fill the log: after 16 rejections without a good ack in
// between, rejections are only counted, and the count is logged with the next good ack.
func TestBadDownlinkFloodBounded(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	for i := 0; i < 40; i++ {
		if got := r.ack([]byte{0xd1, 0x84}); got != "malformed" {
			t.Fatalf("garbage %d: %q", i, got)
		}
	}
	rep := r.report()
	a, es := r.verify(r.anchor0(), rep)
	n := 0
	for _, e := range es {
		if e.Type == wire.EntryBadDownlink {
			n++
		}
	}
	if n != 16 {
		t.Fatalf("%d bad-downlink entries, want 16", n)
	}
	if got := r.ack(r.seal(&wire.Ack{Dev: r.bundle.Device, Epoch: 1, AckedRSeq: rep.RSeq, Anchor: wire.Anchor{N: a.N, Head: a.Head[:]}}, r.bundle.DownlinkKey)); got != "ok" {
		t.Fatalf("ack %q", got)
	}
	_, es = r.verify(a, r.report())
	var p wire.BadDownlinkPayload
	if len(es) != 1 || wire.Unmarshal(es[0].Payload, &p) != nil || p.Why != "24 more rejected downlinks not logged" {
		t.Fatalf("after ack: %v %+v", types(es), p)
	}
}

// Policy on-cover-open=refuse: once the cover was opened, no application code is served
// until a clear token.
func TestCoverOpenRefusePolicy(t *testing.T) {
	pol := wire.DefaultPolicy()
	pol.OnCoverOpen = wire.ActionRefuse
	r := newRig(t, nil, AppOptions{Policy: pol})
	s := r.boot().Summary
	r.step(Cmd{"cmd": "cover", "open": true})
	if imp, _ := r.d.Import("main", "VALUE"); imp.OK {
		t.Fatal("code served after the cover opened")
	}
	r.step(Cmd{"cmd": "cover", "open": false})
	if got := r.token(r.tokenBytes(r.newToken(wire.TokenClear, s.RSeq, wire.TokenArgs{}), r.bundle.DownlinkKey)); got != "ok" {
		t.Fatalf("clear: %q", got)
	}
	if imp, _ := r.d.Import("main", "VALUE"); !imp.OK {
		t.Fatalf("after clear: %+v", imp)
	}
}

// S6: a service token is single-use: replayed directly, after a reboot too, it is refused
// and logged; repeated inside a later ack it is ignored; its window is not reopened.
func TestThreatS6_TokenReplayRefused(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	s := r.boot().Summary
	tok := r.tokenBytes(r.newToken(wire.TokenService, s.RSeq, wire.TokenArgs{Window: 600}), r.bundle.DownlinkKey)
	if got := r.token(tok); got != "ok" {
		t.Fatalf("first use: %q", got)
	}
	r.step(Cmd{"cmd": "tick", "s": 700}) // window over
	if got := r.token(tok); got != "token-replay" {
		t.Fatalf("direct replay: %q", got)
	}
	rep := r.report()
	a, _ := r.verify(r.anchor0(), rep)
	ack := &wire.Ack{Dev: r.bundle.Device, Epoch: 1, AckedRSeq: rep.RSeq, Anchor: wire.Anchor{N: a.N, Head: a.Head[:]}, Commands: [][]byte{tok}}
	// inside a later accepted ack it is the server's resend of a pending token: ignored,
	// not applied again (the window stays closed) and not logged
	if got := r.ack(r.seal(ack, r.bundle.DownlinkKey)); got != "ok" {
		t.Fatalf("repeat inside an ack: %q", got)
	}
	if f := r.step(Cmd{"cmd": "state"}).Summary.Flags; f&wire.StateServiceMode != 0 {
		t.Fatalf("service window reopened by a repeat inside an ack: %b", f)
	}
	r.off()
	r.boot()
	if got := r.token(tok); got != "token-replay" {
		t.Fatalf("replay after reboot: %q", got)
	}
	if f := r.step(Cmd{"cmd": "state"}).Summary.Flags; f&wire.StateServiceMode != 0 {
		t.Fatalf("service window reopened by a replay: %b", f)
	}
}

// S8 at the device: oversized, deeply nested, trailing-byte or non-COSE downlinks are
// rejected by name with bounded work; the device keeps running and logs them.
func TestThreatS8_MalformedDownlinks(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	r.boot()
	nested := bytes.Repeat([]byte{0x81}, 5000) // [[[[...]]]]
	good := r.tokenBytes(r.newToken(wire.TokenConfig, 0, wire.TokenArgs{CheckInterval: 600}), r.bundle.DownlinkKey)
	for _, c := range []struct {
		name string
		msg  []byte
		want string
	}{
		{"oversize", make([]byte, 17<<10), "oversize"},
		{"deeply nested", append([]byte{0xd1}, nested...), "malformed"},
		{"trailing bytes", append(append([]byte(nil), good...), 0x00), "malformed"},
		{"indefinite length", []byte{0xd1, 0x9f, 0xff}, "malformed"},
		{"sign1 instead of mac0", append([]byte{0xd2}, good[1:]...), "malformed"},
		{"empty", []byte{}, "malformed"},
	} {
		if got := r.token(c.msg); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if got := r.token(good); got != "ok" {
		t.Fatalf("a good token after the garbage: %q", got)
	}
}
