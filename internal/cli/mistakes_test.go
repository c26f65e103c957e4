package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/wire"
)

// goInternals matches what a person should never read in an error: Go type names
// (cbor.RawTag, fschain.Export, *os.PathError), decoder jargon, temporary file names.
var goInternals = regexp.MustCompile(`\b[a-z]+\.[A-Z]\w+|Go value|unmarshal|\*[a-z]+\.[a-z]|\.tmp-|cbor:|json: cannot|panic|goroutine`)

// mistakeFixture is a folder of good and bad inputs for the table.
type mistakeFixture struct {
	dir, key, pub, other, garbage, empty, bundle, goodBundle, badRootBundle, manifest, log, app string
}

func newMistakeFixture(t *testing.T) *mistakeFixture {
	t.Helper()
	dir := t.TempDir()
	f := &mistakeFixture{dir: dir, key: filepath.Join(dir, "vendor.key"), garbage: filepath.Join(dir, "garbage.bin"),
		empty: filepath.Join(dir, "empty"), bundle: filepath.Join(dir, "bundle.json"), manifest: filepath.Join(dir, "manifest.cose"),
		log: filepath.Join(dir, "log.cbor"), app: filepath.Join(dir, "app")}
	f.pub = f.key + keys.PubSuffix
	priv, _ := keys.Generate()
	if err := keys.WritePair(f.key, priv, false); err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(dir, "other.key")
	otherPriv, _ := keys.Generate()
	if err := keys.WritePair(otherKey, otherPriv, false); err != nil {
		t.Fatal(err)
	}
	f.other = otherKey + keys.PubSuffix
	// Garbage that starts like CBOR (a tag, then nonsense): decoders must not echo their
	// insides about it.
	os.WriteFile(f.garbage, []byte{0xd8, 0x12, 0x84, 0x40, 0xa0, 0x41, 'x', 0x01, 0xff, 0x00, 0x13}, 0o644)
	os.WriteFile(filepath.Join(dir, "garbage.json"), []byte(`{"device": 7, "chain_key": [1,2]}`), 0o644)
	os.MkdirAll(f.empty, 0o755)
	os.MkdirAll(f.app, 0o755)
	os.WriteFile(filepath.Join(f.app, "main.py"), []byte("print(1)\n"), 0o644)
	m := &wire.Manifest{Product: "p", Version: 1, Created: 1, Files: []wire.File{}, Mutable: []string{}, Policy: wire.DefaultPolicy(), Root: wire.FilesRoot(nil),
		Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	signed, err := wire.SignManifest(m, priv)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f.manifest, signed, 0o644)
	b, _ := json.Marshal(map[string]any{"device": "d1"})
	os.WriteFile(f.bundle, b, 0o600)
	k := make([]byte, 32)
	good, _ := json.Marshal(&wire.Bundle{Device: "d1", Epoch: 1, ChainKey: k, UplinkKey: k, DownlinkKey: k, ServerPub: k, Product: "p", ManifestVersion: 1, HTTP: "http://127.0.0.1:1"})
	f.goodBundle = filepath.Join(dir, "good-bundle.json")
	os.WriteFile(f.goodBundle, good, 0o600)
	badRoot, _ := json.Marshal(&wire.Bundle{Device: "d1", Epoch: 1, ChainKey: k, UplinkKey: k, DownlinkKey: k, ServerPub: k, Product: "p", ManifestVersion: 1, MQTT: "mqtt://127.0.0.1:1", TopicRoot: "fleet/+"})
	f.badRootBundle = filepath.Join(dir, "bad-root-bundle.json")
	os.WriteFile(f.badRootBundle, badRoot, 0o600)
	return f
}

// Each verb's common mistakes — a missing flag, a missing file, the wrong key, garbage
// input — are usage errors (exit 2) whose message names the flag, file or value at fault
// and never shows Go's insides.
func TestCommonMistakes(t *testing.T) {
	f := newMistakeFixture(t)
	missing := filepath.Join(f.dir, "no-such-file")
	garbageJSON := filepath.Join(f.dir, "garbage.json")
	cases := []struct {
		name string
		args []string
		want []string // all must appear in stderr
	}{
		{"keygen missing --out", []string{"keygen"}, []string{"missing --out"}},
		{"keygen extra argument", []string{"keygen", "--out", filepath.Join(f.dir, "k"), "extra"}, []string{`unexpected argument "extra"`}},
		{"keygen existing key", []string{"keygen", "--out", f.key}, []string{f.key, "--force"}},

		{"build missing SRC", []string{"build", "--key", f.key}, []string{"missing SRC"}},
		{"build missing --key", []string{"build", f.app}, []string{"missing --key"}},
		{"build missing source folder", []string{"build", missing, "--key", f.key}, []string{missing, "no such file"}},
		{"build empty source", []string{"build", f.empty, "--key", f.key, "--out", filepath.Join(f.dir, "dist")}, []string{f.empty, "holds no files"}},
		{"build --out inside source", []string{"build", f.app, "--key", f.key, "--out", filepath.Join(f.app, "dist")}, []string{"--out", "inside the source folder"}},
		{"build public key", []string{"build", f.app, "--key", f.pub, "--out", filepath.Join(f.dir, "dist")}, []string{f.pub, "public key"}},
		{"build garbage key", []string{"build", f.app, "--key", f.garbage, "--out", filepath.Join(f.dir, "dist")}, []string{f.garbage, "PRIVATE KEY"}},
		{"build missing key file", []string{"build", f.app, "--key", missing, "--out", filepath.Join(f.dir, "dist")}, []string{missing, "no such file"}},
		{"build bad policy", []string{"build", f.app, "--key", f.key, "--out", filepath.Join(f.dir, "dist"), "--policy", "on-mismatch=explode"}, []string{"on-mismatch", "explode"}},

		{"verify missing DIR", []string{"verify", "--pub", f.pub}, []string{"missing DIR"}},
		{"verify missing --pub", []string{"verify", f.app}, []string{"missing --pub"}},
		{"verify missing --manifest", []string{"verify", f.app, "--pub", f.pub}, []string{"missing --manifest"}},
		{"verify missing manifest file", []string{"verify", f.app, "--pub", f.pub, "--manifest", missing}, []string{missing}},
		{"verify garbage manifest", []string{"verify", f.app, "--pub", f.pub, "--manifest", f.garbage}, []string{f.garbage}},
		{"verify another vendor's key", []string{"verify", f.app, "--pub", f.other, "--manifest", f.manifest}, []string{f.manifest, "not signed by --pub " + f.other}},
		{"verify garbage key", []string{"verify", f.app, "--pub", f.garbage, "--manifest", f.manifest}, []string{f.garbage, "PUBLIC KEY"}},

		{"manifest without push", []string{"manifest"}, []string{"manifest push"}},
		{"manifest push missing file arg", []string{"manifest", "push", "--server", "http://127.0.0.1:1"}, []string{"missing MANIFEST"}},
		{"manifest push missing --server", []string{"manifest", "push", f.manifest}, []string{"missing --server"}},
		{"manifest push missing manifest file", []string{"manifest", "push", "--server", "http://127.0.0.1:1", "--token", "t", missing}, []string{missing}},
		{"manifest push garbage", []string{"manifest", "push", "--server", "http://127.0.0.1:1", "--token", "t", f.garbage}, []string{f.garbage, "not a signed manifest"}},
		{"manifest push missing token file", []string{"manifest", "push", "--server", "http://127.0.0.1:1", "--token", filepath.Join(f.dir, "data", "admin.token"), f.manifest}, []string{"--token", "no such file"}},

		{"provision missing --server", []string{"provision", "--device", "d", "--product", "p", "--out", filepath.Join(f.dir, "b.json")}, []string{"missing --server"}},
		{"provision missing --device", []string{"provision", "--server", "http://127.0.0.1:1", "--product", "p", "--out", filepath.Join(f.dir, "b.json")}, []string{"missing --device"}},
		{"provision missing --product", []string{"provision", "--server", "http://127.0.0.1:1", "--device", "d", "--out", filepath.Join(f.dir, "b.json")}, []string{"missing --product"}},
		{"provision missing --out", []string{"provision", "--server", "http://127.0.0.1:1", "--device", "d", "--product", "p"}, []string{"missing --out"}},
		{"provision missing --token", []string{"provision", "--server", "http://127.0.0.1:1", "--device", "d", "--product", "p", "--out", filepath.Join(f.dir, "b.json")}, []string{"missing --token"}},
		{"provision existing bundle", []string{"provision", "--server", "http://127.0.0.1:1", "--token", "t", "--device", "d", "--product", "p", "--out", f.bundle}, []string{f.bundle, "exists"}},
		{"provision no server there", []string{"provision", "--server", "http://127.0.0.1:1", "--token", "t", "--device", "d", "--product", "p", "--out", filepath.Join(f.dir, "b.json")}, []string{"cannot reach the server", "127.0.0.1:1"}},

		{"agent missing --bundle", []string{"agent", "--dir", f.app, "--manifest", f.manifest}, []string{"missing --bundle"}},
		{"agent missing --dir", []string{"agent", "--bundle", f.bundle, "--manifest", f.manifest}, []string{"missing --dir"}},
		{"agent missing --manifest", []string{"agent", "--bundle", f.bundle, "--dir", f.app}, []string{"missing --manifest"}},
		{"agent missing bundle file", []string{"agent", "--bundle", missing, "--dir", f.app, "--manifest", f.manifest}, []string{missing}},
		{"agent garbage bundle", []string{"agent", "--bundle", f.garbage, "--dir", f.app, "--manifest", f.manifest}, []string{f.garbage}},
		{"agent wrong-typed bundle", []string{"agent", "--bundle", garbageJSON, "--dir", f.app, "--manifest", f.manifest}, []string{garbageJSON}},
		{"agent incomplete bundle", []string{"agent", "--bundle", f.bundle, "--dir", f.app, "--manifest", f.manifest}, []string{f.bundle}},
		{"agent both covers", []string{"agent", "--bundle", f.bundle, "--dir", f.app, "--manifest", f.manifest, "--tamper-file", "x", "--gpio", "c:1"}, []string{"--tamper-file", "--gpio"}},

		{"log without sub-command", []string{"log"}, []string{"log verify"}},
		{"log verify missing --log", []string{"log", "verify"}, []string{"missing --log"}},
		{"log verify missing file", []string{"log", "verify", "--log", missing}, []string{missing}},
		{"log verify garbage", []string{"log", "verify", "--log", f.garbage}, []string{f.garbage}},
		{"log verify garbage JSON", []string{"log", "verify", "--log", garbageJSON}, []string{garbageJSON}},
		{"agent another vendor's key", []string{"agent", "--bundle", f.goodBundle, "--dir", f.app, "--manifest", f.manifest, "--vendor-key", f.other}, []string{f.manifest, "signed by --vendor-key " + f.other, "unknown-key"}},
		{"agent garbage manifest", []string{"agent", "--bundle", f.goodBundle, "--dir", f.app, "--manifest", f.garbage}, []string{f.garbage, "not a signed manifest"}},
		{"agent bundle with a wildcard topic root", []string{"agent", "--bundle", f.badRootBundle, "--dir", f.app, "--manifest", f.manifest}, []string{f.badRootBundle, `topic_root "fleet/+"`, "no wildcards"}},
		{"agent wildcard --topic-root", []string{"agent", "--bundle", f.goodBundle, "--dir", f.app, "--manifest", f.manifest, "--topic-root", "fleet/#"}, []string{"--topic-root", `"fleet/#"`}},
		{"log verify bad chain key", []string{"log", "verify", "--log", f.garbage, "--chain-key", "abc"}, []string{"abc"}},
		{"log show missing --log", []string{"log", "show"}, []string{"missing --log"}},
		{"log show garbage", []string{"log", "show", f.garbage}, []string{f.garbage}},
		{"log export missing --storage", []string{"log", "export", "--out", filepath.Join(f.dir, "x")}, []string{"missing --storage"}},
		{"log export missing storage", []string{"log", "export", "--storage", missing, "--out", filepath.Join(f.dir, "x")}, []string{missing}},

		{"audit missing BOARD_DIR", []string{"audit"}, []string{"missing BOARD_DIR"}},
		{"audit missing board", []string{"audit", missing}, []string{missing}},
		{"audit empty board", []string{"audit", f.empty}, []string{f.empty}},

		{"server extra argument", []string{"server", "now"}, []string{`unexpected argument "now"`}},
		{"server private vendor key", []string{"server", "--data", filepath.Join(f.dir, "d1"), "--vendor-key", f.key, "--http", "off", "--mqtt", "off"}, []string{f.key, "private", f.pub}},
		{"server garbage vendor key", []string{"server", "--data", filepath.Join(f.dir, "d2"), "--vendor-key", f.garbage, "--http", "off", "--mqtt", "off"}, []string{f.garbage, "--vendor-key"}},
		{"server missing config", []string{"server", "--config", missing}, []string{missing}},
		{"server bad log level", []string{"server", "--log-level", "loud"}, []string{"--log-level", "loud"}},

		{"balance missing --district", []string{"balance", "--reads", f.garbage}, []string{"missing --district"}},
		{"balance missing --reads", []string{"balance", "--district", garbageJSON}, []string{"missing --reads"}},
		{"balance missing district file", []string{"balance", "--district", missing, "--reads", f.garbage}, []string{missing}},
		{"balance garbage district", []string{"balance", "--district", f.garbage, "--reads", f.garbage}, []string{f.garbage}},

		{"demo no meters", []string{"demo", "--meters", "0"}, []string{"--meters 0"}},
		{"demo bad duration", []string{"demo", "--for", "soon"}, []string{"-for", "soon"}},
		{"demo broker without scheme", []string{"demo", "--lorawan-broker", "127.0.0.1:1883"}, []string{"--lorawan-broker", "tcp://127.0.0.1:1883"}},
		{"demo broker not answering", []string{"demo", "--meters", "200", "--lorawan-broker", "tcp://127.0.0.1:1"}, []string{"lorawan", "127.0.0.1:1"}},
		{"unknown flag", []string{"verify", "--colour", "red"}, []string{"-colour"}},
		{"unknown verb", []string{"seal"}, []string{`"seal"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := sealRun(t, tc.args...)
			if code != ExitError {
				t.Errorf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr does not name %q:\n%s", w, errs)
				}
			}
			if m := goInternals.FindString(errs); m != "" {
				t.Errorf("stderr shows Go's insides (%q):\n%s", m, errs)
			}
			if lines := strings.Count(errs, "\n"); lines > 4 && !strings.Contains(tc.name, "unknown flag") {
				t.Errorf("%d lines of stderr for one mistake (the whole usage?):\n%s", lines, errs)
			}
		})
	}
}
