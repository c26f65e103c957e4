package mpharness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/lpwan"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store/storeurl"
	"github.com/fieldseal/fieldseal/wire"
)

// lpRound runs one LPWAN round of the guard (fieldseal/lpwan.py) under the real
// interpreter, feeds its frames to the server and the answers back; it returns the guard's
// outcome of the last downlink ("" when none came).
func lpRound(t *testing.T, r *rig, lp *lpwan.Assembler) (frames int, outcome string) {
	t.Helper()
	return lpRoundRecorded(t, r, lp, nil)
}

// lpMeter is the guard's LPWAN session, made once per device and kept on it.
const lpMeter = "from fieldseal import lpwan\nimport ubinascii\nif not hasattr(D, 'lp'):\n    D.lp = lpwan.Meter(D)\n"

// lpFrames decodes a round's frames (base64 strings from the guard) and checks their size.
func lpFrames(t *testing.T, v any) [][]byte {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("uplink: %v", v)
	}
	var out [][]byte
	for _, v := range list {
		f, _ := base64.StdEncoding.DecodeString(v.(string))
		if len(f) > wire.LPMaxFrame {
			t.Fatalf("a %d-byte frame from the guard", len(f))
		}
		out = append(out, f)
	}
	return out
}

// lpFeed hands a round's frames to the server and the server's answers to the guard; it
// returns the guard's outcome of the last downlink ("" when none came).
func lpFeed(t *testing.T, r *rig, lp *lpwan.Assembler, frames [][]byte) (outcome string) {
	t.Helper()
	for _, f := range frames {
		out, err := lp.HandleFrame(context.Background(), r.bundle.Device, f)
		if err != nil {
			t.Fatalf("server refused the guard's frame: %v", err)
		}
		if out.Downlink != nil {
			got := r.step(Cmd{"cmd": "exec", "code": fmt.Sprintf("import ubinascii\nresult = D.lp.downlink(ubinascii.a2b_base64(%q))\n",
				base64.StdEncoding.EncodeToString(out.Downlink))})
			outcome, _ = got.Result.(string)
		}
	}
	return outcome
}

// lpFleet is a real server (SQLite store, no listeners) that knows r's app and has
// provisioned r's device, and its LPWAN ingest.
func lpFleet(t *testing.T, r *rig) (*server.Server, *lpwan.Assembler) {
	t.Helper()
	vendor := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	dir := t.TempDir()
	st, err := storeurl.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := serve.New(server.Config{DataDir: dir, Store: st, HTTPAddr: "off", MQTTAddr: "off",
		VendorKeys: []ed25519.PublicKey{vendor.Public().(ed25519.PublicKey)}, Now: func() time.Time { return time.Unix(t0, 0) },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	signed, err := wire.SignManifest(&r.app.M, vendor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterManifest(context.Background(), signed); err != nil {
		t.Fatal(err)
	}
	b, err := s.ProvisionDevice(context.Background(), "wm-0001", r.app.M.Product)
	if err != nil {
		t.Fatal(err)
	}
	r.bundle = *b
	if err := Provision(filepath.Join(r.dir, "int"), *b); err != nil {
		t.Fatal(err)
	}
	return s, lpwan.New(s)
}

// The guard speaks the LPWAN profile to the real server (no Go device code in between): its
// frames verify under the FS-chain rules, a routine round is one 45-byte status and no
// downlink, a cover opening asks for an ack, which prunes, and the server turns it tampered.
func TestGuardLPWANToServer(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	s, lp := lpFleet(t, r)
	r.boot()
	if n, out := lpRound(t, r, lp); n < 2 || out != "" {
		t.Fatalf("first round: %d frames, downlink outcome %q", n, out)
	}
	d, _ := s.Store().GetDevice(context.Background(), "wm-0001")
	if d.State != "trusted" || d.AnchorN == 0 {
		t.Fatalf("after the first round: %s anchor %d (%s)", d.State, d.AnchorN, d.StateReason)
	}
	if n, out := lpRound(t, r, lp); n != 1 || out != "" {
		t.Fatalf("routine round: %d frames, downlink %q", n, out)
	}
	r.step(Cmd{"cmd": "cover", "open": true})
	if _, out := lpRound(t, r, lp); out != "ok" {
		t.Fatalf("tamper round: downlink outcome %q", out)
	}
	d, _ = s.Store().GetDevice(context.Background(), "wm-0001")
	if d.State != "tampered" {
		t.Fatalf("after the cover opened: %s", d.State)
	}
	if s := r.step(Cmd{"cmd": "state"}).Summary; s.Base != d.AnchorN {
		t.Fatalf("guard pruned to %d, server anchor %d", s.Base, d.AnchorN)
	}
}

// D24 over the LPWAN profile: a round carries at most lpwan.ROUND_FRAMES frames (8, the
// status included), whatever the log holds (its heap is measured where the collector is a
// board's, in firmware.TestThreatD24_LPWANRoundsBoundedOnCortexM3). A full 12 KiB log
// (routine entries of two fragments each, so rounds end inside an entry) goes out over many
// rounds, each a prefix the server verifies (VerifyPrefix) and acks flagged resend at the
// last entry it holds; the guard prunes to each anchor and goes on from where it stopped; a
// round the modem failed to send is rewound and carried by the next. Every entry reaches the
// server once, in order; at the end the server holds the device's n, verified, and the
// guard's log is pruned to it.
func TestThreatD24_LPWANRoundsBoundedWhateverTheLogHolds(t *testing.T) {
	r := newRig(t, nil, AppOptions{})
	s, lp := lpFleet(t, r)
	r.boot()
	ctx := context.Background()

	// A short log: the boot's entries, one round.
	shortN := r.step(Cmd{"cmd": "state"}).Summary.N
	shortFrames, _ := lpRound(t, r, lp)
	if shortFrames > 8 {
		t.Fatalf("short log: %d frames in a round", shortFrames)
	}
	if d, _ := s.Store().GetDevice(ctx, "wm-0001"); d.AnchorN != shortN {
		t.Fatalf("short log of %d entries: server anchor %d", shortN, d.AnchorN)
	}

	// The log filled to its cap with routine entries (through the guard's own log API).
	fill := r.step(Cmd{"cmd": "exec", "code": "from fieldseal import device\nwhile D.chain.s['dr'] == 0:\n" +
		"    D.log(device.CHECK_OK, {1: 1, 2: b'r' * 32, 3: 5})\nresult = [D.chain.log_size, D.chain.s['n'], D.chain.s['bn']]\n"}).Result.([]any)
	size, n, base := int(fill[0].(float64)), uint64(fill[1].(float64)), uint64(fill[2].(float64))
	if size < 12288-200 || n-base < 100 {
		t.Fatalf("log not full: %d bytes, entries %d..%d", size, base+1, n)
	}

	// Every entry frame the guard sends, by entry and fragment, over all rounds.
	type frag struct {
		n    uint32
		i    uint8
		last bool
	}
	var sent []frag
	recordAll := func(frames [][]byte) {
		for _, f := range frames {
			body, err := wire.LPOpen(f, r.bundle.UplinkKey, r.bundle.Device, r.bundle.Epoch)
			if err != nil {
				t.Fatal(err)
			}
			if body[0] == wire.LPEntry {
				e, _ := wire.DecodeLPEntry(body)
				sent = append(sent, frag{e.N, e.Index, e.Last})
			}
		}
	}
	record := recordAll
	rounds, most := 0, 0
	for {
		st := r.step(Cmd{"cmd": "state"}).Summary
		d, _ := s.Store().GetDevice(ctx, "wm-0001")
		if st.Base == st.N && d.AnchorN == st.N {
			break
		}
		if rounds++; rounds > 100 {
			t.Fatalf("backlog not drained after %d rounds: guard %d..%d, server anchor %d", rounds, st.Base, st.N, d.AnchorN)
		}
		if rounds == 5 {
			// A round the modem failed to send (the board adapter's rewind): its frames are
			// dropped and the next round carries the same entry fragments again.
			lost := lpFrames(t, r.step(Cmd{"cmd": "exec", "code": lpMeter + "mk = D.lp.mark()\nfs = D.lp.uplink()\nD.lp.rewind(mk)\n" +
				"result = [ubinascii.b2a_base64(f).decode().strip() for f in fs]\n"}).Result)
			from := len(sent)
			record(lost[:len(lost)-1])
			failed := append([]frag(nil), sent[from:]...)
			sent = sent[:from]
			record = func(frames [][]byte) {
				base := len(sent)
				recordAll(frames)
				if len(failed) > 0 && (len(sent)-base < len(failed) || sent[base] != failed[0] || sent[base+len(failed)-1] != failed[len(failed)-1]) {
					t.Fatalf("after a failed round: %v, want the failed round's fragments %v first", sent[base:], failed)
				}
				failed = nil
			}
		}
		nf, _ := lpRoundRecorded(t, r, lp, record)
		most = max(most, nf)
	}
	if most > 8 {
		t.Fatalf("a round of %d frames (budget 8)", most)
	}
	// once each, in order: fragments 0, 1, … of entry shortN+1, then of the next, …
	want := frag{uint32(shortN + 1), 0, false}
	for _, f := range sent {
		if f.n != want.n || f.i != want.i {
			t.Fatalf("fragment %d of entry %d sent where %d/%d was due (every entry once, in order)", f.i, f.n, want.i, want.n)
		}
		if want.i++; f.last {
			want = frag{f.n + 1, 0, false}
		}
	}
	d, _ := s.Store().GetDevice(ctx, "wm-0001")
	if uint64(want.n) != d.AnchorN+1 || d.AnchorN < n || d.State == "tampered" {
		t.Fatalf("server: %s, anchor %d; entries sent up to %d; log filled to %d", d.State, d.AnchorN, want.n-1, n)
	}
	t.Logf("budget 8 frames a round. Short log (%d entries): %d frames; full log (%d bytes, %d entries waiting): "+
		"drained in %d rounds of at most %d frames, %d entry frames, server anchor %d (%s)",
		shortN, shortFrames, size, n-base, rounds, most, len(sent), d.AnchorN, d.State)
}

// lpRoundRecorded is lpRound with the round's frames shown to record (when not nil) first.
func lpRoundRecorded(t *testing.T, r *rig, lp *lpwan.Assembler, record func([][]byte)) (frames int, outcome string) {
	t.Helper()
	fs := lpFrames(t, r.step(Cmd{"cmd": "exec", "code": lpMeter +
		"result = [ubinascii.b2a_base64(f).decode().strip() for f in D.lp.uplink()]\n"}).Result)
	if record != nil {
		record(fs)
	}
	return len(fs), lpFeed(t, r, lp, fs)
}
