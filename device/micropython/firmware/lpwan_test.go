package firmware_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
	"github.com/fieldseal/fieldseal/server/lpwan"
	"github.com/fieldseal/fieldseal/wire"
)

// lpMeasured is one LPWAN round of the guard's Meter (M, kept in the lab session) with the
// heap sampled as fullLogReported samples a report: in use before (after a collection),
// and the peak — after a collection at every log record the round reads, and with the
// round's frames built and held. The frames are printed one a line ("LPF <base64>").
const lpMeasured = "import gc\nfrom fieldseal import lpwan\ntry:\n    M\nexcept NameError:\n    M = lpwan.Meter(D)\n" +
	"c = D.chain\nstream = c.entries\npeak = [0]\n" +
	"def sampled():\n    g = stream()\n    try:\n        for e in g:\n            gc.collect()\n" +
	"            peak[0] = max(peak[0], gc.mem_alloc())\n            yield e\n    finally:\n        g.close()\n" +
	"c.entries = sampled\ngc.collect()\na0 = gc.mem_alloc()\nfs = M.uplink()\ndel c.entries\ngc.collect()\n" +
	"peak[0] = max(peak[0], gc.mem_alloc())\nprint('HEAP', a0, peak[0])\nfor f in fs:\n    print('LPF', ubinascii.b2a_base64(f).decode().strip())\n" +
	"del fs, sampled, stream, peak\n"

// lpFeedLab hands the frames in out to the server's LPWAN ingest and each downlink to the
// guard in vm; it returns the entry fragments the frames carried and how many frames.
func lpFeedLab(t *testing.T, vm *firmware.VM, lp *lpwan.Assembler, b wire.Bundle, out string) (frags [][2]uint32, frames int) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "LPF ") {
			continue
		}
		f, err := base64.StdEncoding.DecodeString(line[4:])
		if err != nil || len(f) > wire.LPMaxFrame {
			t.Fatalf("frame %q: %v", line, err)
		}
		frames++
		body, err := wire.LPOpen(f, b.UplinkKey, b.Device, b.Epoch)
		if err != nil {
			t.Fatalf("a frame of the guard does not open: %v", err)
		}
		if body[0] == wire.LPEntry {
			e, _ := wire.DecodeLPEntry(body)
			last := uint32(0)
			if e.Last {
				last = 1
			}
			frags = append(frags, [2]uint32{e.N, uint32(e.Index)<<1 | last})
		}
		res, err := lp.HandleFrame(context.Background(), b.Device, f)
		if err != nil {
			t.Fatalf("the server refuses the guard's frame: %v", err)
		}
		if res.Downlink != nil {
			got, err := vm.Exec("print('DL', M.downlink(ubinascii.a2b_base64('"+base64.StdEncoding.EncodeToString(res.Downlink)+"')))\n", 120*time.Second)
			if err != nil || !strings.Contains(got, "DL ok") {
				t.Fatalf("the guard does not take the server's downlink: %q %v\n%s", got, err, vm.Output())
			}
		}
	}
	return frags, frames
}

func heapLine(t *testing.T, out string) (before, peak int) {
	t.Helper()
	i := strings.Index(out, "HEAP ")
	if i < 0 {
		t.Fatalf("no HEAP line in %q", out)
	}
	if _, err := fmt.Sscan(out[i+5:], &before, &peak); err != nil {
		t.Fatalf("HEAP line in %q: %v", out, err)
	}
	return before, peak
}

// D24 over the LPWAN profile, on the Cortex-M3 build at a 32 KiB heap: a round carries at
// most lpwan.ROUND_FRAMES frames (8, the status included) whatever the log holds, and the
// heap it needs at its peak is that of a round with a short log — not the backlog's frames
// (a round without a budget, measured for comparison at 112 KiB, holds them all).
// A full 12 KiB log (entries of two fragments, so rounds end inside an entry) then leaves
// round by round through the real server's LPWAN ingest: each round a prefix the server
// verifies and acks flagged resend at the last entry it holds, the guard pruning to each
// anchor and going on where it stopped, until every entry has reached the server once, in
// order, and the guard's log is pruned to its head.
func TestThreatD24_LPWANRoundsBoundedOnCortexM3(t *testing.T) {
	const heap = 32 << 10
	ctx := context.Background()
	_, mainMpy := guardImage(t)
	s := fleet(t, mainMpy)
	b, err := s.ProvisionDevice(ctx, "wm-lp", "watermeter")
	if err != nil {
		t.Fatal(err)
	}
	dir := provisioned(t, mainMpy, false, *b)
	lp := lpwan.New(s)

	// A short log: the boot's entries, one round.
	vm := labSession(t, dir, heap)
	out, err := vm.Exec("print('N', D.chain.s['n'])\n"+lpMeasured, 300*time.Second)
	if err != nil {
		t.Fatalf("short-log round: %v\n%s", err, vm.Output())
	}
	var shortN uint64
	fmt.Sscan(out[strings.Index(out, "N ")+2:], &shortN)
	shortBefore, shortPeak := heapLine(t, out)
	frags, shortFrames := lpFeedLab(t, vm, lp, *b, out)
	vm.Kill()
	if d, _ := s.Store().GetDevice(ctx, b.Device); shortFrames > 8 || d.AnchorN != shortN || len(frags) == 0 {
		t.Fatalf("short log (%d entries): %d frames, server anchor %d", shortN, shortFrames, d.AnchorN)
	}

	// The log filled to its cap (at the largest heap: quicker), then rounds at 32 KiB.
	vm = labSession(t, dir, 112<<10)
	size, _, filled := fillLog(t, vm)
	// For comparison, a round without a budget (every unsent entry's frames at once, as the
	// profile's rounds once were), at the large heap; its frames are dropped as if lost.
	out, err = vm.Exec("from fieldseal import lpwan\nM = lpwan.Meter(D, 100000)\n"+lpMeasured+"del M\n", 300*time.Second)
	if err != nil {
		t.Fatalf("unbudgeted round: %v\n%s", err, vm.Output())
	}
	wholeBefore, wholePeak := heapLine(t, out)
	wholeFrames := strings.Count(out, "LPF ")
	vm.Kill()
	vm = labSession(t, dir, heap)
	out, err = vm.Exec("print('BASE', D.chain.s['bn'])\n"+lpMeasured, 300*time.Second)
	if err != nil {
		t.Fatalf("full-log round: %v\n%s", err, vm.Output())
	}
	fullBefore, fullPeak := heapLine(t, out)
	var all [][2]uint32
	most := 0
	rounds, verifiedAt, n := 0, 0, uint64(0)
	for {
		f, nf := lpFeedLab(t, vm, lp, *b, out)
		for _, x := range f {
			// entries 1..shortN went before the restart unacknowledged (a routine round asks
			// for no ack): a new session sends them again, and the server skips them
			if x[0] > uint32(shortN) {
				all = append(all, x)
			}
		}
		most, rounds = max(most, nf), rounds+1
		st, err := vm.Exec("print('AT', D.chain.s['bn'], D.chain.s['n'])\n", 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var bn, head uint64
		fmt.Sscan(st[strings.Index(st, "AT ")+3:], &bn, &head)
		d, _ := s.Store().GetDevice(ctx, b.Device)
		if d.AnchorN == head && verifiedAt == 0 {
			verifiedAt = rounds
		}
		if bn == head && d.AnchorN == head {
			n = head
			break
		}
		if rounds > 100 {
			t.Fatalf("backlog not drained after %d rounds: guard %d..%d, server anchor %d", rounds, bn, head, d.AnchorN)
		}
		if out, err = vm.Exec("for f in M.uplink():\n    print('LPF', ubinascii.b2a_base64(f).decode().strip())\n", 300*time.Second); err != nil {
			t.Fatalf("round %d: %v\n%s", rounds+1, err, vm.Output())
		}
	}
	vm.Kill()
	if most > 8 {
		t.Fatalf("a round of %d frames (budget 8)", most)
	}
	// every entry once, in order: fragments 0, 1, … of entry shortN+1, then of the next, …
	wantN, wantI := uint32(shortN+1), uint32(0)
	for _, f := range all {
		if f[0] != wantN || f[1]>>1 != wantI {
			t.Fatalf("fragment %d of entry %d sent where %d of %d was due (every entry once, in order)", f[1]>>1, f[0], wantI, wantN)
		}
		if wantI++; f[1]&1 == 1 {
			wantN, wantI = wantN+1, 0
		}
	}
	d, _ := s.Store().GetDevice(ctx, b.Device)
	if uint64(wantN) != n+1 || d.AnchorN != n || n < filled || d.State == "tampered" {
		t.Fatalf("server: %s, anchor %d; entries sent up to %d; guard's head %d", d.State, d.AnchorN, wantN-1, n)
	}
	// What one round can hold beyond a short-log round: its frames and one entry being split
	// (≤ 2 KiB). Holding every unsent entry's frames, as a round once did, is ~300 frames.
	shortGrowth, fullGrowth, wholeGrowth := shortPeak-shortBefore, fullPeak-fullBefore, wholePeak-wholeBefore
	if fullGrowth > shortGrowth+2048 || wholeGrowth < fullGrowth+8192 {
		t.Fatalf("heap a round needs at its peak: +%d bytes with a full log, +%d with %d entries, +%d without a budget",
			fullGrowth, shortGrowth, shortN, wholeGrowth)
	}
	t.Logf("%d KiB heap, budget 8 frames a round. Short log (%d entries): %d frames, heap %d in use, +%d at the round's peak; "+
		"full log (%d bytes, n=%d): heap %d in use, +%d at the first round's peak; drained in %d rounds of at most %d frames, "+
		"%d entry frames in all, the server at the guard's head after %d rounds (%s); without a budget the full log's round is %d frames, +%d bytes at its peak",
		heap>>10, shortN, shortFrames, shortBefore, shortGrowth, size, n, fullBefore, fullGrowth, rounds, most, len(all), verifiedAt, d.State,
		wholeFrames, wholeGrowth)
}
