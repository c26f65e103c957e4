package mpharness

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fieldseal/fieldseal/wire"
)

// App is a sealed application laid out for a simulated device: Ext is its external
// storage and Manifest the frozen manifest module.
type App struct {
	Ext      string
	Manifest string
	M        wire.Manifest
	Files    map[string][]byte // as sealed, by manifest path
}

// AppOptions shape the manifest of BuildApp.
type AppOptions struct {
	Product string
	Version uint64
	Policy  wire.Policy
	Mutable []string
}

// BuildApp seals a small application for tests: every "x.py" of src is compiled to "x.mpy"
// with the WebAssembly mpy-cross, other files are copied, and the frozen manifest module
// is written (same format as `fieldseal build`'s _fieldseal_manifest.py).
func BuildApp(ctx context.Context, node, dir string, src map[string]string, o AppOptions) (*App, error) {
	if o.Product == "" {
		o.Product = "watermeter"
	}
	if o.Version == 0 {
		o.Version = 1
	}
	if o.Policy == (wire.Policy{}) {
		o.Policy = wire.DefaultPolicy()
	}
	a := &App{Ext: filepath.Join(dir, "ext"), Manifest: filepath.Join(dir, "_fieldseal_manifest.py"), Files: map[string][]byte{}}
	srcDir := filepath.Join(dir, "src")
	var args []string
	for p, text := range src {
		out := p
		if strings.HasSuffix(p, ".py") {
			out = strings.TrimSuffix(p, ".py") + ".mpy"
		}
		for _, f := range []string{filepath.Join(srcDir, p), filepath.Join(a.Ext, out)} {
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				return nil, err
			}
		}
		if strings.HasSuffix(p, ".py") {
			if err := os.WriteFile(filepath.Join(srcDir, p), []byte(text), 0o644); err != nil {
				return nil, err
			}
			args = append(args, filepath.Join(srcDir, p), filepath.Join(a.Ext, out))
		} else if err := os.WriteFile(filepath.Join(a.Ext, out), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	if len(args) > 0 {
		if err := Compile(ctx, node, args...); err != nil {
			return nil, err
		}
	}
	var files []wire.File
	err := filepath.WalkDir(a.Ext, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a.Ext, p)
		rel = filepath.ToSlash(rel)
		sum := sha256.Sum256(b)
		files = append(files, wire.File{Path: rel, Size: uint64(len(b)), SHA256: sum[:]})
		a.Files[rel] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	a.M = wire.Manifest{Product: o.Product, Version: o.Version, Created: 1767225600, Files: files,
		Mutable: o.Mutable, Policy: o.Policy, Root: wire.FilesRoot(files),
		Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	if a.M.Mutable == nil {
		a.M.Mutable = []string{}
	}
	if err := os.WriteFile(a.Manifest, FrozenModule(&a.M), 0o644); err != nil {
		return nil, err
	}
	return a, nil
}

// Compile runs the WebAssembly mpy-cross on pairs of (source .py, output .mpy).
func Compile(ctx context.Context, node string, pairs ...string) error {
	if node == "" {
		node = "node"
	}
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(Dir(), "harness", "mpycross.mjs")}, pairs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mpy-cross: %v: %s", err, stderr.String())
	}
	return nil
}

// FrozenModule renders a manifest as the Python module the guard imports from firmware.
func FrozenModule(m *wire.Manifest) []byte {
	var b strings.Builder
	pyb := func(p []byte) string {
		var s strings.Builder
		s.WriteString("b'")
		for _, c := range p {
			fmt.Fprintf(&s, `\x%02x`, c)
		}
		s.WriteString("'")
		return s.String()
	}
	pys := func(s string) string { j, _ := json.Marshal(s); return string(j) }
	b.WriteString("# generated: the manifest the guard enforces, frozen into firmware\nFORMAT = 1\n")
	fmt.Fprintf(&b, "PRODUCT = %s\nVERSION = %d\nCREATED = %d\nROOT = %s\nKID = b''\nFILES = (\n", pys(m.Product), m.Version, m.Created, pyb(m.Root))
	for _, f := range m.Files {
		fmt.Fprintf(&b, "    (%s, %d, %s),\n", pys(f.Path), f.Size, pyb(f.SHA256))
	}
	b.WriteString(")\nMUTABLE = (")
	for _, p := range m.Mutable {
		fmt.Fprintf(&b, "%s, ", pys(p))
	}
	p := m.Policy
	fmt.Fprintf(&b, ")\nPOLICY = {'on_mismatch': %s, 'on_cover_open': %s, 'check_interval': %d, 'report_interval': %d, 'extra_files': %s}\n",
		pys(p.OnMismatch), pys(p.OnCoverOpen), p.CheckInterval, p.ReportInterval, pys(p.ExtraFiles))
	fmt.Fprintf(&b, "MPY = {'major': %d, 'minor': %d, 'arch': %s, 'small_int_bits': %d}\n", m.Mpy.Major, m.Mpy.Minor, pys(m.Mpy.Arch), m.Mpy.SmallIntBits)
	return []byte(b.String())
}

// NewBundle makes a provisioning bundle with fresh random keys.
func NewBundle(dev, product string, manifestVersion uint64) wire.Bundle {
	key := func() wire.HexBytes {
		k := make([]byte, 32)
		rand.Read(k)
		return k
	}
	return wire.Bundle{Device: dev, Epoch: 1, ChainKey: key(), UplinkKey: key(), DownlinkKey: key(),
		ServerPub: key(), Product: product, ManifestVersion: manifestVersion}
}

// Provision writes the bundle to a device's internal storage, where the guard takes it at
// its next boot (and then deletes it: the chain key must not outlive its first use).
func Provision(intDir string, b wire.Bundle) error {
	if err := os.MkdirAll(intDir, 0o755); err != nil {
		return err
	}
	j, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(intDir, "bundle.json"), j, 0o600)
}
