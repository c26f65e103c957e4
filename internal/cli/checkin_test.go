package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// D2, the seed's exact scenario at check-in: a renter edits the code, it runs and is
// reported, he restores the original, the device reports again and the server acknowledges
// (the check-fail is pruned from the device). At the counter `log export` + `log verify`
// must still say TAMPER, name the first tamper entry and that the server acknowledged it,
// and say what an export can and cannot prove.
func TestThreatD2_CheckInAfterAcknowledgementStillTamper(t *testing.T) {
	r := newAgentRig(t)
	main := filepath.Join(r.app, "main.py")
	orig, _ := os.ReadFile(main)
	if r.run() != ExitOK {
		t.Fatal("clean run")
	}
	os.WriteFile(main, []byte("print('free water')\n"), 0o644)
	if r.run() != ExitOK {
		t.Fatal("run with the edit")
	}
	os.WriteFile(main, orig, 0o644)
	if r.run() != ExitOK {
		t.Fatal("run after the restore")
	}
	if d, _ := r.srv.Store().GetDevice(r.ctx, r.b.Device); d.State != store.StateTampered {
		t.Fatalf("server: %s", d.State)
	}
	export := filepath.Join(r.dir, "checkin.cbor")
	if code, out, errs := runCLI("log", "export", "--storage", filepath.Join(r.dir, "data", "log"), "--out", export); code != ExitOK {
		t.Fatalf("export: %d %s %s", code, out, errs)
	}
	pem, _ := keys.MarshalPublic(ed25519.PublicKey(r.b.ServerPub))
	pub := filepath.Join(r.dir, "server.pub")
	os.WriteFile(pub, pem, 0o644)
	code, out, errs := runCLI("log", "verify", "--log", export, "--server-pub", pub, "--chain-key", filepath.Join(r.dir, "bundle.json"))
	t.Logf("verify: exit %d\n%s%s", code, out, errs)
	first := strings.SplitN(out, "\n", 2)[0]
	if code != ExitFound || !strings.HasPrefix(first, "TAMPER latched since entry ") || !strings.Contains(first, "check-fail main.py modified") ||
		!strings.Contains(first, "acknowledged by the server (receipt of ") {
		t.Fatalf("check-in verdict: exit %d, first line %q", code, first)
	}
	if !strings.Contains(out, "it cannot prove:") || !strings.Contains(out, "an export proves:") {
		t.Fatal("the verdict does not say what an export can and cannot prove")
	}
	// JSON for machines says the same.
	_, js, _ := runCLI("log", "verify", "--log", export, "--server-pub", pub, "--json")
	var v struct {
		Verdict string
		Latched *struct {
			FirstType string `json:"first_type"`
		}
	}
	if err := json.Unmarshal([]byte(js), &v); err != nil || v.Verdict != "tamper" || v.Latched == nil || v.Latched.FirstType != "check-fail" {
		t.Fatalf("json verdict %s (%v)", js, err)
	}
}

// D26: checking a log with another device's bundle, or a K_1 that is not this log's, is the
// operator's mistake: "this key does not belong to this log", exit 2, never a tamper verdict.
func TestThreatD26_WrongKeyIsNotTamper(t *testing.T) {
	f := newLogFixture(t)
	f.routine(t, 5)
	p := f.write(t, f.w.Export(), false)
	other := make([]byte, 32)
	rand.Read(other)
	otherHex := filepath.Join(f.dir, "other.hex")
	os.WriteFile(otherHex, []byte(strings.Repeat("ab", 32)), 0o600)
	b := wire.Bundle{Device: "meter-0099", Epoch: 2, ChainKey: other, UplinkKey: other, DownlinkKey: other, ServerPub: other, Product: "watermeter"}
	raw, _ := json.Marshal(&b)
	otherBundle := filepath.Join(f.dir, "other-bundle.json")
	os.WriteFile(otherBundle, raw, 0o600)
	for _, key := range []string{otherHex, otherBundle} {
		code, out, errs := runCLI("log", "verify", "--log", p, "--chain-key", key)
		if code != ExitError || !strings.Contains(errs, "this key does not belong to this log") || strings.Contains(out+errs, "TAMPER") {
			t.Fatalf("--chain-key %s: exit %d\n%s%s", filepath.Base(key), code, out, errs)
		}
	}
	// The right key still verifies, and a real forgery is still tamper.
	if code, out, _ := runCLI("log", "verify", "--log", p, "--chain-key", f.keyPath); code != ExitOK {
		t.Fatalf("right key: exit %d %s", code, out)
	}
	x := f.w.Export()
	x.Entries[2].Payload = bytes.Repeat([]byte{0xa0}, 1)
	code, out, _ := runCLI("log", "verify", "--log", f.write(t, x, false), "--chain-key", f.keyPath)
	if code != ExitFound || !strings.Contains(out, "TAMPER") {
		t.Fatalf("forged entry with the right key: exit %d %s", code, out)
	}
}

// D2 with the agent run from cron (--once): the renter edits the sealed file between two
// runs and puts the original bytes back before the next one. The content hashes right
// again, but the file's stamps (kept between runs, vouched for by the slot state) changed:
// the next run records the rewrite and the server ends tampered.
func TestThreatD2_CronEditAndRestoreBetweenRunsRecorded(t *testing.T) {
	r := newAgentRig(t)
	main := filepath.Join(r.app, "main.py")
	orig, _ := os.ReadFile(main)
	if r.run() != ExitOK {
		t.Fatal("first run")
	}
	os.WriteFile(main, []byte("print('free water')\n"), 0o644)
	os.WriteFile(main, orig, 0o644) // restored before the next run
	if r.run() != ExitOK {
		t.Fatal("second run")
	}
	d, _ := r.srv.Store().GetDevice(r.ctx, r.b.Device)
	if d.State != store.StateTampered {
		t.Fatalf("after an edit and restore between cron runs the device is %s (%s)", d.State, d.StateReason)
	}
	// A third run with nothing touched adds nothing new.
	if r.run() != ExitOK {
		t.Fatal("third run")
	}
}

// D26: a mistyped --dir is the operator's mistake: exit 2 with a message naming the flag,
// before anything is logged or reported (no data folder is created, the server has heard
// nothing), never a tamper alarm.
func TestThreatD26_MistypedDirIsUsageError(t *testing.T) {
	r := newAgentRig(t)
	var out, errb bytes.Buffer
	code := Run(r.ctx, &Env{Stdout: &out, Stderr: &errb}, []string{"agent", "--once", "--bundle", filepath.Join(r.dir, "bundle.json"),
		"--dir", r.app + "-typo", "--manifest", filepath.Join(r.dir, "manifest.cose"), "--data", filepath.Join(r.dir, "data")})
	if code != ExitError || !strings.Contains(errb.String(), "--dir") || !strings.Contains(errb.String(), "no such folder") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(r.dir, "data")); !os.IsNotExist(err) {
		t.Fatalf("the data folder was created (%v): something was logged", err)
	}
	if d, _ := r.srv.Store().GetDevice(r.ctx, r.b.Device); d.State != store.StateProvisioned || d.LastRSeq != 0 {
		t.Fatalf("server: %s, rseq %d", d.State, d.LastRSeq)
	}
	// An unreadable folder (not listable) says so too.
	if os.Getuid() != 0 {
		locked := filepath.Join(r.dir, "locked")
		os.MkdirAll(locked, 0o000)
		code = Run(r.ctx, &Env{Stdout: &out, Stderr: &errb}, []string{"agent", "--once", "--bundle", filepath.Join(r.dir, "bundle.json"),
			"--dir", locked, "--manifest", filepath.Join(r.dir, "manifest.cose"), "--data", filepath.Join(r.dir, "data")})
		if code != ExitError || !strings.Contains(errb.String(), "cannot list it") {
			t.Fatalf("unreadable --dir: exit %d: %s", code, errb.String())
		}
	}
}
