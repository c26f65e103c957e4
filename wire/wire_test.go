package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
}

func TestReportRoundTripAndMAC(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	r := &Report{Dev: "meter-1", Epoch: 1, RSeq: 5, Boot: 2, Time: 1700000000,
		Man:  ManifestRef{Product: "watermeter", Version: 3, Root: make([]byte, 32)},
		Meas: Measurement{Status: MeasOK, FilesChecked: 4, LastCheck: 1700000000, Bad: []Finding{}},
		Log:  Segment{First: 1, Entries: []Entry{}, N: 0, Head: make([]byte, 32), Seal: make([]byte, 32)}}
	data, err := SealReport(r, key)
	if err != nil {
		t.Fatal(err)
	}
	// 128 of these bytes are digests (root, head, seal, MAC); protocol.md aimed at ~160.
	if len(data) > 224 {
		t.Errorf("routine report is %d bytes; over the 224-byte budget in docs/PROTOCOL.md", len(data))
	}
	m, err := ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Kid) != "meter-1" {
		t.Fatalf("kid %q", m.Kid)
	}
	got, err := OpenReport(m, key)
	if err != nil {
		t.Fatal(err)
	}
	if got.RSeq != 5 || got.Man.Product != "watermeter" {
		t.Fatalf("decoded %+v", got)
	}
	if _, err := OpenReport(m, bytes.Repeat([]byte{8}, 32)); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("wrong key: got %v, want bad-mac", err)
	}
	data[len(data)-40] ^= 1
	if m2, err := ParseReport(data); err == nil {
		if _, err := OpenReport(m2, key); err == nil {
			t.Fatal("a flipped byte still verified")
		}
	}
}

func TestMalformedInputIsNamed(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":     {},
		"trailing":  append(Mac0([]byte("k"), []byte("d"), []byte{0xa0}), 0),
		"wrong tag": Sign1(testKey(1), []byte("k"), []byte{0xa0}),
		"not cbor":  []byte("hello"),
	} {
		if _, err := ParseMac0(in, MaxMessageSize); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want malformed", name, err)
		}
	}
	if _, err := ParseMac0(make([]byte, MaxMessageSize+1), MaxMessageSize); !errors.Is(err, ErrOversize) {
		t.Errorf("oversize: got %v", err)
	}
}

func TestManifestSignOpen(t *testing.T) {
	vendor := testKey(1)
	files := []File{{Path: "a.mpy", Size: 3, SHA256: make([]byte, 32)}, {Path: "data/cal.csv", Size: 9, SHA256: make([]byte, 32)}}
	m := &Manifest{Product: "watermeter", Version: 2, Files: files, Policy: DefaultPolicy(), Root: FilesRoot(files), Mutable: []string{}}
	signed, err := SignManifest(m, vendor)
	if err != nil {
		t.Fatal(err)
	}
	pub := vendor.Public().(ed25519.PublicKey)
	got, err := OpenManifest(signed, pub)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || len(got.Files) != 2 {
		t.Fatalf("got %+v", got)
	}
	other := testKey(2).Public().(ed25519.PublicKey)
	if _, err := OpenManifest(signed, other); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("other key: %v", err)
	}
	if err := CheckUpgrade(got, &Manifest{Product: "watermeter", Version: 2}); !errors.Is(err, ErrDowngrade) {
		t.Fatalf("same version: %v", err)
	}
	if err := CheckUpgrade(got, &Manifest{Product: "gasmeter", Version: 9}); !errors.Is(err, ErrWrongProduct) {
		t.Fatalf("other product: %v", err)
	}
}

func TestValidPath(t *testing.T) {
	for p, want := range map[string]bool{"a.mpy": true, "lib/x.mpy": true, "../x": false, "/abs": false, "a//b": false, "a/./b": false, "": false, "a\\b": false} {
		if ValidPath(p) != want {
			t.Errorf("ValidPath(%q) = %v", p, !want)
		}
	}
}
