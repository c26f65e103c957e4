//go:build linux

package agent_test

// Threat rows of docs/THREAT_MODEL.md answered by the Go agent on a Linux device, each
// against a real fleet server in-process on loopback.

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func hasFinding(bad []wire.Finding, path, kind string) bool {
	for _, f := range bad {
		if f.Path == path && f.Kind == kind {
			return true
		}
	}
	return false
}

// D1: one flipped byte in a sealed file is found by the check, logged as check-fail and
// reported; the server moves the device to tampered.
func TestThreatD1_EditedFileDetectedAndReported(t *testing.T) {
	f := newFleet(t)
	r, _, app := f.runner("d1")
	f.cleanStart(r, "d1")
	flipByte(t, filepath.Join(app, "lib", "metrology.py"))
	bad, err := r.Check(context.Background())
	if err != nil || !hasFinding(bad, "lib/metrology.py", wire.KindModified) {
		t.Fatalf("check: %v %v", bad, err)
	}
	if err := r.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := f.waitState("d1", store.StateTampered, time.Second)
	if fails := f.events("d1", wire.EntryCheckFail); len(fails) != 1 || !strings.Contains(fails[0].Decoded, "lib/metrology.py") {
		t.Fatalf("server has check-fail entries %+v", fails)
	}
	t.Logf("server: %s (%s)", d.State, d.StateReason)
}

// D2: the renter restores the original file before the next report. The measurement is
// clean again, but the check-fail entry is in the log and the server still sees it.
func TestThreatD2_RestoredFileStillInEvidence(t *testing.T) {
	f := newFleet(t)
	r, _, app := f.runner("d2")
	f.cleanStart(r, "d2")
	p := filepath.Join(app, "calibration.json")
	orig, _ := os.ReadFile(p)
	os.WriteFile(p, []byte("{\"k\": 0.4}\n"), 0o644)
	if bad, _ := r.Check(context.Background()); !hasFinding(bad, "calibration.json", wire.KindModified) {
		t.Fatalf("edited calibration not found: %v", bad)
	}
	os.WriteFile(p, orig, 0o644)
	r.Check(context.Background())
	if st := r.Device().Status(); st.Meas.Status != wire.MeasMismatch && st.Flags&wire.StateTamperLatched == 0 {
		t.Fatalf("latched flag lost after restore: %+v", st)
	}
	if err := r.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.waitState("d2", store.StateTampered, time.Second)
	if len(f.events("d2", wire.EntryCheckFail)) == 0 {
		t.Fatal("the check-fail entry did not reach the server")
	}
}

// D3: a file swapped and put back between two scheduled checks. The Linux agent cannot
// make the application import exactly the bytes it hashed (the MicroPython guard does,
// through its verifying VFS), so it narrows the window instead: the change notification
// triggers a check at once, and a file written and restored leaves a new change time that
// the check records as a modification even though the content hashes right again.
func TestThreatD3_SwapAndRestoreCaughtByChangeNotification(t *testing.T) {
	f := newFleet(t)
	b, app, data := f.device("d3")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.RunConfig{Bundle: b, Manifest: f.man, AppDir: app, DataDir: data, Server: b.HTTP, Logf: t.Logf})
	}()
	f.waitState("d3", store.StateTrusted, 5*time.Second)
	p := filepath.Join(app, "app.mpy")
	orig, _ := os.ReadFile(p)
	evil := filepath.Join(app, ".swap")
	os.WriteFile(evil, []byte("M\x06\x00\x1fevil code"), 0o644)
	os.Rename(evil, p)           // swapped in
	os.WriteFile(p, orig, 0o644) // and the original bytes put back, microseconds later
	d := f.waitState("d3", store.StateTampered, 5*time.Second)
	t.Logf("server: %s (%s) — the scheduled check would have come in %d s", d.State, d.StateReason, f.man.Policy.CheckInterval)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// D4: app.py dropped beside app.mpy (it would win the import on a naive system): extra.
func TestThreatD4_ExtraFileBesideSealedCode(t *testing.T) {
	f := newFleet(t)
	r, _, app := f.runner("d4")
	f.cleanStart(r, "d4")
	os.WriteFile(filepath.Join(app, "app.py"), []byte("import os\nos.system('evil')\n"), 0o644)
	os.MkdirAll(filepath.Join(app, "lib", "hashlib"), 0o755)
	os.WriteFile(filepath.Join(app, "lib", "hashlib", "__init__.py"), []byte("# shadow\n"), 0o644)
	bad, _ := r.Check(context.Background())
	if !hasFinding(bad, "app.py", wire.KindExtra) || !hasFinding(bad, "lib/hashlib/__init__.py", wire.KindExtra) {
		t.Fatalf("extra files not flagged: %v", bad)
	}
	r.Report(context.Background())
	f.waitState("d4", store.StateTampered, time.Second)
}

// D8: the cover opened while the agent runs (here over MQTT, with the switch as a file):
// logged at once and reported without waiting for the schedule.
func TestThreatD8_CoverOpenedWhileRunning(t *testing.T) {
	f := newFleet(t)
	b, app, data := f.device("d8")
	sw := filepath.Join(t.TempDir(), "cover")
	os.WriteFile(sw, []byte("0"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.RunConfig{Bundle: b, Manifest: f.man, AppDir: app, DataDir: data, Server: b.MQTT,
			Cover: &agent.FileCover{Path: sw, Poll: 20 * time.Millisecond}, Logf: t.Logf})
	}()
	f.waitState("d8", store.StateTrusted, 5*time.Second)
	os.WriteFile(sw, []byte("open"), 0o644)
	d := f.waitState("d8", store.StateTampered, 5*time.Second)
	if d.StateReason != "cover-open" {
		t.Errorf("reason %q, want cover-open", d.StateReason)
	}
	if ev := f.events("d8", wire.EntryCoverOpen); len(ev) != 1 {
		t.Errorf("%d cover-open entries on the server", len(ev))
	}
	cancel()
	<-done
}

// forge builds the device's next report and lets the attacker, who holds R (read from
// the device), rewrite it before it is MAC'd.
func forge(t *testing.T, d *agent.Device, b *wire.Bundle, now uint64, mutate func(r *wire.Report)) []byte {
	t.Helper()
	honest, err := d.Report(now)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := wire.ParseReport(honest)
	r, err := wire.OpenReport(m, b.UplinkKey)
	if err != nil {
		t.Fatal(err)
	}
	mutate(r)
	out, err := wire.SealReport(r, b.UplinkKey)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func headOf(b *wire.Bundle, prev fschain.Hash, e *wire.Entry) fschain.Hash {
	h := sha256.New()
	h.Write([]byte("fs1/head"))
	h.Write(fschain.Msg(b.Device, b.Epoch, e.N, e.T, e.Type, prev, e.Payload))
	h.Write(e.Tag)
	var out fschain.Hash
	h.Sum(out[:0])
	return out
}

// D11: the attacker reads the device's current keys and rewrites an older, unsent entry
// (the cover-open becomes a cover-close), recomputing every head and the seal with the key
// they hold. The entry's tag needed a key erased when it was written: forged-entry.
func TestThreatD11_RewrittenEntryIsForged(t *testing.T) {
	f := newFleet(t)
	r, b, _ := f.runner("d11")
	f.cleanStart(r, "d11")
	d := r.Device()
	now := uint64(time.Now().Unix())
	d.Cover(now, true, wire.CoverSourceIRQ)
	d.Cover(now+1, false, wire.CoverSourceIRQ)
	rep := forge(t, d, b, now+2, func(rp *wire.Report) {
		seg := &rp.Log
		prev := fschain.GenesisHead(b.Device, b.Epoch)
		if seg.First > 1 {
			base := f.state("d11")
			copy(prev[:], base.AnchorHead)
		}
		for i := range seg.Entries {
			e := &seg.Entries[i]
			if e.Type == wire.EntryCoverOpen {
				e.Type = wire.EntryCoverClose
				e.Payload = wire.MustMarshal(&wire.EmptyPayload{})
			}
			prev = headOf(b, prev, e)
		}
		var k1 fschain.Key
		copy(k1[:], b.ChainKey)
		current := fschain.KeyAt(k1, seg.N+1) // what a flash dump yields today
		seg.Head = append([]byte(nil), prev[:]...)
		s := fschain.Seal(b.Device, b.Epoch, current, seg.N, prev)
		seg.Seal = s[:]
		rp.State = 0
	})
	a, err := f.post(b, rep)
	if err != nil || a.Reject != fschain.NameForgedEntry {
		t.Fatalf("server answered %+v, %v; want reject %s", a, err, fschain.NameForgedEntry)
	}
	if st := f.state("d11"); st.State != store.StateTampered || st.StateReason != fschain.NameForgedEntry {
		t.Fatalf("device %s (%s)", st.State, st.StateReason)
	}
}

// D12: the attacker cuts the newest entries (the cover-open) off the end and claims the
// shorter log. They cannot seal it: its key was erased when the entry was written.
func TestThreatD12_TailTruncationBadSeal(t *testing.T) {
	f := newFleet(t)
	r, b, _ := f.runner("d12")
	f.cleanStart(r, "d12")
	d := r.Device()
	before := d.Segment()
	d.Cover(uint64(time.Now().Unix()), true, wire.CoverSourceIRQ)
	rep := forge(t, d, b, uint64(time.Now().Unix()), func(rp *wire.Report) {
		var keep []wire.Entry
		for _, e := range rp.Log.Entries {
			if e.N <= before.N {
				keep = append(keep, e)
			}
		}
		rp.Log.Entries, rp.Log.N, rp.Log.Head = append([]wire.Entry{}, keep...), before.N, before.Head
		rp.Log.First = before.N + 1 - uint64(len(keep))
		rp.State = 0
	})
	a, err := f.post(b, rep)
	if err != nil || a.Reject != fschain.NameBadSeal {
		t.Fatalf("server answered %+v, %v; want reject %s", a, err, fschain.NameBadSeal)
	}
	f.waitState("d12", store.StateTampered, time.Second)
}

// D13: a full copy of the device's storage, taken earlier, is written back. Its counters
// and log are behind the server's: the report is refused and alarmed, the anchor stays.
func TestThreatD13_FlashSnapshotRestoreRefused(t *testing.T) {
	f := newFleet(t)
	b, app, data := f.device("d13")
	open := func() *agent.Runner {
		r, err := agent.NewRunner(context.Background(), agent.RunConfig{Bundle: b, Manifest: f.man, AppDir: app, DataDir: data, Server: b.HTTP})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	f.cleanStart(r, "d13")
	r.Close()
	snap := filepath.Join(t.TempDir(), "snap")
	if out, err := exec.Command("cp", "-a", data, snap).CombinedOutput(); err != nil {
		t.Fatalf("snapshot: %v %s", err, out)
	}
	r = open()
	for i := 0; i < 3; i++ {
		r.Device().Cover(uint64(time.Now().Unix()), false, wire.CoverSourceIRQ)
		r.Device().Register(uint64(time.Now().Unix()))
		if err := r.Report(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	anchor := f.state("d13").AnchorN
	os.RemoveAll(data)
	if out, err := exec.Command("cp", "-a", snap, data).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v %s", err, out)
	}
	r = open()
	defer r.Close()
	err := r.Report(context.Background())
	if !errors.Is(err, agent.ErrRejected) {
		t.Fatalf("restored device's report: %v, want rejected", err)
	}
	if st := f.state("d13"); st.AnchorN != anchor {
		t.Fatalf("anchor moved from %d to %d", anchor, st.AnchorN)
	}
	if len(f.alerts("d13")) == 0 {
		t.Fatal("no alert for the restored device")
	}
	t.Logf("restored device: %v", err)
}

// D14: power cut at every write of a cover-open append (and at three byte positions in
// each): after power returns the agent recovers, and its next report verifies — nothing
// the server acknowledged is lost and the log has no gap or fork.
func TestThreatD14_PowerCutDuringWriteRecovers(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	for cut := 0; cut < 3; cut++ {
		for _, pos := range []int{0, 1, -1} {
			dev := "d14-" + string(rune('a'+cut)) + string(rune('a'+pos+1))
			b, err := f.srv.ProvisionDevice(ctx, dev, "watermeter")
			if err != nil {
				t.Fatal(err)
			}
			st := fschain.NewMemStorage()
			mref := wire.ManifestRef{Product: f.man.Product, Version: f.man.Version, Root: f.man.Root}
			d, err := agent.New(agent.Config{Bundle: b, Manifest: mref, Chain: st, Now: 100})
			if err != nil {
				t.Fatal(err)
			}
			tr, err := agent.Dial(ctx, b.HTTP, b, agent.DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			send := func(d *agent.Device, now uint64) error {
				rep, err := d.Report(now)
				if err != nil {
					return err
				}
				ack, err := tr.Send(ctx, rep)
				if err != nil {
					return err
				}
				return d.HandleAck(ack, now)
			}
			d.Check(101, uint32(len(f.man.Files)), nil, nil, nil)
			if err := send(d, 102); err != nil {
				t.Fatal(err)
			}
			writes := st.Writes()
			st.BeforeWrite = func(op fschain.WriteOp) int {
				if op.Seq != writes+cut {
					return -1
				}
				switch pos {
				case 0:
					return 0
				case 1:
					return len(op.Data) / 2
				}
				return max(len(op.Data)-1, 0)
			}
			d.Cover(103, true, wire.CoverSourceIRQ) // the power goes during this
			st.Revive()
			d2, err := agent.New(agent.Config{Bundle: b, Manifest: mref, Chain: st, Now: 104, ResetCause: "power-on"})
			if err != nil {
				t.Fatalf("%s: reboot after cut at write %d: %v", dev, cut, err)
			}
			if err := send(d2, 105); err != nil {
				t.Fatalf("%s: report after recovery: %v", dev, err)
			}
			s := f.state(dev)
			if s.State == store.StateSuspect {
				t.Fatalf("%s: server finds the recovered log suspect: %s", dev, s.StateReason)
			}
			n := len(f.events(dev, wire.EntryCoverOpen))
			// Write 0 is the record itself: cut there, the entry was never committed. From
			// write 1 on (state slots) the record was durable: it must survive.
			if cut >= 1 && n != 1 {
				t.Fatalf("%s: committed cover-open entry lost (cut at write %d)", dev, cut)
			}
			t.Logf("cut at write %d byte pos %d: server %s (%s), %d cover-open entries", cut, pos, s.State, s.StateReason, n)
			tr.Close()
		}
	}
}

// S5: an ack forged on the way (here: one bit flipped by a proxy) would make the device
// prune entries the server never verified. The device checks the MAC first, prunes
// nothing and logs bad-downlink, which the server sees with the next honest exchange.
func TestThreatS5_ForgedAckPrunesNothing(t *testing.T) {
	f := newFleet(t)
	b, app, data := f.device("s5")
	target, _ := url.Parse(b.HTTP)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		body := make([]byte, 0, 512)
		buf := make([]byte, 512)
		for {
			n, err := resp.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if len(body) > 0 {
			body[len(body)-1] ^= 1
		}
		resp.Body = readCloser{strings.NewReader(string(body))}
		resp.ContentLength = int64(len(body))
		resp.Header.Del("Content-Length")
		return nil
	}
	mitm := httptest.NewServer(proxy)
	defer mitm.Close()
	r, err := agent.NewRunner(context.Background(), agent.RunConfig{Bundle: b, Manifest: f.man, AppDir: app, DataDir: data, Server: mitm.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Check(context.Background())
	pending := r.Device().Status().Pending
	err = r.Report(context.Background())
	if !errors.Is(err, agent.ErrBadDownlink) {
		t.Fatalf("forged ack: %v, want bad-downlink", err)
	}
	st := r.Device().Status()
	if st.Pending != pending+1 {
		t.Fatalf("pending entries %d → %d: something was pruned", pending, st.Pending)
	}
	seg := r.Device().Segment()
	if seg.Entries[len(seg.Entries)-1].Type != wire.EntryBadDownlink {
		t.Fatal("no bad-downlink entry")
	}
	// The honest path again: the server sees the whole log, bad-downlink included.
	direct, err := agent.NewRunner(context.Background(), agent.RunConfig{Bundle: b, Manifest: f.man, AppDir: app, DataDir: t.TempDir(), Server: b.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	direct.Close()
	tr, _ := agent.Dial(context.Background(), b.HTTP, b, agent.DialOptions{})
	defer tr.Close()
	rep, _ := r.Device().Report(uint64(time.Now().Unix()))
	ack, err := tr.Send(context.Background(), rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Device().HandleAck(ack, uint64(time.Now().Unix())); err != nil {
		t.Fatal(err)
	}
	if n := len(f.events("s5", wire.EntryBadDownlink)); n != 1 {
		t.Fatalf("server has %d bad-downlink entries", n)
	}
	if s := f.state("s5"); s.State != store.StateSuspect {
		t.Errorf("server state %s (%s), want suspect", s.State, s.StateReason)
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// S6: a service token captured from an ack and presented again is refused: token ids are
// single-use on the device; the refusal is logged (bad-downlink) and reaches the server.
func TestThreatS6_ReplayedServiceTokenRefused(t *testing.T) {
	f := newFleet(t)
	r, b, _ := f.runner("s6")
	f.cleanStart(r, "s6")
	ctx := context.Background()
	if err := f.srv.IssueServiceToken(ctx, "s6", "WO-1", "tech", time.Hour); err != nil {
		t.Fatal(err)
	}
	// Capture the ack carrying the token, as an eavesdropper would.
	tr, _ := agent.Dial(ctx, b.HTTP, b, agent.DialOptions{})
	defer tr.Close()
	d := r.Device()
	now := uint64(time.Now().Unix())
	rep, _ := d.Report(now)
	raw, err := tr.Send(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	a, err := wire.OpenAck(raw, b.Device, b.DownlinkKey)
	if err != nil || len(a.Commands) != 1 {
		t.Fatalf("ack: %v, %d commands", err, len(a.Commands))
	}
	if err := d.HandleAck(raw, now); err != nil {
		t.Fatal(err)
	}
	if !d.Status().InService {
		t.Fatal("service token not applied")
	}
	d.Tick(now + 7200) // the window closes
	if err := d.ApplyToken(a.Commands[0], now+7201); !errors.Is(err, agent.ErrBadDownlink) {
		t.Fatalf("replayed token: %v, want bad-downlink", err)
	}
	if d.Status().InService {
		t.Fatal("replayed token reopened the service window")
	}
	if err := r.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(f.events("s6", wire.EntryBadDownlink)); n != 1 {
		t.Fatalf("server has %d bad-downlink entries", n)
	}
	t.Logf("server: %s (%s)", f.state("s6").State, f.state("s6").StateReason)
}
