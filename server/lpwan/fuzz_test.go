package lpwan

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/memstore"
	"github.com/fieldseal/fieldseal/wire"
)

// FuzzHandleFrames feeds the assembler of a real server (in-memory store: coverage-
// instrumented SQLite would make fuzzing crawl) a sequence of frames for a provisioned
// meter, cut from the fuzz input (each frame: a length byte, then up to LPMaxFrame bytes).
//
// keyed false: the frames go as they are, as a network server or anyone on the air could
// send them. Unless one carries the device's MAC (only the seeds' real frames do), the
// device row, its alerts and the pending fragments stay exactly as they were (threat S14).
//
// keyed true: each piece is a frame body MAC'd under the device's R, as a renter holding
// the keys could send it. Whatever the bodies, no panic, every refusal has a reason, and
// the device's pending fragments stay within the assembler's caps.
func FuzzHandleFrames(f *testing.F) {
	ctx := context.Background()
	s, b, dev := fuzzLPServer(f)
	l := New(s)
	seeds := fuzzLPSeedRounds(f, s, b)
	for _, round := range seeds {
		f.Add(false, joinFrames(round))
		bodies := make([][]byte, len(round))
		for i, fr := range round {
			bodies[i] = fr[:len(fr)-wire.LPMACSize]
		}
		f.Add(true, joinFrames(bodies))
	}
	f.Add(false, []byte{51, 0x01})
	f.Add(true, []byte{6, wire.LPEntry, 0xff, 0xff, 0xff, 0xff, 0x1d, 1, 0x02})
	f.Fuzz(func(t *testing.T, keyed bool, data []byte) {
		before, err := s.Store().GetDevice(ctx, dev.ID)
		if err != nil {
			t.Fatal(err)
		}
		alertsBefore := fuzzAlerts(t, s, dev.ID)
		pendingBefore := l.snapshot(dev.ID)
		authentic := false
		for _, fr := range splitFrames(data) {
			if keyed {
				if len(fr) > wire.LPMaxFrame-wire.LPMACSize {
					fr = fr[:wire.LPMaxFrame-wire.LPMACSize]
				}
				mac := wire.LPMAC(dev.UplinkKey, dev.ID, dev.Epoch, fr)
				fr = append(fr, mac[:]...)
			}
			if _, err := wire.LPOpen(fr, dev.UplinkKey, dev.ID, dev.Epoch); err == nil {
				authentic = true
			}
			res, err := l.HandleFrame(ctx, dev.ID, fr)
			var re *server.RejectError
			switch {
			case err != nil && (!errors.As(err, &re) || re.Reason == ""):
				t.Fatalf("frame %x refused without a reason: %v", fr, err)
			case err == nil && (res == nil || res.Kind != "status" && res.Kind != "entry"):
				t.Fatalf("frame %x: result %+v", fr, res)
			case err == nil && res.Downlink != nil:
				if _, err := wire.LPOpen(res.Downlink, dev.DownlinkKey, dev.ID, dev.Epoch); err != nil || len(res.Downlink) > wire.LPMaxFrame {
					t.Fatalf("downlink %x: %v", res.Downlink, err)
				}
			}
			l.checkCaps(t, dev.ID)
		}
		if authentic {
			return
		}
		after, err := s.Store().GetDevice(ctx, dev.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.State != before.State || after.StateReason != before.StateReason || after.AnchorN != before.AnchorN ||
			!bytes.Equal(after.AnchorHead, before.AnchorHead) || !bytes.Equal(after.AnchorKey, before.AnchorKey) ||
			after.LastRSeq != before.LastRSeq || after.Rejections != before.Rejections || !after.LastSeen.Equal(before.LastSeen) {
			t.Fatalf("frames without the device's MAC changed it: %+v\nbecame %+v", before, after)
		}
		if n := len(fuzzAlerts(t, s, dev.ID)); n != len(alertsBefore) {
			t.Fatalf("frames without the device's MAC raised alerts: %d, then %d", len(alertsBefore), n)
		}
		if got := l.snapshot(dev.ID); got != pendingBefore {
			t.Fatalf("frames without the device's MAC changed the pending fragments:\n%s\nbecame\n%s", pendingBefore, got)
		}
	})
}

// splitFrames cuts data into frames: a length byte (taken modulo LPMaxFrame+1), then that
// many bytes (fewer at the end).
func splitFrames(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(int(data[0])%(wire.LPMaxFrame+1), len(data)-1)
		out = append(out, bytes.Clone(data[1:1+n]))
		data = data[1+n:]
	}
	return out
}

// joinFrames is the fuzz input splitFrames cuts into frames.
func joinFrames(frames [][]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	return b
}

// checkCaps fails unless dev's pending fragments are within the assembler's bounds.
func (l *Assembler) checkCaps(t *testing.T, dev string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devs[dev]
	if d == nil {
		return
	}
	if len(d.frags) > lpMaxPendingEntries || len(d.last) > len(d.frags) {
		t.Fatalf("%d entries pending (%d with a last fragment), cap %d", len(d.frags), len(d.last), lpMaxPendingEntries)
	}
	for n, fs := range d.frags {
		if len(fs) > lpMaxFragments {
			t.Fatalf("entry %d: %d fragments, cap %d", n, len(fs), lpMaxFragments)
		}
		for i, b := range fs {
			if i >= lpMaxFragments || len(b) > wire.LPEntryChunk {
				t.Fatalf("entry %d: fragment %d of %d bytes", n, i, len(b))
			}
		}
	}
	if len(d.tokens) > 0 {
		t.Fatalf("%d tokens queued: nobody issued one", len(d.tokens))
	}
}

// snapshot renders dev's pending fragments and tokens, for comparison.
func (l *Assembler) snapshot(dev string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.devs[dev]
	if d == nil {
		return "none"
	}
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(d.frags)) {
		last, ok := d.last[n]
		fmt.Fprintf(&b, "entry %d (last %d %v):", n, last, ok)
		for _, i := range slices.Sorted(maps.Keys(d.frags[n])) {
			fmt.Fprintf(&b, " %d=%x", i, d.frags[n][i])
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%d last, %d tokens", len(d.last), len(d.tokens))
	return b.String()
}

func fuzzAlerts(t *testing.T, s *server.Server, dev string) []store.Alert {
	as, err := s.Store().ListAlerts(context.Background(), store.Page{Dev: dev}, false)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// fuzzLPServer is a started server on an in-memory store with product "watermeter"
// (manifest 1) and a provisioned meter: its bundle and its row.
func fuzzLPServer(f testing.TB) (*server.Server, *wire.Bundle, *store.Device) {
	ctx := context.Background()
	vendor := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, 32))
	s, err := server.New(server.Config{DataDir: f.TempDir(), HTTPAddr: "off", MQTTAddr: "off", Store: memstore.New(),
		Logger: slog.New(slog.DiscardHandler), VendorKeys: []ed25519.PublicKey{vendor.Public().(ed25519.PublicKey)}})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Shutdown(context.Background()) })
	sum := sha256.Sum256([]byte("v1"))
	files := []wire.File{{Path: "app.mpy", Size: 2, SHA256: sum[:]}}
	m := &wire.Manifest{Product: "watermeter", Version: 1, Created: 1764000000, Files: files, Mutable: []string{}, Policy: wire.DefaultPolicy(),
		Root: wire.FilesRoot(files), Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	signed, err := wire.SignManifest(m, vendor)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.RegisterManifest(ctx, signed); err != nil {
		f.Fatal(err)
	}
	b, err := s.ProvisionDevice(ctx, "lp-fuzz", "watermeter")
	if err != nil {
		f.Fatal(err)
	}
	d, err := s.Store().GetDevice(ctx, "lp-fuzz")
	if err != nil {
		f.Fatal(err)
	}
	return s, b, d
}

// fuzzLPSeedRounds are real rounds of frames the agent's LPWAN meter sends with bundle b: its
// first (boot entry and status), a routine one with a reading, one after the cover opened
// (an entry of several fragments, an ack asked for). None is delivered here.
func fuzzLPSeedRounds(f *testing.F, s *server.Server, b *wire.Bundle) [][][]byte {
	man, err := s.Manifest(context.Background(), b.Product, b.ManifestVersion)
	if err != nil {
		f.Fatal(err)
	}
	now := uint64(1764000000)
	d, err := agent.New(agent.Config{Bundle: b, Manifest: wire.ManifestRef{Product: b.Product, Version: b.ManifestVersion, Root: man.Root},
		Chain: fschain.NewMemStorage(), Now: now})
	if err != nil {
		f.Fatal(err)
	}
	m := agent.NewLPMeter(d)
	var rounds [][][]byte
	round := func() {
		now += 900
		frames, err := m.Uplink(now)
		if err != nil {
			f.Fatal(err)
		}
		rounds = append(rounds, frames)
	}
	round()
	d.SetReading(1234, 0)
	round()
	if err := d.Cover(now+1, true, wire.CoverSourceIRQ); err != nil {
		f.Fatal(err)
	}
	round()
	return rounds
}

// A sender holding the device's keys cannot make the assembler hold more than its caps:
// fragments of a 65th pending entry are refused (oversize), an index beyond the largest
// entry is dropped, and what is pending is what was kept.
func TestPendingFragmentsStayWithinCaps(t *testing.T) {
	ctx := context.Background()
	s, _, dev := fuzzLPServer(t)
	l := New(s)
	send := func(n uint32, index uint8) (*Result, error) {
		fr, err := wire.SealLPEntry(&wire.LPEntryFrame{N: n, Index: index, Data: bytes.Repeat([]byte{byte(n)}, wire.LPEntryChunk)}, dev.UplinkKey, dev.ID, dev.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		return l.HandleFrame(ctx, dev.ID, fr)
	}
	for n := uint32(1000); n < 1000+lpMaxPendingEntries; n++ {
		if _, err := send(n, 0); err != nil {
			t.Fatalf("entry %d: %v", n, err)
		}
	}
	_, err := send(5000, 0)
	var re *server.RejectError
	if !errors.As(err, &re) || re.Reason != server.ReasonOversize {
		t.Fatalf("a 65th pending entry: %v, want oversize", err)
	}
	if _, err := send(1000, lpMaxFragments); err != nil {
		t.Fatalf("fragment %d: %v", lpMaxFragments, err)
	}
	if _, err := send(1000, 1); err != nil {
		t.Fatalf("a second fragment of a pending entry: %v", err)
	}
	l.checkCaps(t, dev.ID)
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.devs[dev.ID]; len(d.frags) != lpMaxPendingEntries || len(d.frags[1000]) != 2 || d.frags[5000] != nil {
		t.Fatalf("%d entries pending, entry 1000 in %d fragments", len(d.frags), len(d.frags[1000]))
	}
}
