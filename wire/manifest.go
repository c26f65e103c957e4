package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// Manifest is the seal of an application (protocol.md, "Manifest"): every file with its
// size and SHA-256, the policy the guard enforces and the root measurement devices report.
type Manifest struct {
	Product string   `cbor:"1,keyasint"`
	Version uint64   `cbor:"2,keyasint"` // monotonic sequence number; devices refuse a lower one
	Created uint64   `cbor:"3,keyasint"` // unix seconds
	Files   []File   `cbor:"4,keyasint"` // sorted by path
	Mutable []string `cbor:"5,keyasint"` // path prefixes excluded from checks
	Policy  Policy   `cbor:"6,keyasint"`
	Root    []byte   `cbor:"7,keyasint"` // SHA-256 of the deterministic CBOR of Files
	Mpy     MpyInfo  `cbor:"8,keyasint"`
}

// File is one entry of a manifest: [path, size, sha256].
type File struct {
	_      struct{} `cbor:",toarray"`
	Path   string
	Size   uint64
	SHA256 []byte
}

// Policy says how the guard reacts. Text values keep it readable in the frozen module.
type Policy struct {
	OnMismatch     string `cbor:"1,keyasint"` // report | refuse | erase
	OnCoverOpen    string `cbor:"2,keyasint"` // report | refuse | erase
	CheckInterval  uint32 `cbor:"3,keyasint"` // seconds between scheduled re-checks
	ReportInterval uint32 `cbor:"4,keyasint"` // seconds between reports
	ExtraFiles     string `cbor:"5,keyasint"` // flag | ignore
}

// Policy values.
const (
	ActionReport = "report"
	ActionRefuse = "refuse"
	ActionErase  = "erase"
	ExtraFlag    = "flag"
	ExtraIgnore  = "ignore"
)

// DefaultPolicy never bricks an honest device: refuse tampered code and report, never erase.
func DefaultPolicy() Policy {
	return Policy{OnMismatch: ActionRefuse, OnCoverOpen: ActionReport, CheckInterval: 3600, ReportInterval: 900, ExtraFiles: ExtraFlag}
}

// MpyInfo records what the .mpy files were compiled for.
type MpyInfo struct {
	Major        uint8  `cbor:"1,keyasint"` // 6
	Minor        uint8  `cbor:"2,keyasint"` // sub-version, 3 for MicroPython ≥ 1.23
	Arch         string `cbor:"3,keyasint"` // "bytecode" unless native was explicitly allowed
	SmallIntBits uint8  `cbor:"4,keyasint"`
}

// FilesRoot is the single measurement of a file list: SHA-256 over its deterministic CBOR.
func FilesRoot(files []File) []byte {
	if files == nil {
		files = []File{}
	}
	sum := sha256.Sum256(MustMarshal(files))
	return sum[:]
}

// Errors a manifest check names.
var (
	ErrBadManifest  = errors.New("bad-manifest")  // structurally invalid
	ErrDowngrade    = errors.New("downgrade")     // version not higher than the current one
	ErrWrongProduct = errors.New("wrong-product") // manifest of another product
)

// ValidPath reports whether p is a manifest path: relative, '/'-separated, clean, no '..'.
func ValidPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.ContainsRune(p, 0) {
		return false
	}
	if path.Clean(p) != p {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." || part == "" {
			return false
		}
	}
	return true
}

// Check validates the manifest's structure: sorted unique valid paths, 32-byte digests,
// known policy values and a root that matches the file list.
func (m *Manifest) Check() error {
	if m.Product == "" {
		return fmt.Errorf("%w: empty product", ErrBadManifest)
	}
	if !sort.SliceIsSorted(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path }) {
		return fmt.Errorf("%w: files not sorted by path", ErrBadManifest)
	}
	for i, f := range m.Files {
		if !ValidPath(f.Path) {
			return fmt.Errorf("%w: invalid path %q", ErrBadManifest, f.Path)
		}
		if i > 0 && m.Files[i-1].Path == f.Path {
			return fmt.Errorf("%w: duplicate path %q", ErrBadManifest, f.Path)
		}
		if len(f.SHA256) != sha256.Size {
			return fmt.Errorf("%w: %s: digest is %d bytes", ErrBadManifest, f.Path, len(f.SHA256))
		}
	}
	for _, p := range []string{m.Policy.OnMismatch, m.Policy.OnCoverOpen} {
		if p != ActionReport && p != ActionRefuse && p != ActionErase {
			return fmt.Errorf("%w: unknown policy action %q", ErrBadManifest, p)
		}
	}
	if m.Policy.ExtraFiles != ExtraFlag && m.Policy.ExtraFiles != ExtraIgnore {
		return fmt.Errorf("%w: unknown extra-files policy %q", ErrBadManifest, m.Policy.ExtraFiles)
	}
	if string(FilesRoot(m.Files)) != string(m.Root) {
		return fmt.Errorf("%w: root does not match the file list", ErrBadManifest)
	}
	return nil
}

// IsMutable reports whether p falls under one of the manifest's mutable prefixes.
func (m *Manifest) IsMutable(p string) bool {
	for _, pre := range m.Mutable {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// SignManifest encodes and signs m with the vendor key.
func SignManifest(m *Manifest, priv ed25519.PrivateKey) ([]byte, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	payload, err := Marshal(m)
	if err != nil {
		return nil, err
	}
	return Sign1(priv, KeyID(priv.Public().(ed25519.PublicKey)), payload), nil
}

// OpenManifest checks the signature of a COSE_Sign1 manifest against one of the vendor keys
// (looked up by kid) and returns the decoded, structurally valid manifest.
func OpenManifest(data []byte, vendorKeys ...ed25519.PublicKey) (*Manifest, error) {
	s, err := ParseSign1(data, MaxManifestSize)
	if err != nil {
		return nil, err
	}
	var key ed25519.PublicKey
	for _, k := range vendorKeys {
		if string(KeyID(k)) == string(s.Kid) {
			key = k
			break
		}
	}
	if key == nil {
		return nil, fmt.Errorf("%w: manifest signed by key %x", ErrUnknownKey, s.Kid)
	}
	if err := s.Verify(key); err != nil {
		return nil, err
	}
	var m Manifest
	if err := Unmarshal(s.Payload, &m); err != nil {
		return nil, err
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ParseManifestUnverified decodes a COSE_Sign1 manifest WITHOUT checking its signature
// and checks its structure. Only for a manifest whose origin something else vouches for:
// one carried by a token MACed under T, one the operator's own build wrote, or one
// shown for information. Everything that decides trust uses OpenManifest.
func ParseManifestUnverified(data []byte) (*Manifest, error) {
	s, err := ParseSign1(data, MaxManifestSize)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := Unmarshal(s.Payload, &m); err != nil {
		return nil, err
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// CheckUpgrade says whether next may replace cur: same product, strictly higher version (S7).
func CheckUpgrade(cur, next *Manifest) error {
	if cur == nil {
		return nil
	}
	if next.Product != cur.Product {
		return fmt.Errorf("%w: %q is not %q", ErrWrongProduct, next.Product, cur.Product)
	}
	if next.Version <= cur.Version {
		return fmt.Errorf("%w: version %d is not higher than %d", ErrDowngrade, next.Version, cur.Version)
	}
	return nil
}
