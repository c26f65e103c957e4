package manifest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/internal/atomicfile"
	"github.com/fieldseal/fieldseal/wire"
)

// Names of what Build writes into the output folder.
const (
	AppDir       = "app"                     // the compiled tree, to copy to the device's storage
	ManifestFile = "manifest.cose"           // the signed manifest (COSE_Sign1)
	FrozenFile   = "_fieldseal_manifest.py"  // the same data as a module to freeze into firmware
	frozenModule = "_fieldseal_manifest.mpy" // never part of an app: it lives in firmware
)

// BuildOptions configure Build. Src, Out, Key and Compiler (when Src holds .py files) are
// required.
type BuildOptions struct {
	Src, Out string
	Key      ed25519.PrivateKey
	Product  string // default: the base name of Src
	// Version is the manifest's sequence number. 0 means: one more than the manifest
	// already in Out, or 1 when there is none.
	Version uint64
	// Created is the manifest's creation time in unix seconds. 0 means: the newest
	// modification time among the source files, so that building the same tree twice
	// gives the same manifest (callers map SOURCE_DATE_EPOCH here).
	Created     uint64
	Policy      wire.Policy // zero value: wire.DefaultPolicy()
	Mutable     []string    // path prefixes excluded from checks, e.g. "data/"
	Compiler    Compiler
	AllowNative bool // accept .mpy files with native machine code (threat D7)
	// Progress, when set, is called as files are compiled and hashed.
	Progress func(stage string, done, total int)
}

// BuildResult is what Build made.
type BuildResult struct {
	Manifest     *wire.Manifest
	Signed       []byte // DIST/manifest.cose
	Compiled     int    // .py files compiled
	Bytes        uint64 // total size of the sealed files
	PrevVersion  uint64 // version of the manifest that was in Out before, 0 if none
	MutableFiles int    // files copied under mutable prefixes (not in the manifest)
}

// ignored are names never sealed: caches and editor or OS litter, never app content.
func ignored(name string, dir bool) bool {
	if dir {
		return name == "__pycache__" || name == ".git" || name == ".svn" || name == ".hg"
	}
	return name == ".DS_Store" || name == "Thumbs.db" || strings.HasSuffix(name, ".pyc") || strings.HasSuffix(name, "~")
}

type srcFile struct {
	rel     string // path in Src, '/'-separated
	out     string // path in the app, '/'-separated (.py → .mpy)
	compile bool
	mtime   time.Time
}

// Build seals the application in opts.Src: it compiles every .py to .mpy, copies every
// other file, checks every .mpy (ParseMpy: no truncated, foreign or — unless AllowNative —
// native files), hashes everything and writes Out/app/, the signed Out/manifest.cose and
// Out/_fieldseal_manifest.py. The result is deterministic: the same sources, version and
// created time give byte-identical files and manifest payload.
func Build(ctx context.Context, opts BuildOptions) (*BuildResult, error) {
	if len(opts.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("no vendor key")
	}
	src, err := filepath.Abs(opts.Src)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(src); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", opts.Src)
	}
	product := opts.Product
	if product == "" {
		product = filepath.Base(src)
	}
	policy := opts.Policy
	if policy == (wire.Policy{}) {
		policy = wire.DefaultPolicy()
	}
	mutable, err := cleanMutable(opts.Mutable)
	if err != nil {
		return nil, err
	}
	out, err := filepath.Abs(opts.Out)
	if err != nil {
		return nil, err
	}
	files, err := collect(src, out)
	if err != nil {
		return nil, err
	}
	res := &BuildResult{}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	version := opts.Version
	if prev := previousVersion(filepath.Join(opts.Out, ManifestFile)); prev > 0 {
		res.PrevVersion = prev
		if version == 0 {
			version = prev + 1
		}
	}
	if version == 0 {
		version = 1
	}
	created := opts.Created
	if created == 0 {
		for _, f := range files {
			if t := f.mtime.Unix(); t > 0 && uint64(t) > created {
				created = uint64(t)
			}
		}
	}

	// Build into a fresh folder beside the final one and swap it in at the end, so a
	// failed build never leaves a half-updated app next to an old manifest.
	tmp, err := os.MkdirTemp(opts.Out, ".app-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	var jobs []CompileJob
	sealed := make([]wire.File, len(files)) // Path set once hashed
	for i, f := range files {
		dst := filepath.Join(tmp, filepath.FromSlash(f.out))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if f.compile {
			jobs = append(jobs, CompileJob{Src: filepath.Join(src, filepath.FromSlash(f.rel)), Out: dst, Name: f.rel})
			continue
		}
		// Copy and hash in one streaming pass: data files may be large.
		size, sum, err := copyHash(filepath.Join(src, filepath.FromSlash(f.rel)), dst)
		if err != nil {
			return nil, err
		}
		sealed[i] = wire.File{Path: f.out, Size: size, SHA256: sum}
	}
	if len(jobs) > 0 {
		if opts.Compiler == nil {
			return nil, fmt.Errorf("%d .py files to compile and no mpy-cross", len(jobs))
		}
		n := 0
		progress(opts.Progress, "compile", 0, len(jobs))
		if err := opts.Compiler.Compile(ctx, jobs, func() { n++; progress(opts.Progress, "compile", n, len(jobs)) }); err != nil {
			return nil, err
		}
		res.Compiled = len(jobs)
	}

	var info *wire.MpyInfo
	var list []wire.File
	for i, f := range files {
		progress(opts.Progress, "hash", i, len(files))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if strings.HasSuffix(f.out, ".mpy") {
			data, err := readMpy(filepath.Join(tmp, filepath.FromSlash(f.out)))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.rel, err)
			}
			if info, err = checkMpy(f.out, data, info, opts.AllowNative); err != nil {
				return nil, err
			}
			if f.compile {
				sum := sha256.Sum256(data)
				sealed[i] = wire.File{Path: f.out, Size: uint64(len(data)), SHA256: sum[:]}
			}
		}
		if isMutable(mutable, f.out) {
			res.MutableFiles++
			continue
		}
		list = append(list, sealed[i])
		res.Bytes += sealed[i].Size
	}
	sealed = list
	progress(opts.Progress, "hash", len(files), len(files))
	sort.Slice(sealed, func(i, j int) bool { return sealed[i].Path < sealed[j].Path })
	if sealed == nil {
		sealed = []wire.File{}
	}
	m := &wire.Manifest{
		Product: product,
		Version: version,
		Created: created,
		Files:   sealed,
		Mutable: mutable,
		Policy:  policy,
		Root:    wire.FilesRoot(sealed),
	}
	if info != nil {
		m.Mpy = *info
	}
	signed, err := wire.SignManifest(m, opts.Key)
	if err != nil {
		return nil, err
	}
	// Read it back as a device would before writing anything final.
	back, err := wire.OpenManifest(signed, opts.Key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("manifest does not verify after signing: %w", err)
	}
	res.Manifest, res.Signed = back, signed

	app := filepath.Join(opts.Out, AppDir)
	old := app + ".old"
	os.RemoveAll(old)
	if _, err := os.Lstat(app); err == nil {
		if err := os.Rename(app, old); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(tmp, app); err != nil {
		return nil, err
	}
	os.RemoveAll(old)
	if err := atomicfile.Write(filepath.Join(opts.Out, ManifestFile), signed, 0o644); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(opts.Out, FrozenFile), FrozenModule(back, wire.KeyID(opts.Key.Public().(ed25519.PublicKey))), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

func progress(f func(string, int, int), stage string, done, total int) {
	if f != nil {
		f(stage, done, total)
	}
}

// checkMpy refuses a bad .mpy and keeps the build's .mpy info consistent: one version and
// small-int width for every file, one native architecture at most.
func checkMpy(name string, data []byte, info *wire.MpyInfo, allowNative bool) (*wire.MpyInfo, error) {
	h, err := ParseMpy(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if h.Native && !allowNative {
		return nil, fmt.Errorf("%s: %w (%s); native .mpy files run unchecked machine code on the device: rebuild as bytecode, or pass --allow-native if this is intended", name, ErrMpyNative, h.ArchName())
	}
	arch := "bytecode"
	if h.Native {
		arch = h.ArchName()
		if h.Arch == 0 {
			arch = "native" // a bytecode header over native raw code: cannot happen with mpy-cross
		}
	}
	if info == nil {
		return &wire.MpyInfo{Major: h.Version, Minor: h.SubVersion, Arch: arch, SmallIntBits: h.SmallIntBits}, nil
	}
	if h.SmallIntBits != info.SmallIntBits {
		return nil, fmt.Errorf("%s: %w: %d small-int bits where other files have %d (mixed mpy-cross builds)", name, ErrBadMpy, h.SmallIntBits, info.SmallIntBits)
	}
	if h.SubVersion > info.Minor {
		info.Minor = h.SubVersion
	}
	if arch != "bytecode" {
		if info.Arch != "bytecode" && info.Arch != arch {
			return nil, fmt.Errorf("%s: %w: native code for %s where other files are for %s", name, ErrBadMpy, arch, info.Arch)
		}
		info.Arch = arch
	}
	return info, nil
}

func cleanMutable(in []string) ([]string, error) {
	out := []string{}
	seen := map[string]bool{}
	for _, p := range in {
		if p == "" {
			continue
		}
		if !wire.ValidPath(strings.TrimSuffix(p, "/")) {
			return nil, fmt.Errorf("mutable prefix %q: want a relative '/'-separated path such as \"data/\"", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

func isMutable(prefixes []string, p string) bool {
	for _, pre := range prefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// collect lists the files under src in a fixed order, leaving out the output folder out
// when it lies inside src. Symlinks and special files are refused: what is sealed must be
// what is in the folder, not what a link points to.
func collect(src, out string) ([]srcFile, error) {
	var files []srcFile
	outs := map[string]string{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == src {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() && p == out {
			return filepath.SkipDir
		}
		if ignored(d.Name(), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (%v); symlinks and special files are not sealed", p, d.Type())
		}
		if !wire.ValidPath(rel) {
			return fmt.Errorf("%s: path %q cannot be sealed", p, rel)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := srcFile{rel: rel, out: rel, mtime: info.ModTime()}
		if strings.HasSuffix(rel, ".py") {
			f.compile = true
			f.out = strings.TrimSuffix(rel, ".py") + ".mpy"
		}
		if path.Base(f.out) == frozenModule || rel == FrozenFile {
			return fmt.Errorf("%s: %s is generated by fieldseal build and lives in firmware", p, FrozenFile)
		}
		if other, dup := outs[f.out]; dup {
			return fmt.Errorf("%s and %s would both become %s", other, rel, f.out)
		}
		outs[f.out] = rel
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].out < files[j].out })
	return files, nil
}

// previousVersion reads the version of an earlier build's manifest without trusting it
// (it only picks the next number); 0 when there is none or it cannot be read.
func previousVersion(p string) uint64 {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	m, err := wire.ParseManifestUnverified(data)
	if err != nil {
		return 0
	}
	return m.Version
}

// maxMpy bounds a .mpy read whole for checking; real modules are kilobytes.
const maxMpy = 64 << 20

func readMpy(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMpy+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxMpy {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadMpy, maxMpy)
	}
	return data, nil
}

// copyHash copies src to a new file dst and returns its size and SHA-256.
func copyHash(src, dst string) (uint64, []byte, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, nil, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err != nil {
		out.Close()
		return 0, nil, err
	}
	if err := out.Close(); err != nil {
		return 0, nil, err
	}
	return uint64(n), h.Sum(nil), nil
}
