package firmware_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/device/micropython/firmware"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store/storeurl"
	"github.com/fieldseal/fieldseal/wire"
)

// boardNow is the board's clock when its first report is due (hwImage's time, then
// bootRealToReport's setClock).
const boardNow = 1767225600 + 1000

// fleet is a real server (SQLite store, no listeners, its clock at the board's) that
// knows the sealed app's manifest, signed by a test vendor key.
func fleet(t *testing.T, mainMpy []byte) *server.Server {
	t.Helper()
	ctx := context.Background()
	vendor := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{23}, 32))
	dir := t.TempDir()
	st, err := storeurl.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := server.New(server.Config{DataDir: dir, Store: st, HTTPAddr: "off", MQTTAddr: "off",
		VendorKeys: []ed25519.PublicKey{vendor.Public().(ed25519.PublicKey)},
		Now:        func() time.Time { return time.Unix(boardNow, 0) },
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	signed, err := wire.SignManifest(sealedManifest(mainMpy), vendor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterManifest(ctx, signed); err != nil {
		t.Fatal(err)
	}
	return s
}

// fillLog fills the log of a lab session's guard to its cap with routine entries, through
// the guard's own log API, until it starts dropping them; returns the log's size, its cap
// and the last entry's n.
func fillLog(t *testing.T, vm *firmware.VM) (size, capacity int, n uint64) {
	t.Helper()
	out, err := vm.Exec("while D.chain.s['dr'] == 0:\n    D.log(device.CHECK_OK, {1: 1, 2: b'r' * 32, 3: 5})\n"+
		"print(D.chain.log_size, D.chain.cap, D.chain.s['n'])\n", 600*time.Second)
	if err != nil {
		t.Fatalf("filling the log: %v\n%s", err, vm.Output())
	}
	if _, err := fmt.Sscan(out, &size, &capacity, &n); err != nil || capacity != 12288 || size < capacity-200 {
		t.Fatalf("log %q: not full (%v)", out, err)
	}
	return size, capacity, n
}

var (
	costLine = regexp.MustCompile(`COST (\d+) (\d+) (\d+) (\d+) (\d+) (True|False)`)
	ackOK    = regexp.MustCompile(`ACK ok\s`)
)

// D24 (a), on the Cortex-M3 build: the log filled to its cap (routine entries through the
// guard's own log API until the guard drops them), then the board's real boot — the
// frozen boot file, no harness help — at a 32 KiB heap boots, checks, runs the app and
// reports. The report leaves, opens under the device's key, verifies as the server
// verifies a fresh device's log (fschain.Verify, or VerifyPrefix when the heap cut it
// short), and the real server takes it and acks. A report cut short is followed by the
// next part as each ack arrives, at the same heap, until the server holds every entry.
func TestThreatD24_FullLogReportedAt32KiBOnCortexM3(t *testing.T) { fullLogReported(t, 32<<10) }

// The same at 64 KiB.
func TestThreatD24_FullLogReportedAt64KiBOnCortexM3(t *testing.T) { fullLogReported(t, 64<<10) }

func fullLogReported(t *testing.T, heap int) {
	ctx := context.Background()
	_, mainMpy := guardImage(t)
	s := fleet(t, mainMpy)
	b, err := s.ProvisionDevice(ctx, "wm-full", "watermeter")
	if err != nil {
		t.Fatal(err)
	}
	dir := provisioned(t, mainMpy, false, *b)

	// Fill the log (at the largest heap: fewer collections, quicker). Then the heap a full
	// log's report keeps live: before, at its peak (sampled at every log record the report
	// reads, after a collection: the buffer, the record, the generators) and with the report
	// built and held. That report is built and not sent (as if lost on the way): the next
	// one carries the same entries.
	vm := labSession(t, dir, 112<<10)
	size, capacity, n := fillLog(t, vm)
	out, err := vm.Exec("import gc\nc = D.chain\nstream = c.entries\npeak = [0]\n"+
		"def sampled():\n    for e in stream():\n        gc.collect()\n        peak[0] = max(peak[0], gc.mem_alloc())\n        yield e\n"+
		"c.entries = sampled\ngc.collect()\na0 = gc.mem_alloc()\nr = D.report()\ndel c.entries\ngc.collect()\n"+
		"print(a0, peak[0], gc.mem_alloc(), len(r), D.partial)\n", 300*time.Second)
	if err != nil {
		t.Fatalf("report at 112 KiB: %v\n%s", err, vm.Output())
	}
	vm.Kill()
	var before, peak, held, whole int
	var partial string
	if _, err := fmt.Sscan(out, &before, &peak, &held, &whole, &partial); err != nil {
		t.Fatalf("lab output %q: %v", out, err)
	}
	if partial != "False" {
		t.Fatalf("at 112 KiB a full log's report (%d bytes) was cut: %q", whole, out)
	}
	if peak < before+whole {
		t.Fatalf("peak %d below %d in use before plus the %d-byte report: the sampling missed the writing", peak, before, whole)
	}

	// What a check and a report cost at this heap with the log full: instructions (qemu
	// -icount), the heap in use before, the report's size (not sent either).
	vm = labSession(t, dir, heap)
	out, err = vm.Exec("import gc\ngc.collect()\na0 = gc.mem_alloc()\nt0 = time.ticks_us()\nD.check()\nt1 = time.ticks_us()\n"+
		"r = D.report()\nt2 = time.ticks_us()\nprint('COST', a0, gc.mem_free() + gc.mem_alloc(), t1 - t0, t2 - t1, len(r), D.partial)\n", 300*time.Second)
	if err != nil {
		t.Fatalf("check and report at %d KiB: %v\n%s", heap>>10, err, vm.Output())
	}
	vm.Kill()
	cost := costLine.FindStringSubmatch(out)
	if cost == nil {
		t.Fatalf("lab output %q", out)
	}
	if total, _ := strconv.Atoi(cost[2]); total > heap {
		t.Fatalf("the lab session has a %d-byte heap, not %d", total, heap)
	}

	// The board's own boot with the full log: boot, check, app, report.
	rep, raw, kinstr, alloc := bootRealToReport(t, dir, heap, *b)
	fresh := serverVerify(t, *b, rep)
	if len(fresh) == 0 || fresh[0].N != 1 || rep.Log.N < n {
		t.Fatalf("report claims n=%d (the log had %d), carries %d entries from the first", rep.Log.N, n, len(fresh))
	}
	if rep.Meas.Status != wire.MeasOK || rep.State&wire.StateLogOverflow == 0 {
		t.Fatalf("measurement %+v, state %#x: want ok and the overflow flag", rep.Meas, rep.State)
	}
	first, firstN := len(raw), fresh[len(fresh)-1].N
	carried := []uint64{}
	for _, e := range rep.Log.Entries {
		carried = append(carried, e.N)
	}
	ack, err := s.HandleReport(ctx, raw)
	if err != nil {
		t.Fatalf("the server refuses the report: %v", err)
	}

	// The rest of the backlog, part by part, each answered by the server's ack.
	parts := 1
	if last := rep.Log.Entries[len(rep.Log.Entries)-1].N; last < rep.Log.N {
		vm = labSession(t, dir, heap)
		for ; last < rep.Log.N; last = rep.Log.Entries[len(rep.Log.Entries)-1].N {
			if parts++; parts > 30 {
				t.Fatalf("backlog not drained after %d reports", parts)
			}
			out, err := vm.Exec("print('ACK', D.ack(ubinascii.a2b_base64('"+base64.StdEncoding.EncodeToString(ack)+"')))\nP.send(D.report())\n", 300*time.Second)
			if err != nil {
				t.Fatalf("report %d: %v\n%s", parts, err, vm.Output())
			}
			if !ackOK.MatchString(out) {
				t.Fatalf("the device does not take the server's ack: %q", out)
			}
			rep, raw = reportFromOutput(t, out, b.UplinkKey)
			if ack, err = s.HandleReport(ctx, raw); err != nil {
				t.Fatalf("the server refuses report %d: %v", parts, err)
			}
			for _, e := range rep.Log.Entries {
				carried = append(carried, e.N)
				if e.N > n {
					t.Logf("entry %d after the fill: %s", e.N, wire.EntryName(e.Type))
				}
			}
		}
		vm.Kill()
	}
	// every entry reached the server, once and in order (a resent part would repeat some)
	for i, got := range carried {
		if got != uint64(i+1) {
			t.Fatalf("entries carried: %v, want 1..%d each once", carried, rep.Log.N)
		}
	}
	t.Logf("%d KiB heap, log %d/%d bytes (%d entries): board boot to the app %d k-instructions, %d bytes in use; "+
		"first report %d bytes with entries 1..%d; the whole log (and what the boots and acks added, up to n=%d) in %d report(s). "+
		"Lab at the same heap: %s bytes in use, check %s k-instructions, report %s k-instructions (%s bytes, partial %s); "+
		"at 112 KiB: %d bytes in use before the whole report, %d at its peak, %d with it built and held (%d bytes)",
		heap>>10, size, capacity, n, kinstr, alloc, first, firstN, rep.Log.N, parts,
		cost[1], cost[3], cost[4], cost[5], cost[6], before, peak, held, whole)
}
