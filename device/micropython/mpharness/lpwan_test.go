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
	res := r.step(Cmd{"cmd": "exec", "code": "from fieldseal import lpwan\nimport ubinascii\n" +
		"if not hasattr(D, 'lp'):\n    D.lp = lpwan.Meter(D)\n" +
		"result = [ubinascii.b2a_base64(f).decode().strip() for f in D.lp.uplink()]\n"})
	list, ok := res.Result.([]any)
	if !ok {
		t.Fatalf("uplink: %v", res.Result)
	}
	for _, v := range list {
		f, _ := base64.StdEncoding.DecodeString(v.(string))
		if len(f) > wire.LPMaxFrame {
			t.Fatalf("a %d-byte frame from the guard", len(f))
		}
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
	return len(list), outcome
}

// The guard speaks the LPWAN profile to the real server (no Go device code in between): its
// frames verify under the FS-chain rules, a routine round is one 45-byte status and no
// downlink, a cover opening asks for an ack, which prunes, and the server turns it tampered.
func TestGuardLPWANToServer(t *testing.T) {
	vendor := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	r := newRig(t, nil, AppOptions{})
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
	lp := lpwan.New(s)
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
