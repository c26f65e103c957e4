// Package keys loads and stores the Ed25519 keys fieldseal signs with: the vendor key
// that seals manifests, and the keys the server and the log verifier use. Private keys are
// PEM "PRIVATE KEY" (PKCS#8) files of mode 0600, public keys PEM "PUBLIC KEY" (PKIX), so
// that openssl and other tools read them too.
package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/fieldseal/fieldseal/internal/atomicfile"
)

// PubSuffix is appended to a private key's path to name its public key.
const PubSuffix = ".pub"

// maxKeyFile bounds what LoadPrivate and LoadPublic read: a PEM Ed25519 key is ~120 bytes.
const maxKeyFile = 64 << 10

// ErrExists is returned by WritePair when a file is in the way and overwrite is false.
var ErrExists = errors.New("key file exists (use --force to overwrite)")

// Generate makes a new Ed25519 key pair from crypto/rand.
func Generate() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

// MarshalPrivate encodes priv as PEM PKCS#8.
func MarshalPrivate(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublic encodes pub as PEM PKIX.
func MarshalPublic(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivate decodes a PEM PKCS#8 Ed25519 private key.
func ParsePrivate(data []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" (PKCS#8) file")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key (fieldseal keys are Ed25519: make one with 'fieldseal keygen')")
	}
	return priv, nil
}

// ParsePublic decodes a PEM PKIX Ed25519 public key.
func ParsePublic(data []byte) (ed25519.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\" (PKIX) file")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key (fieldseal keys are Ed25519: make one with 'fieldseal keygen')")
	}
	return pub, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a key file", path, maxKeyFile)
	}
	return data, nil
}

// LoadPrivate reads a private key file. It accepts a public key's path by mistake only to
// say so clearly.
func LoadPrivate(path string) (ed25519.PrivateKey, error) {
	data, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	priv, err := ParsePrivate(data)
	if err != nil {
		if _, perr := ParsePublic(data); perr == nil {
			return nil, fmt.Errorf("%s is a public key; the private key is needed here", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return priv, nil
}

// LoadPublic reads a public key file. Given a private key file it derives the public key,
// so "--pub vendor.key" works as well as "--pub vendor.key.pub".
func LoadPublic(path string) (ed25519.PublicKey, error) {
	data, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublic(data)
	if err != nil {
		if priv, perr := ParsePrivate(data); perr == nil {
			return priv.Public().(ed25519.PublicKey), nil
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// ErrPrivateGiven says a private key file was given where only a public key belongs.
var ErrPrivateGiven = errors.New("is a private key")

// LoadPublicOnly reads a public key file and refuses a private one: for holders that must
// never keep the private key, such as a fleet server that only checks vendor signatures.
func LoadPublicOnly(path string) (ed25519.PublicKey, error) {
	data, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	if _, perr := ParsePrivate(data); perr == nil {
		return nil, fmt.Errorf("%s %w", path, ErrPrivateGiven)
	}
	pub, err := ParsePublic(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// WritePair writes priv to path (mode 0600) and its public key to path+".pub" (mode 0644).
// Unless overwrite is set it refuses when either file exists, and it never leaves a
// half-written key behind: each file is written to a temporary name and renamed.
func WritePair(path string, priv ed25519.PrivateKey, overwrite bool) error {
	privPEM, err := MarshalPrivate(priv)
	if err != nil {
		return err
	}
	pubPEM, err := MarshalPublic(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	pubPath := path + PubSuffix
	if !overwrite {
		for _, p := range []string{path, pubPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s: %w", p, ErrExists)
			}
		}
	}
	if err := atomicfile.Write(path, privPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(pubPath, pubPEM, 0o644)
}
