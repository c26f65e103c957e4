package manifest_test

// Threat rows of docs/THREAT_MODEL.md answered by build and verify, one test per row.

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/manifest"
	"github.com/fieldseal/fieldseal/wire"
)

// D1: edit a byte of a .mpy or data file on external storage → modified.
func TestThreatD1_EditedByteIsModified(t *testing.T) {
	for _, name := range []string{"metrology.mpy", "calibration.json"} {
		t.Run(name, func(t *testing.T) {
			b := mustBuild(t, exampleSrc(t), nil)
			m := b.open(t)
			p := filepath.Join(b.app, name)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)-3] ^= 0x01 // one bit, same size: only the digest can tell
			os.WriteFile(p, data, 0o644)
			res := verify(t, b.app, m)
			wantFindings(t, res, "modified "+name)
			if !strings.Contains(res.Findings[0].Detail, "SHA-256") {
				t.Errorf("detail %q", res.Findings[0].Detail)
			}
		})
	}
}

// D4: drop app.py beside app.mpy (MicroPython imports .py first) → extra.
func TestThreatD4_PyBesideMpyIsExtra(t *testing.T) {
	b := mustBuild(t, exampleSrc(t), nil)
	m := b.open(t)
	os.WriteFile(filepath.Join(b.app, "main.py"), []byte("def run():\n    print('pwned')\n"), 0o644)
	os.MkdirAll(filepath.Join(b.app, "metrology"), 0o755) // a package shadowing the module
	os.WriteFile(filepath.Join(b.app, "metrology", "__init__.py"), []byte("FACTOR = 0.5\n"), 0o644)
	os.WriteFile(filepath.Join(b.app, "hashlib.py"), []byte("def sha256(b=b''):\n    pass\n"), 0o644) // D5
	res := verify(t, b.app, m)
	wantFindings(t, res, "extra hashlib.py", "extra main.py", "extra metrology/__init__.py")
	if res.Checked != len(m.Files) {
		t.Fatalf("sealed files not all verified: %d of %d", res.Checked, len(m.Files))
	}
}

// D6: a truncated .mpy hangs MicroPython's loader forever; build refuses one, every prefix of a
// real .mpy is rejected at once, and verify reports a truncated installed file as modified.
func TestThreatD6_TruncatedMpyRefusedNeverHangs(t *testing.T) {
	b := mustBuild(t, exampleSrc(t), nil)
	m := b.open(t)
	whole, err := os.ReadFile(filepath.Join(b.app, "main.mpy"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for n := 0; n < len(whole); n++ {
		if _, err := manifest.ParseMpy(whole[:n]); err == nil || !errors.Is(err, manifest.ErrBadMpy) {
			t.Fatalf("prefix of %d/%d bytes: err = %v", n, len(whole), err)
		}
	}
	if _, err := manifest.ParseMpy(append(whole, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("checking %d prefixes took %v", len(whole), d)
	}

	// Shipped in the source tree: build names the file and writes nothing.
	src := exampleSrc(t)
	os.WriteFile(filepath.Join(src, "vendored.mpy"), whole[:20], 0o644)
	_, err = buildApp(t, src, nil)
	if err == nil || !strings.Contains(err.Error(), "vendored.mpy") || !errors.Is(err, manifest.ErrMpyTruncated) {
		t.Fatalf("build of a truncated .mpy: %v", err)
	}

	// Installed on the device: the size differs, so it is modified without being parsed.
	os.WriteFile(filepath.Join(b.app, "main.mpy"), whole[:20], 0o644)
	wantFindings(t, verify(t, b.app, m), "modified main.mpy")
}

// D7: a .mpy with native machine code is refused by build unless --allow-native; real
// native output of mpy-cross (-march=armv7emsp -X emit=native) and a crafted xtensawin one.
func TestThreatD7_NativeMpyRefusedUnlessAllowed(t *testing.T) {
	native := func(o *manifest.BuildOptions) { o.Compiler = compiler(t, "-march=armv7emsp", "-X", "emit=native") }
	b, err := buildApp(t, exampleSrc(t), native)
	if !errors.Is(err, manifest.ErrMpyNative) || !strings.Contains(err.Error(), "armv7emsp") || !strings.Contains(err.Error(), "--allow-native") {
		t.Fatalf("native build: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.dist, manifest.ManifestFile)); err == nil {
		t.Fatal("refused build wrote a manifest")
	}
	b = mustBuild(t, exampleSrc(t), func(o *manifest.BuildOptions) { native(o); o.AllowNative = true })
	if m := b.open(t); m.Mpy.Arch != "armv7emsp" {
		t.Fatalf("allowed native build records arch %q", m.Mpy.Arch)
	}
	mpy, _ := os.ReadFile(filepath.Join(b.app, "main.mpy"))
	if h, err := manifest.ParseMpy(mpy); err != nil || !h.Native || h.ArchName() != "armv7emsp" {
		t.Fatalf("native header %+v %v", h, err)
	}

	// A crafted header (hardening reference §4: xtensawin → 4d 06 2b 1f) in the source tree.
	src := exampleSrc(t)
	os.WriteFile(filepath.Join(src, "fast.mpy"), []byte{0x4d, 0x06, 0x2b, 0x1f, 0x00, 0x00, 0x01}, 0o644)
	if _, err := buildApp(t, src, nil); !errors.Is(err, manifest.ErrMpyNative) || !strings.Contains(err.Error(), "fast.mpy") || !strings.Contains(err.Error(), "xtensawin") {
		t.Fatalf("crafted native .mpy: %v", err)
	}
}

// S7: install an older or foreign manifest: the vendor signature, the product and the
// version are all checked.
func TestThreatS7_ForeignEditedDowngradedManifestRefused(t *testing.T) {
	src := exampleSrc(t)
	b := mustBuild(t, src, func(o *manifest.BuildOptions) { o.Version = 3 })
	signed, _ := os.ReadFile(filepath.Join(b.dist, manifest.ManifestFile))
	cur := b.open(t)

	t.Run("foreign key", func(t *testing.T) {
		other := testKey(t, 9)
		m := *cur
		m.Version = 4
		foreign, err := wire.SignManifest(&m, other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wire.OpenManifest(foreign, b.pub); !errors.Is(err, wire.ErrUnknownKey) {
			t.Fatalf("foreign key: %v", err)
		}
		// The same, claiming the vendor's key id.
		payload, _ := wire.Marshal(&m)
		forged := wire.Sign1(other, wire.KeyID(b.pub), payload)
		if _, err := wire.OpenManifest(forged, b.pub); !errors.Is(err, wire.ErrBadSig) {
			t.Fatalf("forged kid: %v", err)
		}
	})
	t.Run("edited after signing", func(t *testing.T) {
		i := strings.Index(string(signed), "watermeter")
		for _, at := range []int{i, len(signed) - 70, len(signed) / 2} {
			edited := append([]byte(nil), signed...)
			edited[at] ^= 0x01
			if _, err := wire.OpenManifest(edited, b.pub); err == nil {
				t.Fatalf("manifest edited at byte %d opened", at)
			}
		}
	})
	t.Run("downgrade", func(t *testing.T) {
		old := mustBuild(t, src, func(o *manifest.BuildOptions) { o.Version = 2 })
		next := old.open(t)
		if err := wire.CheckUpgrade(cur, next); !errors.Is(err, wire.ErrDowngrade) {
			t.Fatalf("downgrade 3 → 2: %v", err)
		}
		same := b.open(t)
		if err := wire.CheckUpgrade(cur, same); !errors.Is(err, wire.ErrDowngrade) {
			t.Fatalf("replay of version 3: %v", err)
		}
		newer := mustBuild(t, src, func(o *manifest.BuildOptions) { o.Out = b.dist }) // auto: 4
		if err := wire.CheckUpgrade(cur, newer.open(t)); err != nil {
			t.Fatalf("upgrade 3 → 4: %v", err)
		}
	})
	t.Run("wrong product", func(t *testing.T) {
		other := mustBuild(t, src, func(o *manifest.BuildOptions) { o.Product, o.Version = "gasmeter", 10 })
		if err := wire.CheckUpgrade(cur, other.open(t)); !errors.Is(err, wire.ErrWrongProduct) {
			t.Fatalf("wrong product: %v", err)
		}
	})
}
