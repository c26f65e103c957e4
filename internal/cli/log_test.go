package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"github.com/fieldseal/fieldseal/internal/testenv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/wire"
)

type logFixture struct {
	dir     string
	w       *fschain.Writer
	k1      fschain.Key
	priv    ed25519.PrivateKey
	pubPath string
	keyPath string
}

func newLogFixture(t *testing.T) *logFixture {
	t.Helper()
	f := &logFixture{dir: t.TempDir()}
	for i := range f.k1 {
		f.k1[i] = byte(0x40 + i)
	}
	st := fschain.NewMemStorage()
	var err error
	if f.w, err = fschain.Create(st, "meter-0042", 2, f.k1); err != nil {
		t.Fatal(err)
	}
	f.priv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	pem, err := keys.MarshalPublic(f.priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	f.pubPath = filepath.Join(f.dir, "server.pub")
	f.keyPath = filepath.Join(f.dir, "k1.hex")
	must(t, os.WriteFile(f.pubPath, pem, 0o644))
	must(t, os.WriteFile(f.keyPath, []byte(hex.EncodeToString(f.k1[:])+"\n"), 0o600))
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const t0 = 1772445600 // 2026-03-02 10:00 UTC

func (f *logFixture) routine(t *testing.T, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		_, err := f.w.Append(t0+uint64(i), wire.EntryCheckOK, wire.MustMarshal(&wire.CheckOKPayload{Files: 9, DurationMS: 300}))
		must(t, err)
	}
}

// receipt signs the writer's current state as the server would.
func (f *logFixture) receipt() []byte {
	n, h, _ := f.w.State()
	return wire.SignReceipt(&wire.Receipt{Dev: f.w.Dev(), Epoch: f.w.Epoch(), N: n, Head: h[:], Time: t0 + 3600}, f.priv)
}

func (f *logFixture) write(t *testing.T, x *fschain.Export, asJSON bool) string {
	t.Helper()
	var b []byte
	var err error
	if asJSON {
		b, err = x.EncodeJSON()
	} else {
		b, err = x.EncodeCBOR()
	}
	must(t, err)
	p := filepath.Join(f.dir, "export.bin")
	must(t, os.WriteFile(p, b, 0o644))
	return p
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("")}, args)
	return code, out.String(), errb.String()
}

func TestLogVerifyClean(t *testing.T) {
	f := newLogFixture(t)
	f.routine(t, 412)
	x := f.w.Export()
	x.Receipts = [][]byte{f.receipt()}
	for _, asJSON := range []bool{false, true} {
		p := f.write(t, x, asJSON)
		code, out, errs := runCLI("log", "verify", "--log", p, "--server-pub", f.pubPath, "--chain-key", f.keyPath)
		if code != ExitOK || !strings.HasPrefix(out, "sealed, 412 entries, no tamper events\n") {
			t.Fatalf("json=%v: exit %d\n%s%s", asJSON, code, out, errs)
		}
		t.Logf("verdict:\n%s", out)
		if !strings.Contains(out, "verified it up to entry 412") {
			t.Fatalf("receipt not reported:\n%s", out)
		}
	}
	// Without the key only the head chain is checked, and the verdict says so.
	p := f.write(t, x, false)
	code, out, _ := runCLI("log", "verify", "--log", p)
	if code != ExitOK || !strings.HasPrefix(out, "intact, 412 entries, no tamper events") || !strings.Contains(out, "not checked (no --server-pub)") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// Receipts from files: a single COSE_Sign1, or a CBOR array of them.
	x.Receipts = nil
	p = f.write(t, x, false)
	one := filepath.Join(f.dir, "one.cose")
	many := filepath.Join(f.dir, "many.cbor")
	must(t, os.WriteFile(one, f.receipt(), 0o644))
	must(t, os.WriteFile(many, wire.MustMarshal([][]byte{f.receipt(), f.receipt()}), 0o644))
	code, out, _ = runCLI("log", "verify", "--log", p, "--receipts", one, "--receipts", many, "--server-pub", f.pubPath)
	if code != ExitOK || !strings.Contains(out, "3 receipt(s) signed by the server agree") {
		t.Fatalf("receipt files: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("log", "show", p)
	if code != ExitOK || !strings.Contains(out, "check-ok: 9 files match") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
}

func TestLogVerifyTamperEvent(t *testing.T) {
	f := newLogFixture(t)
	f.routine(t, 16)
	_, err := f.w.Append(t0+14*60, wire.EntryCheckFail, wire.MustMarshal(&wire.CheckFailPayload{Files: 9,
		Bad: []wire.BadFile{{Path: "app/metrology.mpy", Kind: wire.KindModified, Expected: make([]byte, 8), Seen: bytes.Repeat([]byte{1}, 8)}}}))
	must(t, err)
	f.routine(t, 3)
	p := f.write(t, f.w.Export(), false)
	code, out, _ := runCLI("log", "verify", "--log", p, "--chain-key", hex.EncodeToString(f.k1[:]))
	want := "TAMPER: check-fail app/metrology.mpy modified at entry 17 (2026-03-02 10:14 device time), later entries show the file restored\n"
	if code != ExitFound || !strings.HasPrefix(out, want) {
		t.Fatalf("exit %d\n%s\nwant first line %q", code, out, want)
	}
	t.Logf("verdict:\n%s", out)
	code, out, _ = runCLI("log", "verify", "--log", p, "--json")
	testenv.AssertSnakeCase(t, "log verify --json", []byte(out))
	var v struct {
		Verdict string
		Tamper  []struct{ N uint64 }
	}
	must(t, json.Unmarshal([]byte(out), &v))
	if code != ExitFound || v.Verdict != "tamper" || len(v.Tamper) != 1 || v.Tamper[0].N != 17 {
		t.Fatalf("json: exit %d %+v", code, v)
	}
}

func TestLogVerifyFailures(t *testing.T) {
	f := newLogFixture(t)
	f.routine(t, 20)
	rcpt := f.receipt()
	f.routine(t, 5)
	key := hex.EncodeToString(f.k1[:])

	// An entry altered after the fact.
	x := f.w.Export()
	x.Entries[9].Payload = wire.MustMarshal(&wire.CheckOKPayload{Files: 10})
	p := f.write(t, x, false)
	code, out, _ := runCLI("log", "verify", "--log", p, "--chain-key", key)
	if code != ExitFound || !strings.HasPrefix(out, "TAMPER: the log fails verification: forged-entry at entry 10") {
		t.Fatalf("forged: exit %d\n%s", code, out)
	}
	// The wrong K_1 fails at the first entry, and the verdict says to check the key.
	code, out, _ = runCLI("log", "verify", "--log", p, "--chain-key", strings.Repeat("00", 32))
	if code != ExitFound || !strings.Contains(out, "forged-entry at entry 1") || !strings.Contains(out, "make sure --chain-key is K_1") {
		t.Fatalf("wrong key: exit %d\n%s", code, out)
	}
	// Without K_1 the same change breaks the head chain.
	code, out, _ = runCLI("log", "verify", "--log", p)
	if code != ExitFound || !strings.Contains(out, "head-mismatch at entry 25") {
		t.Fatalf("heads only: exit %d\n%s", code, out)
	}

	// Tail cut off below what the server signed: rollback against the receipt.
	x = f.w.Export()
	x.Entries = x.Entries[:15]
	x.N = 15
	h := fschain.GenesisHead(x.Dev, x.Epoch)
	for i := range x.Entries {
		h = fschain.EntryHead(x.Dev, x.Epoch, h, &x.Entries[i])
	}
	x.Head = h[:]
	p = f.write(t, x, false)
	must(t, os.WriteFile(filepath.Join(f.dir, "r.hex"), []byte(hex.EncodeToString(rcpt)+"\n"), 0o644))
	code, out, _ = runCLI("log", "verify", "--log", p, "--receipts", filepath.Join(f.dir, "r.hex"), "--server-pub", f.pubPath)
	if code != ExitFound || !strings.Contains(out, "rollback at entry 15") {
		t.Fatalf("rollback: exit %d\n%s", code, out)
	}
	// With K_1 the cut tail is a bad seal.
	code, out, _ = runCLI("log", "verify", "--log", p, "--chain-key", key)
	if code != ExitFound || !strings.Contains(out, "bad-seal at entry 15") {
		t.Fatalf("bad-seal: exit %d\n%s", code, out)
	}

	// A receipt signed by another key.
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	x = f.w.Export()
	n, hh, _ := f.w.State()
	x.Receipts = [][]byte{wire.SignReceipt(&wire.Receipt{Dev: x.Dev, Epoch: x.Epoch, N: n, Head: hh[:], Time: 1}, other)}
	p = f.write(t, x, true)
	code, out, _ = runCLI("log", "verify", "--log", p, "--server-pub", f.pubPath)
	if code != ExitFound || !strings.Contains(out, "bad-receipt") {
		t.Fatalf("bad receipt: exit %d\n%s", code, out)
	}
}

func TestLogVerifyErrors(t *testing.T) {
	f := newLogFixture(t)
	garbage := filepath.Join(f.dir, "garbage")
	must(t, os.WriteFile(garbage, []byte("not a log"), 0o644))
	for _, args := range [][]string{
		{"log", "verify"},
		{"log", "verify", "--log", filepath.Join(f.dir, "missing")},
		{"log", "verify", "--log", garbage},
		{"log", "verify", "--log", f.write(t, f.w.Export(), false), "--chain-key", "abcd"},
		{"log", "verify", "--log", f.write(t, f.w.Export(), false), "--server-pub", garbage},
		{"log", "frobnicate"},
	} {
		if code, out, errs := runCLI(args...); code != ExitError {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, code, ExitError, out, errs)
		}
	}
}

func TestLogExportFromStorage(t *testing.T) {
	dir := t.TempDir()
	st, err := fschain.NewFileStorage(dir)
	must(t, err)
	var k1 fschain.Key
	w, err := fschain.Create(st, "meter-7", 1, k1)
	must(t, err)
	for i := 0; i < 5; i++ {
		_, err := w.Append(t0+uint64(i), wire.EntryRegister, wire.MustMarshal(&wire.RegisterPayload{Litres: uint64(i)}))
		must(t, err)
	}
	out := filepath.Join(t.TempDir(), "x.json")
	if code, o, e := runCLI("log", "export", "--storage", dir, "--out", out, "--json"); code != ExitOK {
		t.Fatalf("export: %d %s %s", code, o, e)
	}
	code, o, _ := runCLI("log", "verify", "--log", out, "--chain-key", hex.EncodeToString(k1[:]))
	if code != ExitOK || !strings.HasPrefix(o, "sealed, 5 entries, no tamper events") {
		t.Fatalf("verify export: %d\n%s", code, o)
	}
}
