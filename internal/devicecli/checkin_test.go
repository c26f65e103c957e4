package devicecli

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

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
