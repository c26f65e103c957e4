//go:build linux

package agent_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

func (f *fleet) restart(b *wire.Bundle, app string) *agent.Runner {
	f.t.Helper()
	r, err := agent.NewRunner(context.Background(), agent.RunConfig{Bundle: b, Manifest: f.man, AppDir: app,
		DataDir: filepath.Join(filepath.Dir(app), "data"), Server: b.HTTP, Logf: f.t.Logf})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(r.Close)
	return r
}

func readFiles(t *testing.T, dir string, names ...string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		m[n] = b
	}
	return m
}

func writeFiles(t *testing.T, dir string, m map[string][]byte) {
	t.Helper()
	for n, b := range m {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// D22 on the Linux agent, the review's exact attack: after a clean report the renter copies
// the two state-slot files, edits the calibration offline (a check-fail is logged), puts the
// file back, copies the slot files back and restarts the agent. Recovery completes every
// record that verifies, logs rollback-detected, re-latches, and the server ends tampered
// with the check-fail in its evidence.
func TestThreatD22_AgentSlotRollbackKeepsEvidence(t *testing.T) {
	f := newFleet(t)
	r, b, app := f.runner("d22")
	f.cleanStart(r, "d22")
	slots := filepath.Join(filepath.Dir(app), "data", "log")
	saved := readFiles(t, slots, "slot-a", "slot-b")

	p := filepath.Join(app, "calibration.json")
	orig, _ := os.ReadFile(p)
	os.WriteFile(p, []byte("{\"k\": 0.4}\n"), 0o644)
	if bad, _ := r.Check(context.Background()); !hasFinding(bad, "calibration.json", wire.KindModified) {
		t.Fatalf("edit not found: %v", bad)
	}
	os.WriteFile(p, orig, 0o644)
	r.Close()
	f.restart(b, app).Close() // the renter reboots it offline once more: a boot entry
	writeFiles(t, slots, saved)

	r2 := f.restart(b, app)
	if st := r2.Device().Status(); st.Flags&wire.StateTamperLatched == 0 {
		t.Fatalf("after the slot rollback the device is not latched: %+v", st)
	}
	if sum := r2.Device().Summary(); sum == nil || sum.FirstType != wire.EntryCheckFail {
		t.Fatalf("tamper summary after the slot rollback: %+v", sum)
	}
	r2.Check(context.Background())
	if err := r2.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := f.waitState("d22", store.StateTampered, time.Second)
	// (The copied-back slot also vouches for older file stamps: a second rollback-detected.)
	if len(f.events("d22", wire.EntryCheckFail)) != 1 || len(f.events("d22", wire.EntryRollbackDetected)) == 0 {
		t.Fatalf("server events: %d check-fail, %d rollback-detected", len(f.events("d22", wire.EntryCheckFail)), len(f.events("d22", wire.EntryRollbackDetected)))
	}
	t.Logf("server: %s (%s)", d.State, d.StateReason)
}

// D26 on the Linux agent: the device state is not plain JSON any more. Editing it in the
// slot file (clearing the latched flags, CRCs fixed) is seen at the next start and reported
// as rollback-detected; a log whose committed entries are damaged is reported as
// log-corrupt instead of the agent refusing to start and looking merely silent.
func TestThreatD26_AgentStateEditAndCorruptLogReported(t *testing.T) {
	f := newFleet(t)
	t.Run("edited state", func(t *testing.T) {
		r, b, app := f.runner("d26a")
		f.cleanStart(r, "d26a")
		r.Close()
		slots := filepath.Join(filepath.Dir(app), "data", "log")
		for _, n := range []string{"slot-a", "slot-b"} {
			raw, _ := os.ReadFile(filepath.Join(slots, n))
			if i := strings.Index(string(raw), "fsx2"); i > 0 && raw[56] != 0 { // the active slot (its key is not zeroed)
				ext := raw[i:]
				l := int(binary.BigEndian.Uint32(ext[4:8]))
				ext[8+l-1] ^= 0x01 // one bit of the device state
				binary.BigEndian.PutUint32(ext[8+l+16:], crc32.ChecksumIEEE(ext[:8+l+16]))
				os.WriteFile(filepath.Join(slots, n), raw, 0o600)
			}
		}
		r2 := f.restart(b, app)
		if err := r2.Report(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.waitState("d26a", store.StateTampered, time.Second)
		if ev := f.events("d26a", wire.EntryRollbackDetected); len(ev) == 0 || !strings.Contains(ev[0].Decoded, "fails its tag") {
			t.Fatalf("rollback-detected events: %+v", ev)
		}
	})
	t.Run("corrupt log", func(t *testing.T) {
		r, b, app := f.runner("d26b")
		f.cleanStart(r, "d26b")
		r.Check(context.Background()) // not reported yet
		os.WriteFile(filepath.Join(app, "calibration.json"), []byte("{}"), 0o644)
		r.Check(context.Background())
		r.Close()
		logf := filepath.Join(filepath.Dir(app), "data", "log", "log")
		raw, _ := os.ReadFile(logf)
		raw[len(raw)/2] ^= 0xff
		os.WriteFile(logf, raw, 0o600)
		r2 := f.restart(b, app)
		es := r2.Device().Segment().Entries
		if len(es) == 0 || es[0].Type != wire.EntryLogCorrupt || r2.Device().Status().Flags&wire.StateTamperLatched == 0 {
			t.Fatalf("after a corrupt log the device holds %d entries, flags %#x", len(es), r2.Device().Status().Flags)
		}
		r2.Report(context.Background())
		// The server, whose anchor is below the entries given up, sees a gap: the device is
		// not trusted and not silent; the report carries the latched tamper flag.
		d := f.state("d26b")
		if d.State == store.StateTrusted || d.State == store.StateSilent || d.LastSeen.IsZero() {
			t.Fatalf("server after a corrupt-log report: %s (%s)", d.State, d.StateReason)
		}
		t.Logf("server: %s (%s)", d.State, d.StateReason)
		if m, _ := filepath.Glob(filepath.Join(filepath.Dir(app), "data", "log.corrupt-*")); len(m) != 1 {
			t.Fatalf("no forensic copy of the corrupt log: %v", m)
		}
	})
}
