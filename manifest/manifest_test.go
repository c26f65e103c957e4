package manifest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/manifest"
	mpycross "github.com/fieldseal/fieldseal/tools/mpy-cross"
	"github.com/fieldseal/fieldseal/wire"
)

// compiler is the real mpy-cross: the WebAssembly build run by the repo's Node wrapper.
func compiler(t testing.TB, options ...string) manifest.Compiler {
	t.Helper()
	node, modules := testenv.Node(t)
	return &mpycross.Node{NodePath: node, Script: mpycross.Script, Modules: modules, Options: options}
}

func testKey(t testing.TB, seed byte) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// exampleSrc copies examples/watermeter into a temporary folder the test may change.
func exampleSrc(t testing.TB) string {
	t.Helper()
	src := filepath.Join(testenv.RepoRoot(), "examples", "watermeter")
	dst := filepath.Join(t.TempDir(), "watermeter")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

type built struct {
	dist string
	app  string
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
	res  *manifest.BuildResult
}

func buildApp(t testing.TB, src string, mod func(*manifest.BuildOptions)) (*built, error) {
	t.Helper()
	key := testKey(t, 1)
	dist := filepath.Join(t.TempDir(), "dist")
	opts := manifest.BuildOptions{Src: src, Out: dist, Key: key, Compiler: compiler(t), Created: 1700000000}
	if mod != nil {
		mod(&opts)
	}
	res, err := manifest.Build(context.Background(), opts)
	return &built{dist: opts.Out, app: filepath.Join(opts.Out, manifest.AppDir), key: key, pub: key.Public().(ed25519.PublicKey), res: res}, err
}

func mustBuild(t testing.TB, src string, mod func(*manifest.BuildOptions)) *built {
	t.Helper()
	b, err := buildApp(t, src, mod)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return b
}

// open reads the build's manifest.cose as a device or the server would.
func (b *built) open(t testing.TB) *wire.Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dist, manifest.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.OpenManifest(data, b.pub)
	if err != nil {
		t.Fatalf("OpenManifest: %v", err)
	}
	return m
}

func verify(t testing.TB, root string, m *wire.Manifest) *manifest.Result {
	t.Helper()
	res, err := manifest.VerifyTree(context.Background(), root, m, manifest.VerifyOptions{})
	if err != nil {
		t.Fatalf("VerifyTree: %v", err)
	}
	return res
}

func wantFindings(t testing.TB, res *manifest.Result, want ...string) {
	t.Helper()
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.Kind+" "+f.Path)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s\n(details: %+v)", strings.Join(got, "\n"), strings.Join(want, "\n"), res.Findings)
	}
}

func TestBuildRoundTripExampleApp(t *testing.T) {
	b := mustBuild(t, exampleSrc(t), nil)
	m := b.open(t)
	if m.Product != "watermeter" || m.Version != 1 || m.Created != 1700000000 {
		t.Fatalf("manifest %q v%d created %d", m.Product, m.Version, m.Created)
	}
	var paths []string
	for _, f := range m.Files {
		paths = append(paths, f.Path)
		data, err := os.ReadFile(filepath.Join(b.app, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); uint64(len(data)) != f.Size || !bytes.Equal(sum[:], f.SHA256) {
			t.Errorf("%s: size/digest do not match the file", f.Path)
		}
		if strings.HasSuffix(f.Path, ".mpy") {
			h, err := manifest.ParseMpy(data)
			if err != nil || !h.Walked || h.Native {
				t.Errorf("%s: real mpy-cross output: %+v, %v", f.Path, h, err)
			}
		}
	}
	if got := strings.Join(paths, " "); got != "calibration.json leak.mpy main.mpy metrology.mpy" {
		t.Fatalf("files %s", got)
	}
	if m.Mpy != (wire.MpyInfo{Major: 6, Minor: 0, Arch: "bytecode", SmallIntBits: 31}) {
		t.Fatalf("mpy info %+v", m.Mpy)
	}
	if m.Policy != wire.DefaultPolicy() || len(m.Mutable) != 0 {
		t.Fatalf("policy %+v mutable %v", m.Policy, m.Mutable)
	}
	if res := verify(t, b.app, m); !res.Clean() || res.Checked != 4 || res.Files != 4 {
		t.Fatalf("fresh build not clean: %+v", res)
	}
	frozen, err := os.ReadFile(filepath.Join(b.dist, manifest.FrozenFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(frozen, manifest.FrozenModule(m, wire.KeyID(b.pub))) {
		t.Fatal("frozen module does not match the manifest")
	}
	for _, want := range []string{"PRODUCT = 'watermeter'\n", "VERSION = 1\n", "    ('main.mpy', ", "'extra_files': 'flag'"} {
		if !bytes.Contains(frozen, []byte(want)) {
			t.Errorf("frozen module lacks %q", want)
		}
	}
	// The next build without --version takes the next number.
	b2 := mustBuild(t, exampleSrc(t), func(o *manifest.BuildOptions) { o.Out = b.dist })
	if m2 := b2.open(t); m2.Version != 2 || b2.res.PrevVersion != 1 {
		t.Fatalf("second build: version %d, previous %d", m2.Version, b2.res.PrevVersion)
	}
	// An output folder inside the source is not sealed into the next build.
	inside := mustBuild(t, "", func(o *manifest.BuildOptions) { o.Src = filepath.Dir(b.dist); o.Out = b.dist })
	for _, f := range inside.open(t).Files {
		if strings.HasPrefix(f.Path, "dist/") {
			t.Fatalf("output folder sealed: %s", f.Path)
		}
	}
}

func TestBuildDeterministic(t *testing.T) {
	src := exampleSrc(t)
	b1 := mustBuild(t, src, func(o *manifest.BuildOptions) { o.Created = 0 })
	b2 := mustBuild(t, src, func(o *manifest.BuildOptions) { o.Created = 0 })
	for _, name := range []string{manifest.ManifestFile, manifest.FrozenFile} {
		x, _ := os.ReadFile(filepath.Join(b1.dist, name))
		y, _ := os.ReadFile(filepath.Join(b2.dist, name))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds of the same tree", name)
		}
	}
	err := filepath.WalkDir(b1.app, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(b1.app, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b2.app, rel))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("app/%s differs between builds", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// created defaults to the newest source mtime.
	newest := int64(0)
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if info, e := d.Info(); e == nil && !d.IsDir() && info.ModTime().Unix() > newest {
			newest = info.ModTime().Unix()
		}
		return nil
	})
	if m := b1.open(t); int64(m.Created) != newest {
		t.Fatalf("created %d, newest source %d", m.Created, newest)
	}
}

func TestBuildOptions(t *testing.T) {
	src := exampleSrc(t)
	os.MkdirAll(filepath.Join(src, "data"), 0o755)
	os.WriteFile(filepath.Join(src, "data", "state.json"), []byte(`{"litres": 0}`), 0o644)
	os.MkdirAll(filepath.Join(src, "lib", "__pycache__"), 0o755)
	os.WriteFile(filepath.Join(src, "lib", "util.py"), []byte("def f():\n    return 1\n"), 0o644)
	os.WriteFile(filepath.Join(src, "lib", "__pycache__", "util.cpython-312.pyc"), []byte("junk"), 0o644)
	pol := wire.DefaultPolicy()
	pol.ExtraFiles = wire.ExtraIgnore
	b := mustBuild(t, src, func(o *manifest.BuildOptions) {
		o.Product, o.Version, o.Mutable, o.Policy = "meter-x", 42, []string{"data/"}, pol
	})
	m := b.open(t)
	if m.Product != "meter-x" || m.Version != 42 || m.Policy != pol || strings.Join(m.Mutable, ",") != "data/" {
		t.Fatalf("options not applied: %+v", m)
	}
	for _, f := range m.Files {
		if strings.HasPrefix(f.Path, "data/") || strings.Contains(f.Path, "pycache") {
			t.Errorf("%s sealed", f.Path)
		}
	}
	if _, err := os.Stat(filepath.Join(b.app, "data", "state.json")); err != nil {
		t.Errorf("mutable file not copied: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.app, "lib", "util.mpy")); err != nil {
		t.Errorf("subfolder .py not compiled: %v", err)
	}
	if b.res.MutableFiles != 1 {
		t.Errorf("mutable files %d", b.res.MutableFiles)
	}
	// Mutable files may change; extra files are ignored by this policy.
	os.WriteFile(filepath.Join(b.app, "data", "state.json"), []byte(`{"litres": 99}`), 0o644)
	os.WriteFile(filepath.Join(b.app, "notes.txt"), []byte("hi"), 0o644)
	res := verify(t, b.app, m)
	wantFindings(t, res)
	if res.Mutable != 1 || res.Ignored != 1 {
		t.Fatalf("mutable %d ignored %d", res.Mutable, res.Ignored)
	}
}

func TestBuildRefuses(t *testing.T) {
	cases := []struct {
		name, want string
		setup      func(src string)
	}{
		{"syntax error names the file", "broken.py", func(src string) {
			os.WriteFile(filepath.Join(src, "broken.py"), []byte("def f(:\n"), 0o644)
		}},
		{"py and mpy collide", "would both become", func(src string) {
			os.WriteFile(filepath.Join(src, "main.mpy"), []byte("M\x06\x00\x1f"), 0o644)
		}},
		{"symlink in source", "not a regular file", func(src string) {
			os.Symlink("/etc/passwd", filepath.Join(src, "passwd"))
		}},
		{"foreign .mpy", "foreign.mpy", func(src string) {
			os.WriteFile(filepath.Join(src, "foreign.mpy"), []byte("\x7fELF\x02\x01\x01"), 0o644)
		}},
		{"v5 .mpy", "v5", func(src string) {
			os.WriteFile(filepath.Join(src, "old.mpy"), []byte("M\x05\x02\x1f\x20\x00"), 0o644)
		}},
		{"frozen module name", manifest.FrozenFile, func(src string) {
			os.WriteFile(filepath.Join(src, manifest.FrozenFile), []byte("X = 1\n"), 0o644)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := exampleSrc(t)
			tc.setup(src)
			b, err := buildApp(t, src, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(b.dist, manifest.ManifestFile)); err == nil {
				t.Fatal("a refused build wrote a manifest")
			}
		})
	}
}

func TestVerifyEachFindingKind(t *testing.T) {
	b := mustBuild(t, exampleSrc(t), nil)
	m := b.open(t)
	// modified (same size, different content), missing, extra, unreadable.
	data, _ := os.ReadFile(filepath.Join(b.app, "calibration.json"))
	data[len(data)/2] ^= 0x20
	os.WriteFile(filepath.Join(b.app, "calibration.json"), data, 0o644)
	os.Remove(filepath.Join(b.app, "leak.mpy"))
	os.WriteFile(filepath.Join(b.app, "extra.txt"), []byte("x"), 0o644)
	manifest.SetReadFault(func(p string) error {
		if p == "metrology.mpy" {
			return syscall.EIO
		}
		return nil
	})
	defer manifest.SetReadFault(nil)
	res := verify(t, b.app, m)
	wantFindings(t, res,
		"modified calibration.json", "extra extra.txt", "missing leak.mpy", "unreadable metrology.mpy")
	if res.Checked != 1 {
		t.Fatalf("checked %d", res.Checked)
	}
	w := res.Wire()
	if len(w) != 4 || w[0].Kind != wire.KindModified || w[0].Path != "calibration.json" {
		t.Fatalf("wire findings %+v", w)
	}
}

func TestVerifyOversizeNotRead(t *testing.T) {
	b := mustBuild(t, exampleSrc(t), nil)
	m := b.open(t)
	// A sparse 1 TiB file where the manifest says 375 bytes: reported, never read.
	f, err := os.OpenFile(filepath.Join(b.app, "calibration.json"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	f.Close()
	res := verify(t, b.app, m)
	wantFindings(t, res, "modified calibration.json")
	if res.Bytes > 4096 {
		t.Fatalf("read %d bytes", res.Bytes)
	}
}

func TestVerifyRootErrors(t *testing.T) {
	m := &wire.Manifest{Product: "p", Files: []wire.File{}, Policy: wire.DefaultPolicy(), Root: wire.FilesRoot(nil)}
	_, err := manifest.VerifyTree(context.Background(), filepath.Join(t.TempDir(), "nope"), m, manifest.VerifyOptions{})
	if !manifest.IsRootError(err) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := manifest.VerifyTree(ctx, t.TempDir(), m, manifest.VerifyOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

func TestVerifyManyFilesParallel(t *testing.T) {
	root := t.TempDir()
	var files []wire.File
	for i := 0; i < 300; i++ {
		p := filepath.Join("d"+string(rune('a'+i%7)), "f"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+itoa(i))
		data := bytes.Repeat([]byte{byte(i)}, i*37)
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), data, 0o644)
		sum := sha256.Sum256(data)
		files = append(files, wire.File{Path: filepath.ToSlash(p), Size: uint64(len(data)), SHA256: sum[:]})
	}
	sortFiles(files)
	m := &wire.Manifest{Product: "p", Files: files, Policy: wire.DefaultPolicy(), Root: wire.FilesRoot(files)}
	var calls int
	var mu = make(chan struct{}, 1)
	res, err := manifest.VerifyTree(context.Background(), root, m, manifest.VerifyOptions{Workers: 4, Progress: func(int, uint64) {
		mu <- struct{}{}
		calls++
		<-mu
	}})
	if err != nil || !res.Clean() || res.Checked != 300 || calls != 300 {
		t.Fatalf("res %+v err %v calls %d", res, err, calls)
	}
}
