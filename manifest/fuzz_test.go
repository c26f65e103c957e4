package manifest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// fuzzKey signs the seed manifests in testdata/fuzz/FuzzOpenManifest.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))

// FuzzParseMpy: any input is accepted or refused with ErrBadMpy, quickly and without
// panicking; an accepted bytecode file was walked to its last byte.
func FuzzParseMpy(f *testing.F) {
	f.Add(tinyMpy)
	f.Add([]byte{'M', 5, 0, 31, 32, 0})
	f.Add([]byte{'M', 6, 0x1c, 31, 0, 0, 0x09})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseMpy(b)
		if err != nil {
			if !errors.Is(err, ErrBadMpy) {
				t.Fatalf("error %v does not wrap ErrBadMpy", err)
			}
			return
		}
		if h.Version != 6 || (!h.Native && !h.Walked) {
			t.Fatalf("accepted %+v", h)
		}
	})
}

// FuzzOpenManifest: a manifest either fails to open or is structurally valid and survives
// a re-sign/re-open round trip unchanged, and the frozen module renders for it.
func FuzzOpenManifest(f *testing.F) {
	pub := fuzzKey.Public().(ed25519.PublicKey)
	files := []wire.File{{Path: "main.mpy", Size: 3, SHA256: make([]byte, 32)}}
	m := &wire.Manifest{Product: "p", Version: 1, Files: files, Policy: wire.DefaultPolicy(), Root: wire.FilesRoot(files), Mutable: []string{"data/"}}
	seed, err := wire.SignManifest(m, fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := wire.OpenManifest(data, pub)
		if err != nil {
			return
		}
		if err := m.Check(); err != nil {
			t.Fatalf("opened manifest fails Check: %v", err)
		}
		again, err := wire.SignManifest(m, fuzzKey)
		if err != nil {
			t.Fatalf("re-sign: %v", err)
		}
		back, err := wire.OpenManifest(again, pub)
		if err != nil || !reflect.DeepEqual(normalize(back), normalize(m)) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, back, m)
		}
		FrozenModule(m, wire.KeyID(pub))
	})
}

// normalize maps empty and nil slices alike for comparison.
func normalize(m *wire.Manifest) *wire.Manifest {
	c := *m
	if len(c.Mutable) == 0 {
		c.Mutable = nil
	}
	if len(c.Files) == 0 {
		c.Files = nil
	}
	return &c
}
