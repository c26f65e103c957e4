package keys

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteLoadPair(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vendor.key")
	priv, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePair(path, priv, false); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
	got, err := LoadPrivate(path)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("LoadPrivate: %v", err)
	}
	pub, err := LoadPublic(path + PubSuffix)
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("LoadPublic: %v", err)
	}
	if pub2, err := LoadPublic(path); err != nil || !pub2.Equal(pub) {
		t.Fatalf("LoadPublic(private file): %v", err)
	}
	if _, err := LoadPrivate(path + PubSuffix); err == nil {
		t.Fatal("LoadPrivate accepted a public key")
	}
	if err := WritePair(path, priv, false); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite without force: %v", err)
	}
	priv2, _ := Generate()
	if err := WritePair(path, priv2, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadPrivate(path); !got.Equal(priv2) {
		t.Fatal("force did not overwrite")
	}
	os.WriteFile(filepath.Join(dir, "junk"), []byte("hello"), 0o600)
	if _, err := LoadPublic(filepath.Join(dir, "junk")); err == nil {
		t.Fatal("junk accepted")
	}
}

// LoadPublicOnly refuses a private key file: a holder that must never keep the signing key
// (a fleet server) is not handed one by mistake.
func TestLoadPublicOnlyRefusesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vendor.key")
	priv, _ := Generate()
	if err := WritePair(path, priv, false); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPublicOnly(path); !errors.Is(err, ErrPrivateGiven) {
		t.Fatalf("private key: %v", err)
	}
	pub, err := LoadPublicOnly(path + PubSuffix)
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("public key: %v", err)
	}
}
